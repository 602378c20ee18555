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

# Release: the crash, model and cluster tests do real I/O and want the speed,
# and the tests must hold with optimisations on.
mkdir -p target
cargo test --workspace --release --all-targets 2>&1 | tee target/test.log
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' target/test.log

# The request decoder under libFuzzer for a bounded 30 s (cargo-fuzz, see
# scripts/fuzz.sh); a crash fails the run with the input printed.
bash scripts/fuzz.sh 30

# The side-by-side benchmark against Apache Kafka, tiny and bounded, so it
# cannot rot: every step must run and every figure must be there. No speed is
# asserted (benches/compare/README.md).
FJORD_BIN=target/release/fjord bash benches/compare/run.sh --smoke
