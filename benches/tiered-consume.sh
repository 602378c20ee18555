#!/usr/bin/env bash
# Consume throughput from tiered storage against local disk, on one fjord
# broker (release build).
#
# Two topics get the same load, kafka-producer-perf-test's records of
# 1 KiB: `remote` tiers (remote.storage.enable=true, local.retention.ms=1000)
# and the script waits until every segment but the active one has left its
# partition directory; `local` keeps everything on disk. Then
# kafka-consumer-perf-test reads each from the beginning: remote (cold),
# local, and remote again (warm: the broker's chunk cache and the OS page
# cache hold what fits).
#
#   bash benches/tiered-consume.sh [--s3] [--mb 256] [--segment-mb 16] [--cache-mb N] [--keep]
#
#   --s3          the object store is a moto S3 server (from the test venv,
#                 scripts/install-test-deps.sh) instead of the local
#                 directory backend (<log dir>/remote-log-storage)
#   --mb          megabytes of records per topic (default 256)
#   --segment-mb  segment.bytes of both topics in MiB (default 16)
#   --cache-mb    the broker's remote chunk cache (rsm.config.fetch.chunk.cache.size;
#                 default: the broker's own)
#   --keep        keep the temporary folder (data, broker and tool logs),
#                 also when the run fails
#
# Needs java and Kafka's jars (bash scripts/fetch-kafka.sh &&
# bash scripts/install-test-deps.sh). Every step is bounded by a timeout;
# the broker, moto and the temporary folder go away on exit, also on Ctrl-C.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

s3=0 mb=256 segment_mb=16 cache_mb="" keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --s3) s3=1 ;;
    --mb) mb=$2; shift ;;
    --segment-mb) segment_mb=$2; shift ;;
    --cache-mb) cache_mb=$2; shift ;;
    --keep) keep=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "tiered-consume: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

