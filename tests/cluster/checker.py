"""The fault tests' checker: a workload that records what the cluster promised
and saw, and a check of the final log against it.

During a run, producer threads (confluent_kafka, acks=all, idempotent) write
unique values (`<run>-<producer>-<seq>`) to every partition of a topic and
record each acknowledged record as (partition, offset, value); records without
an acknowledgement (an error, or none before the end) are "maybe". A consumer
thread reads every partition from the beginning (read_uncommitted, assign(),
no commits) and records every (partition, offset, value) it is served.

After the faults heal, `read_final` reads every partition from offset 0 to its
high watermark with a fresh consumer, and `check` (a pure function, see
test_checker.py) reports every violation:

- lost:       an acknowledged record is not in the final log at its offset
- changed:    the final log has another value at an acknowledged offset
- gap / repeated offset / log starts late: the final log is not dense 0..HW
- duplicate:  a value at two offsets (an idempotent producer never writes twice,
              so this is a violation even for unacknowledged values)
- phantom:    a value that no producer sent
- truncated read: the concurrent consumer was served a record that is not in
              the final log at that offset with that value (served above the
              high watermark, then truncated)
- hw below acks: a partition's final HW is below its acknowledged record count
- double ack: two acknowledgements for one offset, or one value acknowledged twice

Standalone, against any running cluster, and a self-check of the checker:
    python3 tests/cluster/checker.py --bootstrap 127.0.0.1:9092 --topic t --seconds 10
    python3 tests/cluster/checker.py --self-test
"""

import argparse
import json
import os
import sys
import threading
import time
from collections import defaultdict

# --- the check (pure) -------------------------------------------------------------


