#!/usr/bin/env bash
# Runs every fuzz target under libFuzzer for a bounded time (FUZZ_SECONDS each, default 20),
# starting from fuzz/corpus/<target>/; new interesting inputs are added to the corpus, crashes
# land in fuzz/artifacts/<target>/ and fail the run. cargo-fuzz needs nightly features, so
# RUSTC_BOOTSTRAP=1 lets the stable toolchain build it. Skipped (exit 0, with the reason) when
# cargo-fuzz is not installed and neither FUZZ_INSTALL=1 nor CI=true asks to install it.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${FUZZ_SECONDS:-20}"
if ! cargo fuzz --version >/dev/null 2>&1; then
  # Installing cargo-fuzz from source took 47 s on the 2-core CI machine: done in CI, opt-in
  # elsewhere.
  if [ "${FUZZ_INSTALL:-0}" = 1 ] || [ "${CI:-}" = true ]; then
    cargo install cargo-fuzz --locked
  else
    echo "fuzz: cargo-fuzz not installed, libFuzzer runs skipped (FUZZ_INSTALL=1 installs it;"
    echo "      tests/fuzz_corpus.rs still replays the corpus in cargo test)"
    exit 0
  fi
fi
export RUSTC_BOOTSTRAP=1
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
for target in packet handshake classify binlog channel; do
  echo "fuzz: $target for ${seconds}s"
  if ! cargo fuzz run "$target" "corpus/$target" -- -max_total_time="$seconds" -max_len=65536 \
    -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz: $target failed, inputs in fuzz/artifacts/$target/"
    exit 1
  fi
  grep -E '^stat::(number_of_executed_units|new_units_added|peak_rss_mb)' "$log" || tail -n 5 "$log"
done
