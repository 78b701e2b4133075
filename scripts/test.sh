#!/usr/bin/env bash
# Set up, build everything (library, CLI, tests, benchmarks, Python module) and run every test;
# then build the serving-only configuration (TORP_BUILD_TRAINING=OFF) and run its tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh -DTORP_BUILD_TESTS=ON -DTORP_BUILD_BENCH=ON -DTORP_BUILD_PYTHON=ON -DTORP_BUILD_TRAINING=ON
ctest --test-dir build --output-on-failure -j "$(nproc)"
echo "== serving-only configuration (TORP_BUILD_TRAINING=OFF)"
BUILD_DIR=build-serving bash scripts/build.sh -DTORP_BUILD_TESTS=ON -DTORP_BUILD_BENCH=OFF -DTORP_BUILD_PYTHON=OFF \
  -DTORP_BUILD_TRAINING=OFF
ctest --test-dir build-serving --output-on-failure -j "$(nproc)"
