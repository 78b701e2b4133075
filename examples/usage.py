#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The reference predictor's usage walk-through, with TORP's Python module.

    pip install --no-build-isolation .      # from the repository root, once
    python3 examples/usage.py

Tensors are passed as tt-metal serializes them (ttsl::json::to_json of a ttnn.Tensor); each call
returns the runtime in ns, or raises a TorpError subclass (the reference returned 0 instead).
"""
import ttnn_op_runtime_predictor as predictor

BFLOAT16, UINT32 = 0, 2  # ttnn.DataType values
DRAM = {"buffer_type": 0, "created_with_nd_shard_spec": False, "memory_layout": 0}  # DRAM, INTERLEAVED


def tensor(shape, dtype=BFLOAT16, tile=True):
    """An interleaved DRAM device tensor in tt-metal's JSON."""
    page = {"index": 1 if tile else 0,  # TILE or ROW_MAJOR
            "value": {"tile": {"face_shape": [16, 16], "num_faces": 4, "tile_shape": [32, 32]}}}
    return {"storage": {"index": 1, "value": {}},
            "tensor_spec": {"logical_shape": shape,
                            "tensor_layout": {"alignment": {"value": [32, 32]}, "dtype": dtype,
                                              "memory_config": DRAM, "page_config": {"config": page}}}}


# create_qkv_heads: fused QKV of 32 query heads and 4 KV heads of size 64.
num_heads, num_kv_heads, head_dim = 32, 4, 64
runtime = predictor.get_runtime_from_model(
    op_name="create_qkv_heads",
    tensor_json=tensor([1, 1, 512, (num_heads + 2 * num_kv_heads) * head_dim]),
    num_heads=num_heads, num_kv_heads=num_kv_heads, transpose_k_heads=True)
print(f"create_qkv_heads: {runtime!r} ns")

# concatenate_heads: [1, 32, 512, 64] DRAM -> DRAM.
runtime = predictor.get_runtime_from_model(
    "concatenate_heads", tensor_json=tensor([1, 32, 512, 64]), output_memory_config=DRAM)
print(f"concatenate_heads: {runtime!r} ns")

# exp: [1, 16, 256, 64] bfloat16 in DRAM.
runtime = predictor.get_runtime_from_model("exp", tensor_json=tensor([1, 16, 256, 64]), output_memory_config=DRAM)
print(f"exp: {runtime!r} ns")

# paged SDPA decode: one token of 32 query heads against 512 cached positions of 4 KV heads.
runtime = predictor.get_runtime_from_model(
    op_name="paged_scaled_dot_product_attention_decode",
    q_tensor_json=tensor([1, 32, 1, 64]),
    k_tensor_json=tensor([1, 4, 512, 64]),
    v_tensor_json=tensor([1, 4, 512, 64]),
    page_table_tensor_json=tensor([1, 1], UINT32, tile=False),
    is_causal=True, optional_scale=8.0,
    k_chunk_size=64, q_chunk_size=64,
    output_memory_config=DRAM,
    math_fidelity=2,  # HiFi2
    math_approx_mode=1, fp32_dest_acc_en=1, packer_l1_acc=1, exp_approx_mode=1)
print(f"paged_scaled_dot_product_attention_decode: {runtime!r} ns")

# A query the models cannot answer raises a typed error carrying the offending JSON path.
try:
    predictor.get_runtime_from_model("exp", tensor_json=tensor([1, 16, 256, 64], dtype=4))  # BFLOAT4_B
except predictor.InvalidArgumentError as e:
    print(f"error {e.code} at {e.path}: {e.message}")
