#!/usr/bin/env bash
# Install the build tree into a scratch prefix, build the consumer against it with
# find_package(torp), and check that the installed CLI finds the installed models by itself.
set -euo pipefail
build_dir=$1
source_dir=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
# Training headers are installed with the training libraries only.
if grep -q "^TORP_BUILD_TRAINING:BOOL=OFF" "$build_dir/CMakeCache.txt"; then
  test ! -e "$work/prefix/include/torp/train" || { echo "training headers installed without training"; exit 1; }
else
  test -f "$work/prefix/include/torp/train/trainer.hpp" || { echo "training headers missing"; exit 1; }
fi
cmake -S "$source_dir" -B "$work/build" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/build" >/dev/null
"$work/build/consumer" "$work/prefix/share/torp/models"
# The installed CLI resolves <prefix>/share/torp/models relative to itself (no --models, no env).
(cd "$work" && env -u TORP_MODELS "$work/prefix/bin/torp" list | tail -n 1 | grep -q "share/torp/models")
echo "consumer ok"
