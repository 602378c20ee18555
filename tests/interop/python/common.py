"""What the Python interop clients share: the command line and the output lines.

Each client (kafka_python_client.py, confluent_client.py) takes the same
commands as tests/interop/franz (see tests/interop/README.md):

  create-topic --brokers B --topic T --partitions P
  produce --brokers B --topic T --count N [--key-prefix k] [--value-prefix v]
          [--value-bytes 0] [--compression none] [--partition -1]
  consume --brokers B --topic T --partition P [--from 0] (--count N | --to-end)

produce prints one line per acknowledged record, "partition offset key value"
tab-separated, in acknowledgement order; record i has key <key-prefix><i> and
value <value-prefix><i> padded with '.' to --value-bytes. consume reads one
partition by explicit assignment (no group, no commits) and prints the same
line per record; a null key prints as <null>. Errors exit non-zero.
"""

import argparse
import sys


def parse_args():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("create-topic", "produce", "consume"):
        s = sub.add_parser(name)
        s.add_argument("--brokers", required=True)
        s.add_argument("--topic", required=True)
        s.add_argument("--timeout", type=float, default=60.0, help="seconds")
        if name == "create-topic":
            s.add_argument("--partitions", type=int, default=1)
        if name == "produce":
            s.add_argument("--count", type=int, default=100)
            s.add_argument("--key-prefix", default="k")
            s.add_argument("--value-prefix", default="v")
            s.add_argument("--value-bytes", type=int, default=0)
            s.add_argument("--compression", default="none")
            s.add_argument("--partition", type=int, default=-1)
        if name == "consume":
            s.add_argument("--partition", type=int, required=True)
            s.add_argument("--from", dest="start", type=int, default=0)
            g = s.add_mutually_exclusive_group(required=True)
            g.add_argument("--count", type=int)
            g.add_argument("--to-end", action="store_true")
    return p.parse_args()


def records(args):
    """The (key, value) byte pairs `produce` sends, in order."""
    for i in range(args.count):
        value = f"{args.value_prefix}{i}"
        value += "." * (args.value_bytes - len(value))
        yield f"{args.key_prefix}{i}".encode(), value.encode()


def line(partition, offset, key, value):
    k = "<null>" if key is None else key.decode()
    return f"{partition}\t{offset}\t{k}\t{value.decode()}\n"


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)
