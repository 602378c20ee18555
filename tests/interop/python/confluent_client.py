"""confluent-kafka (librdkafka) against a Kafka-compatible broker; commands in common.py."""

import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from common import fail, line, parse_args, records


def create_topic(args):
    admin = AdminClient({"bootstrap.servers": args.brokers})
    futures = admin.create_topics([NewTopic(args.topic, args.partitions, 1)], request_timeout=args.timeout)
    futures[args.topic].result(timeout=args.timeout)
    # An all-topics Metadata request (librdkafka sends v13 with trailing bytes
    # Kafka ignores) must list it with every partition.
    listed = admin.list_topics(timeout=args.timeout).topics
    if args.topic not in listed or len(listed[args.topic].partitions) != args.partitions:
        fail(f"list_topics does not show {args.topic} with {args.partitions} partitions: {listed}")
    print(f"created {args.topic} with {args.partitions} partitions")


def produce(args):
    producer = Producer({
        "bootstrap.servers": args.brokers,
        "acks": "all",
        "enable.idempotence": True,
        "compression.type": args.compression,
        "linger.ms": 5,
    })
    out = []
    errors = []

    def delivered(err, msg):
        if err is not None:
            errors.append(f"record {msg.key()}: {err}")
        else:
            out.append(line(msg.partition(), msg.offset(), msg.key(), msg.value()))

    for key, value in records(args):
        kw = {"partition": args.partition} if args.partition >= 0 else {}
        while True:
            try:
                producer.produce(args.topic, key=key, value=value, on_delivery=delivered, **kw)
                break
            except BufferError:
                producer.poll(0.1)
    left = producer.flush(args.timeout)
    sys.stdout.write("".join(out))
    if errors:
        fail("\n".join(errors[:10]))
    if left:
        fail(f"{left} records not acknowledged within {args.timeout}s")


def consume(args):
    consumer = Consumer({
        "bootstrap.servers": args.brokers,
        "group.id": "unused-no-commits",  # librdkafka wants one; with assign() and no commits it never talks to a coordinator
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
    })
    tp = TopicPartition(args.topic, args.partition)
    _low, end = consumer.get_watermark_offsets(tp, timeout=args.timeout)
    want = args.count if not args.to_end else max(0, end - args.start)
    consumer.assign([TopicPartition(args.topic, args.partition, args.start)])
    deadline = time.monotonic() + args.timeout
    out = []
    while len(out) < want:
        if time.monotonic() > deadline:
            fail(f"timed out with {len(out)} of {want} records")
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            raise KafkaException(msg.error())
        out.append(line(msg.partition(), msg.offset(), msg.key(), msg.value()))
    consumer.close()
    sys.stdout.write("".join(out))


def main():
    args = parse_args()
    {"create-topic": create_topic, "produce": produce, "consume": consume}[args.command](args)


if __name__ == "__main__":
    main()
