#!/usr/bin/env bash
# Install the build tree into a scratch prefix, build the consumer against it with
# find_package(torp) (no source-tree paths, no TORP_MODELS, no C++ standard of its own), and check
# that its answers equal the installed `torp predict` truncated to integers, and that the
# installed CLI finds the installed models by itself.
set -euo pipefail
build_dir=$1
source_dir=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
unset TORP_MODELS
cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
# Training headers are installed with the training libraries only.
if grep -q "^TORP_BUILD_TRAINING:BOOL=OFF" "$build_dir/CMakeCache.txt"; then
  test ! -e "$work/prefix/include/torp/train" || { echo "training headers installed without training"; exit 1; }
else
  test -f "$work/prefix/include/torp/train/trainer.hpp" || { echo "training headers missing"; exit 1; }
fi
test -f "$work/prefix/include/op_perf/interface.hpp" || { echo "op_perf/interface.hpp not installed"; exit 1; }
# Only the consumer's own directory and the prefix: nothing of the source tree.
cp "$source_dir/CMakeLists.txt" "$source_dir/main.cpp" "$work/"
cmake -S "$work" -B "$work/build" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/build" >/dev/null
(cd "$work" && "$work/build/consumer") > "$work/out.txt"
# The same query through the installed CLI (no --models, no environment).
query='{"op": "ttnn::exp", "args": {"input_tensor": {"logical_shape": [1, 1, 64, 128], "dtype": "BFLOAT16", "layout": "TILE", "memory_config": {"buffer_type": "DRAM", "memory_layout": "INTERLEAVED"}}}}'
padded='{"op": "ttnn::exp", "args": {"input_tensor": {"logical_shape": [64, 128], "dtype": "BFLOAT16", "memory_config": {"buffer_type": "DRAM", "memory_layout": "INTERLEAVED"}}}}'
cli=$(cd "$work" && printf '%s\n%s\n' "$query" "$padded" | "$work/prefix/bin/torp" predict)
python3 - "$work/out.txt" "$cli" <<'PY'
import json, sys
out = dict(line.split(" ", 1) for line in open(sys.argv[1]).read().splitlines())
cli = [json.loads(l) for l in sys.argv[2].splitlines()]
assert all(a["status"] == "ok" for a in cli), cli
model, runtime = out["predictor"].split()
assert model == cli[0]["model"], (model, cli[0])
assert float(runtime) == cli[0]["runtime_ns"], (runtime, cli[0])
assert int(out["op_perf"]) == int(cli[0]["runtime_ns"]), (out["op_perf"], cli[0])
assert int(out["op_perf_padded"]) == int(cli[1]["runtime_ns"]), (out["op_perf_padded"], cli[1])
PY
# The installed CLI resolves <prefix>/share/torp/models relative to itself (no --models, no env).
(cd "$work" && "$work/prefix/bin/torp" list | tail -n 1 | grep -q "share/torp/models")
echo "consumer ok"
