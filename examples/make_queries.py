#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Write examples/queries.jsonl: sample queries for every shipped op, tensors in the JSON that
tt-metal's ttsl::json::to_json writes (full Tensor form), plus a few that show error answers."""
import json
import os

TILE = {"face_shape": [16, 16], "num_faces": 4, "tile_shape": [32, 32]}
DT = {"BFLOAT16": 0, "FLOAT32": 1, "UINT32": 2, "BFLOAT8_B": 3, "UINT16": 6}
ML = {"INTERLEAVED": 0, "HEIGHT_SHARDED": 2, "WIDTH_SHARDED": 3, "BLOCK_SHARDED": 4}


def grid(x0, y0, x1, y1):
    return [{"end": {"x": x1, "y": y1}, "start": {"x": x0, "y": y0}}]


def memcfg(buffer, layout="INTERLEAVED", shard=None):
    m = {"buffer_type": 0 if buffer == "DRAM" else 1, "created_with_nd_shard_spec": False, "memory_layout": ML[layout]}
    if shard:
        m["shard_spec"] = {"grid": shard[0], "mode": 0, "orientation": 0, "physical_shard_shape": None, "shape": shard[1]}
    return m


def tensor(shape, dtype="BFLOAT16", buffer="DRAM", layout="INTERLEAVED", shard=None, tile=True):
    return {"storage": {"index": 1, "value": {}},
            "tensor_spec": {"logical_shape": shape, "tensor_layout": {
                "alignment": {"value": [32, 32]}, "dtype": DT[dtype], "memory_config": memcfg(buffer, layout, shard),
                "page_config": {"config": {"index": 1 if tile else 0, "value": {"tile": TILE}}}}}}


queries = [
    {"op": "ttnn.exp", "args": {"input_tensor": tensor([1, 1, 64, 128])}},
    {"op": "ttnn.exp", "args": {"input_tensor": tensor([4, 53, 32, 160], "BFLOAT16", "DRAM")}},
    {"op": "ttnn.exp", "args": {"input_tensor": tensor([2048, 1024], "UINT16", "L1")}},
    {"op": "ttnn.exp", "args": {"input_tensor": tensor([8, 384, 384], "FLOAT32", "DRAM")}},
    {"op": "ttnn::exp", "args": {"input_tensor": tensor([1, 2, 256, 256], "BFLOAT8_B", "L1")}},
    {"op": "ttnn.exp", "model": "reference/exp", "args": {"input_tensor": tensor([2048, 2048], "BFLOAT16", "DRAM")}},
    {"op": "ttnn.matmul", "args": {
        "input_tensor_a": tensor([1, 1, 2560, 384], "BFLOAT16", "L1", "HEIGHT_SHARDED", (grid(0, 0, 7, 0), [320, 384])),
        "input_tensor_b": tensor([1, 1, 384, 288])}},
    {"op": "ttnn.transformer.concatenate_heads", "args": {
        "input_tensor": tensor([8, 16, 128, 64], "BFLOAT16", "L1"), "memory_config": memcfg("L1")}},
    {"op": "ttnn.experimental.create_qkv_heads", "args": {
        "input_tensor": tensor([8, 1, 128, 3072], "BFLOAT16", "L1"), "num_heads": 16, "num_kv_heads": 8,
        "transpose_k_heads": False}},
    {"op": "ttnn.transformer.paged_scaled_dot_product_attention_decode", "args": {
        "input_tensor_q": tensor([1, 8, 32, 128], "BFLOAT16", "DRAM"),
        "input_tensor_k": tensor([256, 8, 64, 128], "BFLOAT8_B", "DRAM"),
        "input_tensor_v": tensor([256, 8, 64, 128], "BFLOAT8_B", "DRAM"),
        "page_table_tensor": tensor([8, 32], "UINT32", "DRAM", tile=False),
        "cur_pos_tensor": tensor([8], "UINT32", "DRAM", tile=False),
        "is_causal": True,
        "program_config": {"k_chunk_size": 128, "q_chunk_size": 32, "exp_approx_mode": False},
        "compute_kernel_config": {"math_fidelity": "HiFi2", "math_approx_mode": False, "fp32_dest_acc_en": False,
                                  "packer_l1_acc": False},
        "memory_config": memcfg("DRAM")}},
    {"op": "ttnn.reshard", "args": {
        "input_tensor": tensor([1, 1, 1024, 256], "BFLOAT16", "L1", "HEIGHT_SHARDED", (grid(0, 0, 7, 0), [128, 256])),
        "memory_config": memcfg("L1", "WIDTH_SHARDED", (grid(0, 0, 7, 0), [1024, 32]))}},
    # A reshard pair without a trained or imported model (the analytical model answers), then
    # error answers: an unsupported dtype, an unknown op.
    {"op": "ttnn.reshard", "args": {
        "input_tensor": tensor([1, 1, 1024, 256], "BFLOAT16", "L1", "BLOCK_SHARDED", (grid(0, 0, 3, 3), [256, 64])),
        "memory_config": memcfg("L1", "HEIGHT_SHARDED", (grid(0, 0, 7, 0), [128, 256]))}},
    {"op": "ttnn.exp", "args": {"input_tensor": tensor([64, 64], "UINT32", "DRAM")}},
    {"op": "ttnn.conv2d", "args": {"input_tensor": tensor([64, 64])}},
]
queries[-2]["args"]["input_tensor"]["tensor_spec"]["tensor_layout"]["dtype"] = 4  # BFLOAT4_B

with open(os.path.join(os.path.dirname(__file__), "queries.jsonl"), "w") as f:
    for q in queries:
        f.write(json.dumps(q) + "\n")
