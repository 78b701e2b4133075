#!/usr/bin/env bash
# Build the libFuzzer targets (clang, -fsanitize=fuzzer,address,undefined) and run each for
# SECONDS (default 60) on its seed corpus fuzz/corpus/<target>; new inputs go to a working corpus
# in build-fuzz/corpus/<target> (the seeds in the tree stay small). Crashes are written to
# build-fuzz/findings/<target>/ and make the script fail.
#   scripts/fuzz.sh [SECONDS] [TARGET...]      e.g. scripts/fuzz.sh 600 fuzz_query
# Environment: TORP_FUZZ_JOBS (parallel targets, default 1), TORP_FUZZ_NICE (nice level, default 0).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-60}
shift || true
TARGETS=("$@")
((${#TARGETS[@]})) || TARGETS=(fuzz_query fuzz_json_text fuzz_model_file fuzz_dataset fuzz_sweep fuzz_py_literal)
BUILD=build-fuzz
CLANG=${CLANG:-clang++-14}
command -v "$CLANG" >/dev/null || { echo "fuzz.sh: $CLANG not found (apt install clang-14 libclang-rt-14-dev)"; exit 1; }
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
cmake -S . -B "$BUILD" -DCMAKE_CXX_COMPILER="$CLANG" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link $SAN" -DCMAKE_EXE_LINKER_FLAGS="$SAN" \
  -DTORP_BUILD_FUZZ=ON -DTORP_BUILD_TESTS=OFF -DTORP_BUILD_BENCH=OFF -DTORP_BUILD_PYTHON=OFF -DTORP_BUILD_CLI=OFF \
  -DTORP_INSTALL=OFF $(command -v ccache >/dev/null && echo -DCMAKE_CXX_COMPILER_LAUNCHER=ccache) >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target "${TARGETS[@]}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
run() {
  local t=$1
  mkdir -p "$BUILD/corpus/$t" "$BUILD/findings/$t"
  local log="$BUILD/findings/$t.log"
  if nice -n "${TORP_FUZZ_NICE:-0}" "$BUILD/fuzz/$t" "$BUILD/corpus/$t" "fuzz/corpus/$t" -max_total_time="$SECONDS_EACH" \
      -max_len=65536 -rss_limit_mb=4096 -timeout=30 -print_final_stats=1 -artifact_prefix="$BUILD/findings/$t/" \
      >"$log" 2>&1; then
    echo "fuzz.sh: $t: no finding in ${SECONDS_EACH}s: $(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}') executions, $(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)"
  else
    echo "fuzz.sh: $t: FINDING (see $log and $BUILD/findings/$t/)"
    return 1
  fi
}
jobs=${TORP_FUZZ_JOBS:-1}
pids=()
for t in "${TARGETS[@]}"; do
  run "$t" &
  pids+=($!)
  if ((${#pids[@]} >= jobs)); then wait "${pids[0]}" || status=1; pids=("${pids[@]:1}"); fi
done
for p in "${pids[@]}"; do wait "$p" || status=1; done
exit $status
