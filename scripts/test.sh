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

# Kafka's own jars (Maven Central), for tests that run Kafka's tools on our files.
bash scripts/fetch-kafka.sh

# Debug build with optimised dependencies would be faster to run, but the
# release profile also checks that the tests hold with optimisations on.
cargo test --workspace --release --all-targets