def check(acked, maybe, consumed, final, hw, produced=None, partitions=None, max_listed=25):
    """Checks one run's history against the final log.

    acked:    list of (partition, offset, value) acknowledged to producers
    maybe:    iterable of values sent without an acknowledgement
    consumed: list of (partition, offset, value) the concurrent consumer saw
    final:    {partition: [(offset, value), ...]} read from 0 to HW after the run
    hw:       {partition: high watermark} at the final read
    produced: every value sent (acked or not); default acked values + maybe
    Returns a summary dict; summary["violations"] lists the first `max_listed`
    violations (strings), summary["violation_count"] counts them all.
    """
    maybe = set(maybe)
    if produced is None:
        produced = {v for _, _, v in acked} | maybe
    produced = set(produced)
    if partitions is None:
        partitions = sorted(set(final) | set(hw) | {p for p, _, _ in acked} | {p for p, _, _ in consumed})
    violations = []
    counts = defaultdict(int)

    def bad(kind, text):
        counts[kind] += 1
        violations.append(f"{kind}: {text}")

    # Acknowledgements themselves: one per offset, one per value.
    ack_at = {}
    ack_of_value = {}
    # An idempotent producer may learn that a retried batch was already
    # written (DUPLICATE_SEQUENCE_NUMBER) without learning its offset: such
    # acknowledgements (offset None or negative) must find their value once
    # in their partition, at any offset.
    no_offset = [(p, v) for p, off, v in acked if off is None or off < 0]
    acked = [(p, off, v) for p, off, v in acked if off is not None and off >= 0]
    for p, off, v in acked:
        if (p, off) in ack_at and ack_at[(p, off)] != v:
            bad("double ack", f"p{p} offset {off} acknowledged for {ack_at[(p, off)]!r} and {v!r}")
        ack_at[(p, off)] = v
        if v in ack_of_value and ack_of_value[v] != (p, off):
            bad("double ack", f"{v!r} acknowledged at p{ack_of_value[v][0]}@{ack_of_value[v][1]} and p{p}@{off}")
        ack_of_value[v] = (p, off)

    no_offset_values = {v for _, v in no_offset}

    # The final log: dense from 0 to HW, one record per offset.
    log_at = {}
    seen_value = {}
    final_count = {}
    for p in partitions:
        recs = sorted(final.get(p, []))
        final_count[p] = len(recs)
        top = hw.get(p)
        expect = 0
        for off, v in recs:
            if (p, off) in log_at:
                if log_at[(p, off)] != v:
                    bad("repeated offset", f"p{p} offset {off} read as {log_at[(p, off)]!r} and {v!r}")
                else:
                    bad("repeated offset", f"p{p} offset {off} ({v!r}) read twice")
                continue
            if off > expect:
                bad("gap" if expect > 0 else "log starts late", f"p{p} offsets {expect}..{off - 1} missing from the final log")
            expect = off + 1
            if top is not None and off >= top:
                bad("above hw", f"p{p} offset {off} read although the high watermark is {top}")
            log_at[(p, off)] = v
            if v in seen_value:
                where = seen_value[v]
                kind = "duplicate" if v in ack_of_value or v in no_offset_values else "duplicate (unacknowledged value)"
                bad(kind, f"{v!r} at p{where[0]}@{where[1]} and p{p}@{off}")
            else:
                seen_value[v] = (p, off)
            if v not in produced:
                bad("phantom", f"p{p}@{off} holds {v!r}, which no producer sent")
        if top is not None and expect < top:
            bad("gap", f"p{p} offsets {expect}..{top - 1} below the high watermark {top} were not read")

    # Every acknowledged record is where it was acknowledged.
    acked_per_partition = defaultdict(int)
    for (p, off), v in sorted(ack_at.items()):
        acked_per_partition[p] += 1
        got = log_at.get((p, off))
        if got is None:
            bad("lost", f"acknowledged {v!r} at p{p}@{off} is not in the final log (p{p} HW {hw.get(p)})")
        elif got != v:
            where = seen_value.get(v)
            bad("changed", f"acknowledged {v!r} at p{p}@{off}, the final log has {got!r} there"
                + (f" and {v!r} at p{where[0]}@{where[1]}" if where else f" and {v!r} nowhere"))
    for p, v in no_offset:
        acked_per_partition[p] += 1
        where = seen_value.get(v)
        if where is None:
            bad("lost", f"acknowledged {v!r} (offset not reported) is not in the final log")
        elif where[0] != p:
            bad("changed", f"acknowledged {v!r} for p{p} (offset not reported) is at p{where[0]}@{where[1]}")
        elif v in ack_of_value and ack_of_value[v] != where:
            bad("double ack", f"{v!r} acknowledged at p{p}@{ack_of_value[v][1]} and without an offset")
    for p in partitions:
        if p in hw and hw[p] < acked_per_partition[p]:
            bad("hw below acks", f"p{p} HW {hw[p]} < {acked_per_partition[p]} acknowledged records")

    # Everything the consumer was served during the run is in the final log.
    served = {}
    for p, off, v in consumed:
        if (p, off) in served and served[(p, off)] != v:
            bad("truncated read", f"p{p}@{off} was served as {served[(p, off)]!r} and later as {v!r}")
            continue
        served[(p, off)] = v
        got = log_at.get((p, off))
        if got != v:
            bad("truncated read", f"the consumer was served {v!r} at p{p}@{off}; the final log has "
                + (repr(got) if got is not None else f"nothing there (p{p} HW {hw.get(p)})"))

    # Informational: unacknowledged values that made it into the log.
    acked_values = set(ack_of_value) | {v for _, v in no_offset}
    maybe_in_log = sum(1 for v in maybe if v in seen_value and v not in acked_values)
    return {
        "ok": not violations,
        "acked": len(ack_at) + len(no_offset),
        "acked_without_offset": len(no_offset),
        "maybe": len(maybe - set(ack_of_value) - {v for _, v in no_offset}),
        "maybe_in_log": maybe_in_log,
        "consumed": len(consumed),
        "consumed_distinct": len(served),
        "final": {str(p): final_count.get(p, 0) for p in partitions},
        "hw": {str(p): hw.get(p) for p in partitions},
        "violation_count": len(violations),
        "violation_kinds": dict(counts),
        "violations": violations[:max_listed],
    }


def add_client_failures(summary, fatal, died, sequence_errors=()):
    """Adds fatal producer errors, deliveries failed for a sequence error and
    dead client threads to a check's summary as violations. Kafka never fails
    an idempotent producer under these faults (in the validation runs: no
    fatal error, no OUT_OF_ORDER_SEQUENCE_NUMBER): such errors mean the broker
    lost the producer's sequence state, the state that keeps retries from
    being written twice. A dead thread means the history is partial."""
    sequence_errors = list(sequence_errors)
    if sequence_errors:
        sequence_errors = [f"{len(sequence_errors)} deliveries failed with a sequence error; first: {sequence_errors[0]}"]
    for kind, items in (("producer fatal error", fatal), ("producer sequence error", sequence_errors), ("client died", died)):
        for text in items:
            summary["violation_kinds"][kind] = summary["violation_kinds"].get(kind, 0) + 1
            summary["violation_count"] += 1
            summary["violations"].insert(0, f"{kind}: {text}")
    summary["ok"] = summary["violation_count"] == 0
    return summary


