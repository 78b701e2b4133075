#!/usr/bin/env bash
# Sanitizer runs (g++):
#  1. AddressSanitizer + UndefinedBehaviorSanitizer: the whole GoogleTest suite (serving and
#     training tests, the CLI they start included) and the Python tests (python.api: the
#     extension module built with the sanitizers, the interpreter started with them preloaded;
#     leak checking off there, as CPython keeps its objects to the end) in build-asan/.
#  2. ThreadSanitizer: the concurrent-prediction tests (threads sharing one Predictor: single,
#     batch and `torp predict FILE` answers equal to serial ones) in build-tsan/.
# Any sanitizer report fails the run. `scripts/sanitize.sh asan` or `tsan` runs one of them.
# Env TORP_SANITIZE_JOBS: parallel compile and test jobs (default: nproc).
set -euo pipefail
cd "$(dirname "$0")/.."
WHICH=${1:-all}
JOBS=${TORP_SANITIZE_JOBS:-$(nproc)}
COMMON=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DTORP_BUILD_TESTS=ON -DTORP_BUILD_BENCH=OFF -DTORP_INSTALL=OFF)
command -v ccache >/dev/null && COMMON+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
if [[ $WHICH == all || $WHICH == asan ]]; then
  start=$(date +%s)
  SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
  cmake -S . -B build-asan "${COMMON[@]}" -DTORP_BUILD_PYTHON=ON -DCMAKE_CXX_FLAGS="$SAN" \
    -DCMAKE_EXE_LINKER_FLAGS="$SAN" -DCMAKE_SHARED_LINKER_FLAGS="$SAN" -DCMAKE_MODULE_LINKER_FLAGS="$SAN" >/dev/null
  cmake --build build-asan -j"$JOBS" --target torp_cli torp_serve_tests torp_train_tests _core
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  ASAN_OPTIONS=detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1 \
    ctest --test-dir build-asan --output-on-failure -j "$JOBS" -E '^python\.'
  # python.install builds a wheel with pip (its own, unsanitized build): not run here.
  ASAN_OPTIONS=detect_leaks=0:strict_string_checks=1 \
  LD_PRELOAD="$(g++ -print-file-name=libasan.so):$(g++ -print-file-name=libubsan.so)" \
    ctest --test-dir build-asan --output-on-failure -R '^python\.api$'
  echo "sanitize.sh: ASan+UBSan suite (GoogleTest and Python tests) clean after $(( $(date +%s) - start )) s"
fi
if [[ $WHICH == all || $WHICH == tsan ]]; then
  start=$(date +%s)
  SAN="-fsanitize=thread -fno-omit-frame-pointer"
  cmake -S . -B build-tsan "${COMMON[@]}" -DTORP_BUILD_PYTHON=OFF -DTORP_BUILD_TRAINING=OFF -DCMAKE_CXX_FLAGS="$SAN" \
    -DCMAKE_EXE_LINKER_FLAGS="$SAN" >/dev/null
  cmake --build build-tsan -j"$JOBS" --target torp_serve_tests
  FILTER='ConcurrentPredictions.*:*Threads*'
  selected=$(build-tsan/tests/torp_serve_tests --gtest_filter="$FILTER" --gtest_list_tests | grep -c '^  ' || true)
  if ((selected == 0)); then
    echo "sanitize.sh: the TSan filter '$FILTER' selects no test" >&2
    exit 1
  fi
  echo "sanitize.sh: TSan runs $selected tests ($FILTER)"
  TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
    build-tsan/tests/torp_serve_tests --gtest_filter="$FILTER"
  echo "sanitize.sh: TSan concurrent predictions clean after $(( $(date +%s) - start )) s"
fi
