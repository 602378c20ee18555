#!/usr/bin/env bash
# Fjord against Apache Kafka 4.4 on this machine, one after the other, with
# the same layouts and workloads (benches/compare/README.md):
#
#   bash benches/compare/run.sh            # the full comparison (about 20 min on 2 cores):
#                                          # benches/results/<date>.md and benches/results/<date>/
#   bash benches/compare/run.sh --smoke    # tiny bounded run for CI (about 1 min), into a temporary
#                                          # folder; exits non-zero if a step fails or a number is missing
#   bash benches/compare/run.sh --help     # compare.py's flags (sizes, workloads, ports, output)
#
# Builds fjord (release), fetches Kafka's jars from Maven Central
# (scripts/fetch-kafka.sh) and the SLF4J binding (scripts/install-test-deps.sh)
# when they are missing, makes .cache/bench-venv with matplotlib from PyPI,
# then runs compare.py, which starts and stops every broker itself and kills
# whatever it started on failure, Ctrl-C or SIGTERM.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
say() { echo "compare: $*" >&2; }

for arg in "$@"; do
  case "$arg" in
    -h | --help) exec python3 benches/compare/compare.py --help ;;
  esac
done

# FJORD_BIN names a fjord binary built already (scripts/test.sh passes the one
# `cargo test --release` built: a plain `cargo build` resolves features without
# the tests' dev-dependencies and would rebuild much of the tree).
fjord_args=()
if [ -n "${FJORD_BIN:-}" ]; then
  [ -x "$FJORD_BIN" ] || { say "FJORD_BIN=$FJORD_BIN is not an executable"; exit 1; }
  fjord_args=(--fjord "$(cd "$(dirname "$FJORD_BIN")" && pwd)/$(basename "$FJORD_BIN")")
else
  command -v cargo >/dev/null || { say "cargo is missing (Rust 1.95 via rustup)"; exit 1; }
  say "building fjord (release)"
  cargo build --release --bin fjord >&2
fi

# Kafka 4.4's broker and tool jars (idempotent: a no-op when .cache/kafka-libs has this version).
bash scripts/fetch-kafka.sh >&2
# The SLF4J binding Kafka's broker and tools log through (.cache/interop-libs).
[ -f .cache/interop-libs/.pom-sha256 ] || bash scripts/install-test-deps.sh >&2

venv=.cache/bench-venv
want="matplotlib==3.11.2"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.installed" 2>/dev/null)" != "$want" ]; then
  if ! command -v python3 >/dev/null || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv
  fi
  say "making $venv with $want"
  rm -rf "$venv"
  python3 -m venv "$venv"
  PIP_CACHE_DIR="$root/.cache/pip" "$venv/bin/pip" install -q --disable-pip-version-check "$want"
  "$venv/bin/python" -c 'import matplotlib'
  echo "$want" > "$venv/.installed"
fi

exec "$venv/bin/python" benches/compare/compare.py "${fjord_args[@]}" "$@"
