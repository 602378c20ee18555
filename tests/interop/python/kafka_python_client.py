"""kafka-python against a Kafka-compatible broker; commands in common.py."""

import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from common import fail, line, parse_args, records


def create_topic(args):
    admin = KafkaAdminClient(bootstrap_servers=args.brokers, request_timeout_ms=int(args.timeout * 1000))
    try:
        admin.create_topics([NewTopic(args.topic, args.partitions, 1)])
    finally:
        admin.close()
    print(f"created {args.topic} with {args.partitions} partitions")


def produce(args):
    compression = None if args.compression == "none" else args.compression
    producer = KafkaProducer(bootstrap_servers=args.brokers, acks="all", compression_type=compression)
    futures = []
    for key, value in records(args):
        partition = args.partition if args.partition >= 0 else None
        futures.append((key, value, producer.send(args.topic, key=key, value=value, partition=partition)))
    producer.flush(timeout=args.timeout)
    out = []
    for key, value, future in futures:
        meta = future.get(timeout=args.timeout)
        out.append(line(meta.partition, meta.offset, key, value))
    producer.close()
    sys.stdout.write("".join(out))


def consume(args):
    consumer = KafkaConsumer(bootstrap_servers=args.brokers, group_id=None, enable_auto_commit=False)
    tp = TopicPartition(args.topic, args.partition)
    consumer.assign([tp])
    end = consumer.end_offsets([tp])[tp]
    want = args.count if not args.to_end else max(0, end - args.start)
    consumer.seek(tp, args.start)
    deadline = time.monotonic() + args.timeout
    out = []
    while len(out) < want:
        if time.monotonic() > deadline:
            fail(f"timed out with {len(out)} of {want} records")
        for batch in consumer.poll(timeout_ms=500).values():
            for r in batch:
                if len(out) < want:
                    out.append(line(r.partition, r.offset, r.key, r.value))
    consumer.close()
    sys.stdout.write("".join(out))


def main():
    args = parse_args()
    {"create-topic": create_topic, "produce": produce, "consume": consume}[args.command](args)


if __name__ == "__main__":
    main()
