#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine and runs them all.
# Usage: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v cc >/dev/null || need_apt+=(build-essential)
command -v cmake >/dev/null || need_apt+=(cmake)
if ((${#need_apt[@]})); then
  apt-get update -qq && apt-get install -y -qq "${need_apt[@]}"
fi
if ! command -v cargo >/dev/null; then
  echo "error: Rust ${RUST_VERSION:-1.95} (cargo, via rustup) is required and not installed" >&2
  exit 1
fi

# Kafka's own jars (Maven Central) and the other real clients the interop tests drive.
bash scripts/fetch-kafka.sh
bash scripts/install-test-deps.sh

# The other suites' setup runs beside the test build, at the lowest CPU and
# I/O priority so the build keeps its speed: the fuzz target's instrumented
# build, deploy/'s validators (Go tools, schemas) and the CDK app's npm
# install, synth and template tests. It must be done before the tests start:
# its downloads open outbound connections, whose ephemeral ports could take
# a port a test has just picked for a broker.
mkdir -p target
background=target/background-setup.log
(
  set -e
  quiet() { nice -n 19 ionice -c 3 "$@"; }
  quiet bash scripts/fuzz.sh --build-only
  quiet bash deploy/check.sh --no-smoke
  quiet bash deploy/aws/check.sh
) >"$background" 2>&1 &
setup=$!

# Release: the crash, model and cluster tests do real I/O and want the speed,
# and the tests must hold with optimisations on.
build_status=0
cargo test --workspace --release --all-targets --no-run || build_status=$?
setup_status=0
wait "$setup" || setup_status=$?
echo "--- setup beside the build ($background) ---"
cat "$background"
((build_status == 0)) || exit "$build_status"
if ((setup_status != 0)); then
  echo "the setup beside the build failed (exit $setup_status): see its log above" >&2
  exit 1
fi

cargo test --workspace --release --all-targets 2>&1 | tee target/test.log
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' target/test.log

# The request decoder under libFuzzer for a bounded 30 s (cargo-fuzz, see
# scripts/fuzz.sh); a crash fails the run with the input printed.
bash scripts/fuzz.sh 30

# deploy/: the checks again (now warm, seconds), with the smoke test that
# runs the compose topology natively (deploy/README.md). The CDK app's synth
# and template tests ran beside the build (deploy/aws/README.md).
FJORD_BIN=target/release/fjord bash deploy/check.sh

# The side-by-side benchmark against Apache Kafka, tiny and bounded, so it
# cannot rot: every step must run and every figure must be there. No speed is
# asserted (benches/compare/README.md).
FJORD_BIN=target/release/fjord bash benches/compare/run.sh --smoke
