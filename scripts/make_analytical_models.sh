#!/usr/bin/env bash
# Write the shipped analytical models (models/<device>/analytical/<op>.json) for every analytical
# op spec on every device, with the "analytical" interval band calibrated on the held-out test
# configurations of the two ops with measurements (exp, height-sharded matmul on wormhole_n300).
# Env: TORP (torp binary, default build/cli/torp), OUT_DIR (default models). See docs/analytical.md.
set -euo pipefail
cd "$(dirname "$0")/.."
TORP="${TORP:-build/cli/torp}"
OUT_DIR="${OUT_DIR:-models}"
SPECS=(ops/unary.json ops/binary.json ops/typecast.json ops/matmul_linear.json ops/softmax.json ops/norm.json
       ops/reduction.json ops/transpose.json ops/concat.json ops/to_memory_config.json ops/reshard_any.json
       ops/to_layout.json ops/embedding.json)
# Device and priority: among models of one op the highest priority answers a query that names no
# device, so wormhole_n300 (the device of the measurements and the trained models) comes first.
DEVICES=(wormhole_n300:-100 wormhole_n150:-110 blackhole_p150:-120)
specs=()
for s in "${SPECS[@]}"; do specs+=(--op-spec "$s"); done
# 1. The wormhole_n300 exp and matmul models without a band, to measure the band with.
"$TORP" make-analytical --op-spec ops/unary.json --op-spec ops/matmul_linear.json --device devices/wormhole_n300.json \
  --out-dir "$OUT_DIR" --overwrite
# 2. Every model, with the band from their held-out errors (the band report on stdout, once per device).
band=(--band-from "$OUT_DIR/wormhole_n300/analytical/exp.json=data/exp/exp_wormhole.jsonl"
      --band-from "$OUT_DIR/wormhole_n300/analytical/matmul.json=data/matmul_height_sharded/matmul_height_sharded_wormhole.jsonl")
for dp in "${DEVICES[@]}"; do
  "$TORP" make-analytical "${specs[@]}" --device "devices/${dp%%:*}.json" --priority "${dp##*:}" \
    --out-dir "$OUT_DIR" --overwrite "${band[@]}"
done
