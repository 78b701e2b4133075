# SPDX-License-Identifier: Apache-2.0
"""Shared by the Python tests: the repository, the torp CLI as the oracle, tensor builders and
the reference's usage walk-through. ctest sets TORP_SOURCE_DIR, TORP_CLI, TORP_BUILD_DIR,
TORP_MODELS and PYTHONPATH (the build tree's package)."""
import json
import os
import subprocess
from pathlib import Path

import pytest

import ttnn_op_runtime_predictor as torp

SOURCE = Path(os.environ["TORP_SOURCE_DIR"])
MODELS = SOURCE / "models"
CLI = os.environ["TORP_CLI"]
# Sample queries for every shipped op, plus error answers (examples/make_queries.py).
SAMPLE_QUERIES = [json.loads(line) for line in (SOURCE / "examples" / "queries.jsonl").read_text().splitlines()]

TILE = {"face_shape": [16, 16], "num_faces": 4, "tile_shape": [32, 32]}
BFLOAT16, UINT32 = 0, 2
DRAM, L1 = 0, 1


def memory_config(buffer=DRAM):
    return {"buffer_type": buffer, "created_with_nd_shard_spec": False, "memory_layout": 0}


def tensor(shape, dtype=BFLOAT16, buffer=DRAM, tile=True):
    """A device tensor as tt-metal's ttsl::json::to_json writes it (interleaved)."""
    return {"storage": {"index": 1, "value": {}},
            "tensor_spec": {"logical_shape": shape, "tensor_layout": {
                "alignment": {"value": [32, 32]}, "dtype": dtype, "memory_config": memory_config(buffer),
                "page_config": {"config": {"index": 1 if tile else 0, "value": {"tile": TILE}}}}}}


def exp_queries(n):
    """n distinct exp queries over shapes, dtypes and buffers."""
    return [{"op": "ttnn.exp", "args": {"input_tensor": tensor([1 + i % 3, 2, 32 * (1 + i % 5), 64 + 32 * (i % 17)],
                                                              i % 2, (i // 2) % 2)}}
            for i in range(n)]


# The reference's usage walk-through: each call as get_runtime_from_model arguments, and the same
# query written in the contract (docs/query-format.md), which the CLI answers.
QKV = tensor([1, 1, 512, (32 + 2 * 4) * 64])
HEADS = tensor([1, 32, 512, 64])
EXP_INPUT = tensor([1, 16, 256, 64])
Q, K, V = tensor([1, 32, 1, 64]), tensor([1, 4, 512, 64]), tensor([1, 4, 512, 64])
PAGE_TABLE = tensor([1, 1], UINT32, tile=False)
WALKTHROUGH = {
    "create_qkv_heads": (
        dict(op_name="create_qkv_heads", tensor_json=QKV, num_heads=32, num_kv_heads=4, transpose_k_heads=True),
        {"op": "ttnn.experimental.create_qkv_heads",
         "args": {"input_tensor": QKV, "num_heads": 32, "num_kv_heads": 4, "transpose_k_heads": True}}),
    "concatenate_heads": (
        dict(op_name="concatenate_heads", tensor_json=HEADS, output_memory_config=memory_config(DRAM)),
        {"op": "ttnn.transformer.concatenate_heads", "args": {"input_tensor": HEADS, "memory_config": memory_config(DRAM)}}),
    "exp": (
        dict(op_name="exp", tensor_json=EXP_INPUT, output_memory_config=memory_config(DRAM)),
        {"op": "ttnn.exp", "args": {"input_tensor": EXP_INPUT, "memory_config": memory_config(DRAM)}}),
    "paged_scaled_dot_product_attention_decode": (
        dict(op_name="paged_scaled_dot_product_attention_decode", q_tensor_json=Q, k_tensor_json=K, v_tensor_json=V,
             page_table_tensor_json=PAGE_TABLE, is_causal=True, optional_scale=8.0, k_chunk_size=64,
             q_chunk_size=64, output_memory_config=memory_config(DRAM), math_fidelity=2, math_approx_mode=1,
             fp32_dest_acc_en=1, packer_l1_acc=1, exp_approx_mode=1),
        {"op": "ttnn.transformer.paged_scaled_dot_product_attention_decode",
         "args": {"input_tensor_q": Q, "input_tensor_k": K, "input_tensor_v": V, "page_table_tensor": PAGE_TABLE,
                  "is_causal": True, "scale": 8.0,
                  "program_config": {"k_chunk_size": 64, "q_chunk_size": 64, "exp_approx_mode": True},
                  "compute_kernel_config": {"math_fidelity": "HiFi2", "math_approx_mode": True,
                                            "fp32_dest_acc_en": True, "packer_l1_acc": True},
                  "memory_config": memory_config(DRAM)}}),
}


def cli_answers(queries, models=MODELS):
    """The torp CLI's answers (parsed JSON lines) to queries (dicts or JSON text lines)."""
    text = "".join((q if isinstance(q, str) else json.dumps(q)) + "\n" for q in queries)
    out = subprocess.run([CLI, "predict", "--models", str(models)], input=text, capture_output=True, text=True,
                         check=True).stdout
    answers = [json.loads(line) for line in out.splitlines()]
    assert len(answers) == len(queries)
    return answers


def record_of(cli):
    """The Python record of a CLI ok answer: every field of the JSON line."""
    interval = cli.get("interval_ns")
    return torp.Prediction(
        cli["runtime_ns"], cli["model"], None if interval is None else tuple(interval), cli["domain"],
        tuple(torp.OutsideInput(o["feature"], o["value"], tuple(o["trained"])) for o in cli.get("outside", [])),
        tuple(cli.get("ignored", [])), cli.get("interval_note", ""))


def assert_same_answer(cli, python):
    """A CLI answer equals a Python one (a runtime or a raised/returned TorpError): runtimes bit
    for bit (the CLI prints the shortest text that round-trips the double), errors field for field."""
    if cli["status"] == "ok":
        if isinstance(python, torp.Prediction):
            assert python == record_of(cli)
        else:
            assert python == cli["runtime_ns"]
    else:
        assert isinstance(python, torp.TorpError), python
        assert (python.code, python.message, python.path) == tuple(cli["error"][k] for k in ("code", "message", "path"))
        assert type(python) is not torp.TorpError  # each serving code has its own class


def answer_of(call):
    """call()'s value, or the TorpError it raised."""
    try:
        return call()
    except torp.TorpError as e:
        return e


@pytest.fixture(scope="session")
def predictor():
    return torp.Predictor(str(MODELS))