# --- the workload -------------------------------------------------------------------

# Delivery errors of an idempotent producer that Kafka does not return under these faults.
SEQUENCE_ERRORS = {45}  # OUT_OF_ORDER_SEQUENCE_NUMBER


def _quiet():
    # librdkafka's own log lines (connection refused, ...) are expected during
    # faults: only critical ones, unless FJT_CLIENT_LOG_LEVEL (syslog levels,
    # 7 = debug) asks for more.
    return {"log_level": int(os.environ.get("FJT_CLIENT_LOG_LEVEL", "2"))}


class Workload:
    """Producers and a concurrent consumer on `topic` (partitions 0..partitions-1)."""

    def __init__(self, bootstrap, topic, partitions, run="run", producers=2, rate=300, consumer=True,
                 delivery_timeout_ms=60000, max_outstanding=2000, extra_producer_config=None):
        self.bootstrap, self.topic, self.partitions, self.run = bootstrap, topic, partitions, run
        self.n_producers, self.rate, self.with_consumer = producers, rate, consumer
        self.delivery_timeout_ms, self.max_outstanding = delivery_timeout_ms, max_outstanding
        self.extra_producer_config = dict(extra_producer_config or {})
        self.lock = threading.Lock()
        self.acked = []  # (partition, offset, value)
        self.ack_times = []  # (partition, when its acknowledgement arrived)
        self.failed = {}  # value -> error text (delivery error: maybe written)
        self.sent = set()
        self.consumed = []  # (partition, offset, value)
        self.errors = []  # a client thread that died
        self.fatal = []  # fatal producer errors (idempotence broken: Kafka has none under these faults)
        self.sequence_errors = []  # deliveries failed with OUT_OF_ORDER_SEQUENCE_NUMBER (the same)
        self.error_counts = defaultdict(int)
        self._stop_producing = threading.Event()
        self._stop_consuming = threading.Event()
        self._threads = []

    # -- producers --

    def producer_config(self):
        cfg = {
            "bootstrap.servers": self.bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "delivery.timeout.ms": self.delivery_timeout_ms,
            "linger.ms": 5,
            "request.timeout.ms": 10000,
            "socket.timeout.ms": 10000,
            "retry.backoff.ms": 100,
            "retry.backoff.max.ms": 500,
            "reconnect.backoff.max.ms": 500,
            "topic.metadata.refresh.interval.ms": 2000,
            "queue.buffering.max.messages": self.max_outstanding * 2,
        }
        cfg.update(_quiet())
        if os.environ.get("FJT_CLIENT_DEBUG"):  # e.g. eos,msg,protocol: librdkafka's debug log on stderr
            cfg.update({"debug": os.environ["FJT_CLIENT_DEBUG"], "log_level": 7})
        cfg.update(self.extra_producer_config)
        return cfg

    def _produce_loop(self, k):
        try:
            self._produce(k)
        except BaseException as e:  # noqa: BLE001 - a dead producer thread fails the run
            with self.lock:
                self.errors.append(f"producer {k} died: {type(e).__name__}: {e}")

    def _produce(self, k):
        from confluent_kafka import KafkaError, KafkaException, Producer

        def on_error(err):
            self.error_counts[err.name()] += 1
            if err.fatal():
                with self.lock:
                    self.fatal.append(f"producer {k}: {err.str()}")

        def delivered(err, msg):
            v = msg.value().decode()
            if err is None:
                with self.lock:
                    self.acked.append((msg.partition(), msg.offset(), v))
                    self.ack_times.append((msg.partition(), time.time()))
            else:
                self.error_counts[f"delivery {err.name()}"] += 1
                with self.lock:
                    self.failed[v] = str(err)
                    if err.code() in SEQUENCE_ERRORS:
                        self.sequence_errors.append(f"producer {k}: {v} at p{msg.partition()}: {err.name()}: {err.str()}")

        cfg = self.producer_config()
        cfg["error_cb"] = on_error
        producer = Producer(cfg)
        dead = []  # producers that hit a fatal error (kept: dropping one may block)

        def call(f, *a):
            """producer.f(*a); on a fatal error (an idempotent producer cannot
            go on) the producer is replaced by a new one, and the error, already
            reported by error_cb, fails the run."""
            nonlocal producer
            try:
                return f(*a)
            except KafkaException as e:
                err = e.args[0] if e.args else None
                if err is None or not (err.fatal() or err.code() == KafkaError._FATAL):
                    raise
                dead.append(producer)
                producer = Producer(cfg)
                return None

        seq = 0
        interval = 1.0 / self.rate if self.rate > 0 else 0
        next_at = time.time()
        while not self._stop_producing.is_set():
            if len(producer) >= self.max_outstanding:
                call(producer.poll, 0.05)
                continue
            v = f"{self.run}-{k}-{seq}"
            p = (seq + k) % self.partitions
            try:
                call(producer.produce, self.topic, v.encode(), None, p, delivered)
            except BufferError:
                call(producer.poll, 0.05)
                continue
            with self.lock:
                self.sent.add(v)
            seq += 1
            call(producer.poll, 0)
            next_at += interval
            delay = next_at - time.time()
            if delay > 0:
                call(producer.poll, delay)
            elif delay < -1:
                next_at = time.time()
        # Wait for every acknowledgement (or delivery timeout) of what was sent.
        deadline = time.time() + self.delivery_timeout_ms / 1000 + 15
        while len(producer) > 0 and time.time() < deadline:
            call(producer.flush, 1)
        for d in dead:  # their last callbacks (errors for what they still held)
            try:
                d.flush(0)
            except KafkaException:
                pass

    # -- consumer --

    def _consume_loop(self):
        try:
            self._consume()
        except BaseException as e:  # noqa: BLE001 - a dead consumer thread fails the run
            with self.lock:
                self.errors.append(f"consumer died: {type(e).__name__}: {e}")

    def _consume(self):
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        c = Consumer({
            "bootstrap.servers": self.bootstrap,
            "group.id": f"fjt-checker-{self.run}",  # librdkafka wants one; assign() and no commits
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "isolation.level": "read_uncommitted",
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 100,
            "socket.timeout.ms": 10000,
            "reconnect.backoff.max.ms": 500,
            "topic.metadata.refresh.interval.ms": 2000,
            **_quiet(),
        })
        c.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in range(self.partitions)])
        try:
            while not self._stop_consuming.is_set():
                for m in c.consume(num_messages=1000, timeout=0.2):
                    if m.error():
                        self.error_counts[f"consume {m.error().name()}"] += 1
                        continue
                    with self.lock:
                        self.consumed.append((m.partition(), m.offset(), m.value().decode()))
        finally:
            c.close()

    # -- control --

    def start(self):
        for k in range(self.n_producers):
            t = threading.Thread(target=self._produce_loop, args=(k,), name=f"producer-{k}", daemon=True)
            t.start()
            self._threads.append(t)
        if self.with_consumer:
            self._consumer = threading.Thread(target=self._consume_loop, name="consumer", daemon=True)
            self._consumer.start()

    def ack_count(self):
        with self.lock:
            return len(self.acked)

    def longest_stall(self, since=None):
        """The longest time a partition went without an acknowledgement
        (seconds, from `since` to its last one): how long the fault held up
        writes."""
        with self.lock:
            times = list(self.ack_times)
        worst = 0.0
        for p in range(self.partitions):
            ts = sorted(t for q, t in times if q == p and (since is None or t >= since))
            if since is not None:
                ts = [since] + ts
            worst = max([worst] + [b - a for a, b in zip(ts, ts[1:])])
        return worst

    def stop_producing(self, timeout=None):
        """Stops sending and waits for the producers' last acknowledgements."""
        self._stop_producing.set()
        deadline = time.time() + (timeout or self.delivery_timeout_ms / 1000 + 30)
        for t in self._threads:
            t.join(max(0, deadline - time.time()))
        return not any(t.is_alive() for t in self._threads)

    def stop_consuming(self):
        self._stop_consuming.set()
        if self.with_consumer:
            self._consumer.join(30)

    def history(self):
        with self.lock:
            acked_values = {v for _, _, v in self.acked}
            return list(self.acked), self.sent - acked_values, list(self.consumed), set(self.sent)


