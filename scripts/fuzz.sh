#!/usr/bin/env bash
# Fuzzes the broker's request decoders (broker/fuzz, target `request`) for a
# bounded time; exits non-zero on a crash, a timeout or an out-of-memory, and
# prints each input that failed (base64) so a CI log is enough to reproduce.
# Usage: bash scripts/fuzz.sh [seconds]    (default 60)
#        bash scripts/fuzz.sh --build-only   (the same build, not run: a later run reuses it)
# FUZZ_SANITIZER=address adds AddressSanitizer and leak checks: about six
# times fewer inputs a second, so it is for long runs, not the bounded one.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
build_only=
if [[ "$seconds" == --build-only ]]; then
  build_only=1
fi

# cargo-fuzz goes to .cache (which CI keeps), pinned to a release that builds on our rustc.
CARGO_FUZZ_VERSION=0.13.2
root=.cache/cargo-bin
export PATH="$PWD/$root/bin:$PATH"
if [[ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --root "$root"
fi

# cargo-fuzz passes -Z flags (sanitizer, coverage); a stable rustc takes them
# with RUSTC_BOOTSTRAP. The build goes to broker/fuzz/target; libFuzzer adds
# what it finds to the corpus beside the committed seeds, and a failing
# input to broker/fuzz/artifacts/request/.
export RUSTC_BOOTSTRAP=1
if [[ -n "$build_only" ]]; then
  exec cargo fuzz build --fuzz-dir broker/fuzz --sanitizer "${FUZZ_SANITIZER:-none}" request
fi
artifacts=broker/fuzz/artifacts/request
mkdir -p broker/fuzz/corpus/request "$artifacts"
started=$(mktemp)
trap 'rm -f "$started"' EXIT
# One input may take at most 20 s (a request that does is a denial of service)
# and 2 GiB (the decompression cap is 256 MiB).
status=0
cargo fuzz run --fuzz-dir broker/fuzz --sanitizer "${FUZZ_SANITIZER:-none}" request -- \
  -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 || status=$?
if ((status != 0)); then
  echo "fuzz: the request target failed (exit $status); failing inputs:" >&2
  find "$artifacts" -type f -newer "$started" | while read -r f; do
    echo "  $f base64 $(base64 -w0 "$f")" >&2
  done
  echo "rerun one: RUSTC_BOOTSTRAP=1 $root/bin/cargo-fuzz fuzz run --fuzz-dir broker/fuzz --sanitizer ${FUZZ_SANITIZER:-none} request FILE" >&2
fi
exit "$status"
