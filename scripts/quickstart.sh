#!/usr/bin/env bash
# Set up, build, and answer the sample queries with the shipped models.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
./build/cli/torp list --models models
./build/cli/torp predict --models models examples/queries.jsonl
