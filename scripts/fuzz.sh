#!/usr/bin/env bash
# Fuzzes the parsers that read user input (issue 13): the Dockerfile parser and BuildKit's word expansion, image
# references/names/tags, and the .dockerignore matcher. Each target in fuzz/fuzz_targets runs for SECONDS
# (default 60) from the committed seeds in fuzz/corpus/TARGET; any crash, failed property, timeout or memory
# blow-up fails the script, with the input saved under fuzz/artifacts/TARGET/.
#
#   scripts/fuzz.sh [SECONDS]      # e.g. scripts/fuzz.sh 3600 for an hour per target
#
# What a run finds beyond the seeds stays in fuzz/work/TARGET (not committed) and seeds the next local run.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
case "$seconds" in
  '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS]" >&2; exit 2 ;;
esac
CARGO_FUZZ_VERSION=0.13.2

# shellcheck disable=SC1091
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
if ! cargo fuzz --version 2>/dev/null | grep -qF " $CARGO_FUZZ_VERSION"; then
  echo "== cargo install cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

# Coverage instrumentation without a sanitizer: the code fuzzed is safe Rust (no `unsafe` in these modules), so
# AddressSanitizer would find nothing that a panic does not, and it needs nightly flags (RUSTC_BOOTSTRAP=1 on this
# stable-only toolchain) and makes the build and each run slower. Without a sanitizer cargo-fuzz passes only
# stable flags (-Cpasses=sancov-module, -Cllvm-args=..., --cfg fuzzing), so no RUSTC_BOOTSTRAP is needed.
# -O: the release profile as fuzz/Cargo.toml sets it, debug assertions and overflow checks in octopush's code (an
# integer overflow is a crash too) but not in the dependencies (without -O cargo-fuzz turns them on everywhere,
# which only slows the runs). Several codegen units instead of cargo-fuzz's one: the build takes a few minutes
# instead of over ten on two cores.
flags=(--fuzz-dir fuzz --sanitizer none -O --codegen-units 16)

# cargo fuzz has no --locked: check that fuzz/Cargo.lock needs no change before building.
cargo metadata --locked --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null
echo "== cargo fuzz build"
cargo fuzz build "${flags[@]}"

failed=()
for target in $(cargo fuzz list --fuzz-dir fuzz); do
  echo "== fuzz $target for ${seconds}s"
  mkdir -p "fuzz/work/$target"
  # New inputs go to the first folder; the committed seeds are only read. -timeout: one input taking 10 s is a
  # hang; -rss_limit_mb: a run over 1 GiB is a memory bomb (expansion must stay bounded).
  if ! cargo fuzz run "${flags[@]}" "$target" "fuzz/work/$target" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 -max_len=4096 -print_final_stats=1; then
    failed+=("$target")
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "error: fuzz targets failed: ${failed[*]}; the inputs are in fuzz/artifacts/ (replay one with" \
    "cargo fuzz run --fuzz-dir fuzz --sanitizer none -O --codegen-units 16 TARGET fuzz/artifacts/TARGET/FILE)" >&2
  exit 1
fi
echo "fuzz: ${seconds}s per target, no crash"
