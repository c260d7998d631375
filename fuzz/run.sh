#!/usr/bin/env bash
# Runs the cargo-fuzz targets of bot-sessions, one after the other, one libFuzzer job each.
#
#   fuzz/run.sh [SECONDS] [TARGET...]     SECONDS per target (default 60); all targets by default
#
# Installs cargo-fuzz if it is missing. The machine needs only the stable toolchain:
# - cargo-fuzz passes rustc unstable (`-Z`) flags; RUSTC_BOOTSTRAP=1 lets the stable
#   compiler accept them (no nightly toolchain is fetched);
# - `--sanitizer none`: AddressSanitizer would need a nightly-built runtime, and the library
#   is `#![forbid(unsafe_code)]`, so what ASan finds (memory errors) cannot happen in it.
#   The build keeps cargo-fuzz's defaults otherwise: optimised, with debug assertions and
#   overflow checks on, so an arithmetic overflow is a crash.
# Each target starts from its committed seeds (fuzz/corpus/TARGET, never modified here) and
# keeps what it finds in fuzz/work/TARGET (ignored by git; reused by the next run). Crashes
# land in fuzz/artifacts/TARGET/; replay one with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none TARGET fuzz/artifacts/TARGET/crash-...
# and turn it into a test in crates/bot-sessions/tests/fuzz_regressions.rs.
# The bodies of the targets are in crates/bot-sessions/src/testing/fuzz.rs; plain
# `cargo test` replays every committed corpus entry (tests/fuzz_corpus.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
[[ $seconds =~ ^[0-9]+$ ]] || { echo "usage: fuzz/run.sh [SECONDS] [TARGET...]" >&2; exit 2; }
shift || true
all=(custom_id session_key store_url store_record session_value envelope telegram_update discord_interaction)
if (($#)); then targets=("$@"); else targets=("${all[@]}"); fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
flags=(--sanitizer none)
echo "==> building the fuzz targets"
cargo fuzz build "${flags[@]}"

failed=()
for target in "${targets[@]}"; do
  mkdir -p "fuzz/work/$target"
  log="fuzz/work/$target.log"
  echo "==> $target for ${seconds}s (log: $log)"
  # -timeout: one input taking longer than 30 s is a hang, reported like a crash.
  if cargo fuzz run "${flags[@]}" "$target" "fuzz/work/$target" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -timeout=30 -print_final_stats=1 >"$log" 2>&1; then
    grep -E '^stat::number_of_executed_units|^Done [0-9]+ runs' "$log" | tail -n 2 || true
  else
    echo "    CRASH: see $log and fuzz/artifacts/$target/"
    failed+=("$target")
  fi
done

if ((${#failed[@]})); then
  echo "fuzz: crashes in: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: no crash"
