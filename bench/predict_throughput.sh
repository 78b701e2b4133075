#!/usr/bin/env bash
# Throughput of `torp predict` from a file: N exp queries in tt-metal's full Tensor JSON form.
#   bash bench/predict_throughput.sh [N] [TORP] [MODELS]
set -euo pipefail
n=${1:-200000}
torp=${2:-build/cli/torp}
models=${3:-models}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$n" > "$work/queries.jsonl" <<'PY'
import json, sys
tile = {"face_shape": [16, 16], "num_faces": 4, "tile_shape": [32, 32]}
for i in range(int(sys.argv[1])):
    shape = [1 + i % 4, 8 + i % 13, 32 * (4 + i % 9), 32 * (4 + i % 7)]
    t = {"storage": {"index": 1, "value": {}}, "tensor_spec": {"logical_shape": shape, "tensor_layout": {
        "alignment": {"value": [32, 32]}, "dtype": i % 2,
        "memory_config": {"buffer_type": (i // 2) % 2, "created_with_nd_shard_spec": False, "memory_layout": 0},
        "page_config": {"config": {"index": 1, "value": {"tile": tile}}}}}}
    print(json.dumps({"op": "ttnn.exp", "args": {"input_tensor": t}}))
PY
bytes=$(wc -c < "$work/queries.jsonl")
start=$(date +%s.%N)
"$torp" predict --models "$models" "$work/queries.jsonl" > "$work/answers.jsonl"
end=$(date +%s.%N)
ok=$(grep -c '"status": "ok"' "$work/answers.jsonl" || true)
python3 -c "
n=$n; t=$end-$start
print(f'torp predict: {n} queries ({$bytes/n:.0f} bytes each) in {t:.2f} s = {n/t:,.0f} queries/s; {$ok} ok')"