# --foreground: the tools stay in the terminal's process group, so Ctrl-C reaches them.
tool() { timeout --foreground "${TOOL_TIMEOUT:-900}" bash "$root/tests/interop/kafka-tool.sh" "$@"; }
say() { echo "tiered-consume: $*" >&2; }
die() { say "$*"; exit 1; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

command -v java >/dev/null && [ -f "$root/.cache/kafka-libs/.version" ] ||
  die "java or Kafka's jars are missing: run bash scripts/fetch-kafka.sh && bash scripts/install-test-deps.sh"
venv_python=$root/.cache/venv/bin/python
if [ "$s3" = 1 ]; then
  [ -x "$venv_python" ] || die "$venv_python is missing (moto): run bash scripts/install-test-deps.sh"
fi

say "building fjord (release)"
(cd "$root" && timeout --foreground 1800 cargo build --release -p fjord-broker) >&2
fjord=$root/target/release/fjord

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fjord-tiered-bench.XXXXXX")
broker_pid="" moto_pid=""
cleanup() {
  status=$?
  trap - EXIT INT TERM
  if [ -n "$broker_pid" ] && kill -0 "$broker_pid" 2>/dev/null; then
    kill -TERM "$broker_pid" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$broker_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$broker_pid" 2>/dev/null || true
    wait "$broker_pid" 2>/dev/null || true
  fi
  if [ -n "$moto_pid" ]; then
    kill -KILL "$moto_pid" 2>/dev/null || true
    wait "$moto_pid" 2>/dev/null || true
  fi
  if [ "$status" != 0 ] && [ -f "$tmp/broker.log" ]; then
    say "failed ($status); the broker log ends:"
    tail -n 30 "$tmp/broker.log" >&2
  fi
  if [ "$keep" = 1 ]; then
    say "folder kept: $tmp"
  else
    rm -rf "$tmp"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for SECONDS WHAT COMMAND...: runs COMMAND every half second until it succeeds.
wait_for() {
  local limit=$1 what=$2
  shift 2
  local deadline=$((SECONDS + limit))
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || die "waited ${limit} s for $what"
    sleep 0.5
  done
}

port=$(free_port)
data=$tmp/data
mkdir -p "$data"
settings=(
  "listeners=PLAINTEXT://127.0.0.1:$port"
  "log.dirs=$data"
  "remote.log.storage.system.enable=true"
  "remote.log.manager.task.interval.ms=1000"
  "log.retention.check.interval.ms=1000"
  # kafka-consumer-perf-test joins a group; no 3 s wait for more members.
  "group.initial.rebalance.delay.ms=0"
)
[ -n "$cache_mb" ] && settings+=("rsm.config.fetch.chunk.cache.size=$((cache_mb << 20))")
backend="local directory ($data/remote-log-storage)"

if [ "$s3" = 1 ]; then
  moto_port=$(free_port)
  "$venv_python" -m moto.server -H 127.0.0.1 -p "$moto_port" >"$tmp/moto.log" 2>&1 &
  moto_pid=$!
  wait_for 30 "moto on port $moto_port" curl -sf -o /dev/null "http://127.0.0.1:$moto_port/"
  curl -sf -o /dev/null -X PUT "http://127.0.0.1:$moto_port/fjord-bench" || die "creating the bucket failed"
  settings+=(
    "rsm.config.storage.s3.bucket.name=fjord-bench"
    "rsm.config.storage.s3.endpoint.url=http://127.0.0.1:$moto_port"
    "rsm.config.storage.s3.region=us-east-1"
    "rsm.config.storage.s3.path.style.access.enabled=true"
    "rsm.config.storage.aws.access.key.id=bench"
    "rsm.config.storage.aws.secret.access.key=bench"
  )
  backend="S3 (moto on 127.0.0.1:$moto_port)"
fi

args=(start)
for s in "${settings[@]}"; do args+=(--override "$s"); done
"$fjord" "${args[@]}" >"$tmp/broker.log" 2>&1 &
broker_pid=$!
answers() { kill -0 "$broker_pid" 2>/dev/null || die "the broker exited"; (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }
wait_for 60 "the broker on port $port" answers
bootstrap=127.0.0.1:$port

records=$((mb * 1024))
segment_bytes=$((segment_mb << 20))
say "$records records of 1024 B to each topic, segments of $segment_mb MiB, tiering to $backend"
tool kafka-topics --bootstrap-server "$bootstrap" --create --topic remote --partitions 1 \
  --config remote.storage.enable=true --config local.retention.ms=1000 --config segment.bytes="$segment_bytes" >/dev/null
tool kafka-topics --bootstrap-server "$bootstrap" --create --topic local --partitions 1 \
  --config segment.bytes="$segment_bytes" >/dev/null

produce() {
  KAFKA_TOOL_HEAP=1g tool kafka-producer-perf-test --bootstrap-server "$bootstrap" --topic "$1" \
    --num-records "$records" --record-size 1024 --throughput -1 \
    --command-property acks=1 --command-property linger.ms=5 --command-property batch.size=262144 \
    >"$tmp/produce-$1.txt"
  tail -n 1 "$tmp/produce-$1.txt" >&2
}
produce remote
produce local

local_logs() { find "$data/$1-0" -maxdepth 1 -name '*.log' | wc -l; }
only_active_left() { [ "$(local_logs remote)" -le 1 ]; }
start=$SECONDS
wait_for 900 "every sealed segment of remote to leave local disk" only_active_left
offsets=$(tool kafka-get-offsets --bootstrap-server "$bootstrap" --topic remote --time -4)
say "remote tiered in $((SECONDS - start)) s: local data starts at offset ${offsets##*:} of $records"

# consume TOPIC LABEL: reads every record of TOPIC from the beginning in a new
# group; prints the rate while fetching and the rate including the group join.
consume() {
  KAFKA_TOOL_HEAP=1g tool kafka-consumer-perf-test --bootstrap-server "$bootstrap" --topic "$1" \
    --num-records "$records" --timeout 120000 --group "bench-$2-$RANDOM" >"$tmp/consume-$2.txt"
  awk -F', *' -v label="$2" '
    /data.consumed.in.MB/ { for (i = 1; i <= NF; i++) col[$i] = i; next }
    col["MB.sec"] {
      if ($col["data.consumed.in.nMsg"] != want) { printf "%s: read %s records of %s\n", label, $col["data.consumed.in.nMsg"], want > "/dev/stderr"; exit 1 }
      printf "  %-12s %8.1f MB/s fetching, %8.1f MB/s with the group join\n", label, $col["fetch.MB.sec"], $col["MB.sec"]; found = 1
    }
    END { if (!found) exit 1 }' want="$records" "$tmp/consume-$2.txt" || die "no result from kafka-consumer-perf-test on $1: $(cat "$tmp/consume-$2.txt")"
}
echo "tiered-consume: $records records of 1024 B ($mb MB) per topic, one broker, $backend"
consume remote remote-cold
consume local local
consume remote remote-warm
