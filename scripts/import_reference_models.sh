#!/usr/bin/env bash
# Import the reference predictor's mlpack models (data/reference_models) as the shipped TORP
# models under models/reference. Env: TORP (torp binary, default build/cli/torp), OUT_DIR
# (default models/reference). Re-run after changing an op spec's reference recipe.
set -euo pipefail
cd "$(dirname "$0")/.."
TORP="${TORP:-build/cli/torp}"
OUT_DIR="${OUT_DIR:-models/reference}"
SRC=data/reference_models
CONFIG="$SRC/mlp_config.json"

import() { "$TORP" import-mlpack --priority 0 --force "$@"; }

import --id reference/exp --op-spec ops/exp.json --device devices/wormhole_n300.json \
  --model "$SRC/exp_mlp_model.bin" --scaler "$SRC/exp_scaler.bin" \
  --config "$CONFIG" --config-name exp --reported-r2 0.95 --out "$OUT_DIR/exp.json"
import --id reference/concatenate_heads --op-spec ops/concatenate_heads.json --device devices/wormhole_n150.json \
  --model "$SRC/concatenate_heads_mlp_model.bin" --scaler "$SRC/concatenate_heads_scaler.bin" \
  --config "$CONFIG" --config-name concatenate_heads --reported-r2 0.979 --out "$OUT_DIR/concatenate_heads.json"
import --id reference/create_qkv_heads --op-spec ops/create_qkv_heads.json --device devices/wormhole_n150.json \
  --model "$SRC/create_qkv_heads_mlp_model.bin" --scaler "$SRC/create_qkv_heads_scaler.bin" \
  --config "$CONFIG" --config-name create_qkv_heads --reported-r2 0.9988 --out "$OUT_DIR/create_qkv_heads.json"
import --id reference/paged_scaled_dot_product_attention_decode \
  --op-spec ops/paged_scaled_dot_product_attention_decode.json --device devices/wormhole_n150.json \
  --model "$SRC/paged_sdpa_decode_mlp_model.bin" --scaler "$SRC/paged_sdpa_decode_scaler.bin" \
  --config "$CONFIG" --config-name paged_scaled_dot_product_attention_decode \
  --out "$OUT_DIR/paged_scaled_dot_product_attention_decode.json"

# One reshard model per (input, output) sharding pair; mlp_config.json does not list them.
for pair in BLOCK:BLOCK HEIGHT:BLOCK HEIGHT:WIDTH WIDTH:BLOCK WIDTH:HEIGHT; do
  in="${pair%%:*}" out="${pair##*:}"
  name="${in}_ROW_MAJOR_${out}_ROW_MAJOR"
  import --id "reference/reshard/$name" --op-spec ops/reshard.json --device devices/wormhole_n150.json \
    --model "$SRC/reshard/model_$name.bin" --scaler "$SRC/reshard/scaler_$name.bin" \
    --hidden 100,50 --board n150 --source-dir train/mlpack/reshard --reported-r2 0.89-0.98 \
    --applies-when "input_tensor.memory_layout == ${in}_SHARDED && memory_config.memory_layout == ${out}_SHARDED" \
    --out "$OUT_DIR/reshard/$name.json"
done