def read_final(bootstrap, topic, partitions, timeout=60, settle=1.0):
    """Reads every partition from offset 0 to its high watermark with a fresh
    consumer. Waits first until the high watermarks stop moving. Returns
    ({partition: [(offset, value)]}, {partition: hw})."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"fjt-final-{topic}",
        "enable.auto.commit": False,
        "isolation.level": "read_uncommitted",
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        "fetch.wait.max.ms": 100,
        **_quiet(),
    })
    deadline = time.time() + timeout
    try:
        def watermarks():
            out = {}
            for p in range(partitions):
                while True:
                    try:
                        out[p] = c.get_watermark_offsets(TopicPartition(topic, p), timeout=5, cached=False)
                        break
                    except Exception as e:  # noqa: BLE001 - a leader may still be moving
                        if time.time() > deadline:
                            raise RuntimeError(f"no watermarks for {topic}/{p} within {timeout}s: {e}")
                        time.sleep(0.3)
            return out

        marks = watermarks()
        while True:  # settle: the same marks twice, `settle` seconds apart
            time.sleep(settle)
            again = watermarks()
            if again == marks or time.time() > deadline:
                marks = again
                break
            marks = again
        hw = {p: hi for p, (lo, hi) in marks.items()}
        records = {p: [] for p in range(partitions)}
        todo = {p for p in range(partitions) if hw[p] > 0}
        c.assign([TopicPartition(topic, p, 0) for p in sorted(todo)])
        pos = {p: 0 for p in todo}
        seen = {p: set() for p in range(partitions)}
        progress = time.time()
        # Until every partition is read to its HW; a partition that stops short
        # of it (a hole at its end) is left for `check` to report as a gap.
        while todo and time.time() < deadline and time.time() - progress < 15:
            for m in c.consume(num_messages=1000, timeout=0.5):
                if m.error():
                    continue
                p = m.partition()
                progress = time.time()
                rec = (m.offset(), m.value().decode() if m.value() is not None else None)
                if rec in seen[p]:
                    continue  # the client fetched it again (a retry): one record, not two
                seen[p].add(rec)
                records[p].append(rec)
                pos[p] = max(pos[p], m.offset() + 1)
                if pos[p] >= hw[p]:
                    todo.discard(p)
        # Only what is below the high watermark counts (the check's "HW" is this one).
        for p in records:
            records[p] = [(o, v) for o, v in records[p] if o < hw[p]]
        return records, hw
    finally:
        c.close()


def run_standalone(args):
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    fs = admin.create_topics([NewTopic(args.topic, args.partitions, args.replication_factor,
                                       config={"min.insync.replicas": str(args.min_insync)})])
    try:
        fs[args.topic].result(30)
    except Exception as e:  # noqa: BLE001
        if "already exists" not in str(e).lower() and "TOPIC_ALREADY_EXISTS" not in str(e):
            raise
    wl = Workload(args.bootstrap, args.topic, args.partitions, run=args.topic, producers=args.producers, rate=args.rate)
    wl.start()
    time.sleep(args.seconds)
    wl.stop_producing()
    final, hw = read_final(args.bootstrap, args.topic, args.partitions)
    wl.stop_consuming()
    acked, maybe, consumed, sent = wl.history()
    summary = add_client_failures(check(acked, maybe, consumed, final, hw, produced=sent), wl.fatal[:10], wl.errors[:10], wl.sequence_errors)
    print(json.dumps(summary, sort_keys=True))
    return 0 if summary["ok"] else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--self-test", action="store_true", help="run the checker's own tests (test_checker.py) and exit")
    ap.add_argument("--bootstrap")
    ap.add_argument("--topic", default=f"fjt-check-{int(time.time())}")
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--replication-factor", type=int, default=3)
    ap.add_argument("--min-insync", type=int, default=2)
    ap.add_argument("--producers", type=int, default=2)
    ap.add_argument("--rate", type=float, default=300, help="records per second per producer")
    ap.add_argument("--seconds", type=float, default=10)
    args = ap.parse_args()
    if args.self_test:
        sys.dont_write_bytecode = True
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import test_checker
        return test_checker.main()
    if not args.bootstrap:
        ap.error("--bootstrap is required (or --self-test)")
    return run_standalone(args)


if __name__ == "__main__":
    sys.exit(main())
