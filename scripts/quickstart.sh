#!/usr/bin/env bash
# Set up, build the library and the torp command only, and answer the sample queries with the
# shipped models. (scripts/test.sh builds the tests, benchmarks and Python module too.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
TARGETS=torp_cli bash scripts/build.sh -DTORP_BUILD_TESTS=OFF -DTORP_BUILD_BENCH=OFF -DTORP_BUILD_PYTHON=OFF
./build/cli/torp list --models models
./build/cli/torp predict --models models examples/queries.jsonl
