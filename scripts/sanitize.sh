#!/usr/bin/env bash
# Sanitizer runs (g++):
#  1. AddressSanitizer + UndefinedBehaviorSanitizer: the whole GoogleTest suite (serving and
#     training tests, the CLI they start included) in build-asan/.
#  2. ThreadSanitizer: the concurrent-prediction tests (threads sharing one Predictor, answers
#     equal to serial ones) in build-tsan/.
# Any sanitizer report fails the run. `scripts/sanitize.sh asan` or `tsan` runs one of them.
set -euo pipefail
cd "$(dirname "$0")/.."
WHICH=${1:-all}
COMMON=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DTORP_BUILD_TESTS=ON -DTORP_BUILD_BENCH=OFF -DTORP_BUILD_PYTHON=OFF
        -DTORP_INSTALL=OFF)
command -v ccache >/dev/null && COMMON+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
start=$(date +%s)
if [[ $WHICH == all || $WHICH == asan ]]; then
  SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
  cmake -S . -B build-asan "${COMMON[@]}" -DCMAKE_CXX_FLAGS="$SAN" -DCMAKE_EXE_LINKER_FLAGS="$SAN" >/dev/null
  cmake --build build-asan -j"$(nproc)" --target torp_cli torp_serve_tests torp_train_tests
  ASAN_OPTIONS=detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -j "$(nproc)"
  echo "sanitize.sh: ASan+UBSan suite clean after $(( $(date +%s) - start )) s"
fi
if [[ $WHICH == all || $WHICH == tsan ]]; then
  SAN="-fsanitize=thread -fno-omit-frame-pointer"
  cmake -S . -B build-tsan "${COMMON[@]}" -DTORP_BUILD_TRAINING=OFF -DCMAKE_CXX_FLAGS="$SAN" \
    -DCMAKE_EXE_LINKER_FLAGS="$SAN" >/dev/null
  cmake --build build-tsan -j"$(nproc)" --target torp_serve_tests
  TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
    build-tsan/tests/torp_serve_tests --gtest_filter='*Concurrent*:*Threads*'
  echo "sanitize.sh: TSan concurrent predictions clean after $(( $(date +%s) - start )) s"
fi
