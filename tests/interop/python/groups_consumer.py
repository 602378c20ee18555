"""A consumer-group member, with confluent-kafka (librdkafka) or kafka-python,
for broker/tests/groups_clients.rs.

  groups_consumer.py --client confluent|kafka-python --brokers B --topic T
                     --group G --client-id C [--session-timeout-ms 30000]
                     [--heartbeat-interval-ms 500] [--max-seconds 300]
                     [--group-instance-id I] [--assignment-strategy S]
                     [--debug CONTEXTS]

Subscribes to T in group G (classic protocol, the clients' default
assignors), from the earliest offset when the group has none committed, with
auto-commit off. For every poll that returns records it prints them, one
"partition offset key value" line each (tab-separated, as in common.py),
flushes, then commits the positions after them synchronously. It also prints
"#assigned<TAB>p,p,..." each time the group gives it partitions (the whole
assignment: both clients' default assignors are eager), and "#commit-failed
<TAB>reason" when a commit fails (a rebalance may fail one; the records are
then read again by whoever gets the partition, which is at-least-once).

Three options, confluent only, for broker/tests/groups_rebalance.rs; without
them nothing above changes:
- --group-instance-id I sets group.instance.id (a static member, KIP-345).
- --assignment-strategy S sets partition.assignment.strategy. With
  "cooperative-sticky" the callbacks receive increments: "#assigned" still
  prints the whole assignment (after the increment), and each callback also
  prints "#incremental-assign<TAB>p,..." or "#incremental-revoke<TAB>p,..."
  (after "#revoked"); the client applies the increments itself once the
  callbacks return.
- --debug CONTEXTS sets librdkafka's debug (e.g. "cgrp"): its log on stderr.
With --group-instance-id or --assignment-strategy the member also prints
"#member<TAB>member id" after each "#assigned".

SIGTERM stops it: it closes the consumer (which leaves the group), prints
"#closed" and exits 0. It also gives up after --max-seconds, exiting 1, so an
abandoned one cannot run forever. Errors exit non-zero.
"""

import argparse
import signal
import sys
import time

from common import fail, line

stop = False


def on_term(_sig, _frame):
    global stop
    stop = True


def emit(text):
    sys.stdout.write(text)
    sys.stdout.flush()


def partition_list(partitions):
    return ",".join(str(p) for p in sorted(partitions))


def assigned(partitions):
    emit("#assigned\t" + partition_list(partitions) + "\n")


def run_confluent(args, deadline):
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    config = {
        "bootstrap.servers": args.brokers,
        "group.id": args.group,
        "client.id": args.client_id,
        "session.timeout.ms": args.session_timeout_ms,
        "heartbeat.interval.ms": args.heartbeat_interval_ms,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    }
    if args.group_instance_id is not None:
        config["group.instance.id"] = args.group_instance_id
    if args.assignment_strategy is not None:
        config["partition.assignment.strategy"] = args.assignment_strategy
    if args.debug is not None:
        config["debug"] = args.debug
    extended = args.group_instance_id is not None or args.assignment_strategy is not None
    incremental = args.assignment_strategy == "cooperative-sticky"
    consumer = Consumer(config)

    def on_assign(c, tps):
        new = {tp.partition for tp in tps}
        if incremental:
            assigned(new | {tp.partition for tp in c.assignment()})
            emit("#incremental-assign\t" + partition_list(new) + "\n")
        else:
            assigned(new)
        if extended:
            emit(f"#member\t{c.memberid()}\n")

    def on_revoke(c, tps):
        emit("#revoked\n")
        if incremental:
            emit("#incremental-revoke\t" + partition_list(tp.partition for tp in tps) + "\n")

    consumer.subscribe([args.topic], on_assign=on_assign, on_revoke=on_revoke)
    while not stop and time.monotonic() < deadline:
        msgs = consumer.consume(num_messages=100, timeout=0.2)
        if not msgs:
            continue
        out = []
        next_offsets = {}
        for msg in msgs:
            if msg.error():
                raise KafkaException(msg.error())
            out.append(line(msg.partition(), msg.offset(), msg.key(), msg.value()))
            next_offsets[msg.partition()] = msg.offset() + 1
        emit("".join(out))
        try:
            consumer.commit(offsets=[TopicPartition(args.topic, p, o) for p, o in next_offsets.items()], asynchronous=False)
        except KafkaException as e:
            emit(f"#commit-failed\t{e}\n")
    consumer.close()


def run_kafka_python(args, deadline):
    from kafka import KafkaConsumer
    from kafka.consumer.subscription_state import ConsumerRebalanceListener
    from kafka.errors import CommitFailedError, KafkaError

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            emit("#revoked\n")

        def on_partitions_assigned(self, tps):
            assigned(tp.partition for tp in tps)

    consumer = KafkaConsumer(
        bootstrap_servers=args.brokers,
        group_id=args.group,
        client_id=args.client_id,
        session_timeout_ms=args.session_timeout_ms,
        heartbeat_interval_ms=args.heartbeat_interval_ms,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    consumer.subscribe([args.topic], listener=Listener())
    while not stop and time.monotonic() < deadline:
        batches = consumer.poll(timeout_ms=200)
        if not batches:
            continue
        out = []
        for batch in batches.values():
            for r in batch:
                out.append(line(r.partition, r.offset, r.key, r.value))
        emit("".join(out))
        try:
            consumer.commit()  # the positions after everything poll returned
        except (CommitFailedError, KafkaError) as e:
            emit(f"#commit-failed\t{e!r}\n")
    consumer.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--client", choices=["confluent", "kafka-python"], required=True)
    p.add_argument("--brokers", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--client-id", required=True)
    p.add_argument("--session-timeout-ms", type=int, default=30000)
    p.add_argument("--heartbeat-interval-ms", type=int, default=500)
    p.add_argument("--max-seconds", type=float, default=300.0)
    p.add_argument("--group-instance-id")
    p.add_argument("--assignment-strategy")
    p.add_argument("--debug")
    args = p.parse_args()
    if args.client != "confluent" and any(o is not None for o in (args.group_instance_id, args.assignment_strategy, args.debug)):
        p.error("--group-instance-id, --assignment-strategy and --debug are for --client confluent")
    signal.signal(signal.SIGTERM, on_term)
    deadline = time.monotonic() + args.max_seconds
    {"confluent": run_confluent, "kafka-python": run_kafka_python}[args.client](args, deadline)
    if not stop:
        emit("#gave-up\n")
        fail(f"still running after --max-seconds {args.max_seconds}")
    emit("#closed\n")


if __name__ == "__main__":
    main()
