# SPDX-License-Identifier: Apache-2.0
"""get_runtime_from_model: the reference's calls keep working and answer like the C++ API (the
CLI answers the same queries written in the contract), raising typed errors instead of 0."""
import re
import subprocess
import sys

import pytest

import ttnn_op_runtime_predictor as torp
from ttnn_op_runtime_predictor import get_runtime_from_model
from conftest import SAMPLE_QUERIES, SOURCE, WALKTHROUGH, cli_answers, memory_config, tensor


@pytest.fixture(scope="module")
def walkthrough_cli():
    """The CLI's runtime for each walk-through query."""
    answers = cli_answers([query for _, query in WALKTHROUGH.values()])
    assert all(a["status"] == "ok" for a in answers), answers
    return {name: a["runtime_ns"] for name, a in zip(WALKTHROUGH, answers)}


@pytest.mark.parametrize("name", list(WALKTHROUGH))
def test_walkthrough_equals_cli(name, walkthrough_cli):
    kwargs, _ = WALKTHROUGH[name]
    assert get_runtime_from_model(**kwargs) == walkthrough_cli[name]


@pytest.mark.parametrize("name", list(WALKTHROUGH))
def test_positional_arguments_in_the_reference_order(name, walkthrough_cli):
    kwargs, _ = WALKTHROUGH[name]
    order = {"exp": ["tensor_json", "output_memory_config"],
             "concatenate_heads": ["tensor_json", "output_memory_config"],
             "create_qkv_heads": ["tensor_json", "num_heads", "num_kv_heads", "transpose_k_heads"],
             "paged_scaled_dot_product_attention_decode": [
                 "q_tensor_json", "k_tensor_json", "v_tensor_json", "page_table_tensor_json",
                 "optional_cur_pos_tensor_json", "optional_attn_mask_tensor_json", "is_causal", "optional_scale",
                 "k_chunk_size", "q_chunk_size", "output_memory_config", "math_fidelity", "math_approx_mode",
                 "fp32_dest_acc_en", "packer_l1_acc", "exp_approx_mode"]}[name]
    positional = [kwargs.get(k) for k in order]
    assert get_runtime_from_model(name, *positional) == walkthrough_cli[name]


def test_ttnn_and_cpp_op_names(walkthrough_cli):
    kwargs = dict(WALKTHROUGH["concatenate_heads"][0])
    for op_name in ("ttnn.transformer.concatenate_heads", "ttnn::transformer::concatenate_heads"):
        kwargs["op_name"] = op_name
        assert get_runtime_from_model(**kwargs) == walkthrough_cli["concatenate_heads"]


def test_reference_defaults():
    heads, qkv = WALKTHROUGH["concatenate_heads"][1]["args"]["input_tensor"], tensor([1, 1, 64, 3 * 128])
    queries = [{"op": "ttnn.transformer.concatenate_heads", "args": {"input_tensor": heads}},
               {"op": "ttnn.experimental.create_qkv_heads", "args": {"input_tensor": qkv, "num_heads": 2}},
               {"op": "ttnn.transformer.paged_scaled_dot_product_attention_decode",
                "args": {k: v for k, v in WALKTHROUGH["paged_scaled_dot_product_attention_decode"][1]["args"].items()
                         if k not in ("program_config", "compute_kernel_config", "memory_config")}}]
    queries[2]["args"].update(is_causal=False, scale=1.0)
    cli = [a["runtime_ns"] for a in cli_answers(queries)]
    # output_memory_config={} (the reference's default) means "not given": the input's.
    assert get_runtime_from_model("concatenate_heads", heads, {}) == cli[0]
    assert get_runtime_from_model("concatenate_heads", heads) == cli[0]
    # num_kv_heads=None is num_heads; transpose_k_heads False.
    assert get_runtime_from_model("create_qkv_heads", tensor_json=qkv, num_heads=2) == cli[1]
    sdpa = WALKTHROUGH["paged_scaled_dot_product_attention_decode"][0]
    assert get_runtime_from_model(
        "paged_scaled_dot_product_attention_decode",
        **{k: sdpa[k] for k in ("q_tensor_json", "k_tensor_json", "v_tensor_json", "page_table_tensor_json")},
        use_sdpa_program_config=False, use_compute_kernel_config=False) == cli[2]


def test_other_ops_take_the_contract_arguments_as_keywords():
    queries = [q for q in SAMPLE_QUERIES if q["op"] in ("ttnn.matmul", "ttnn.reshard") and "model" not in q]
    assert {q["op"] for q in queries} == {"ttnn.matmul", "ttnn.reshard"}
    for q, cli in zip(queries, cli_answers(queries)):
        if cli["status"] == "ok":
            assert get_runtime_from_model(q["op"], **q["args"]) == cli["runtime_ns"]
        else:
            with pytest.raises(torp.NoModelError):
                get_runtime_from_model(q["op"], **q["args"])


def test_failures_raise_typed_errors_instead_of_zero():
    with pytest.raises(torp.InvalidArgumentError) as raised:
        get_runtime_from_model("exp", tensor_json=tensor([1, 1, 32, 32], dtype=4))  # BFLOAT4_B
    assert raised.value.path == "/args/input_tensor/tensor_spec/tensor_layout/dtype"
    with pytest.raises(torp.InvalidArgumentError) as raised:
        get_runtime_from_model("create_qkv_heads", tensor_json=tensor([1, 1, 32, 100]), num_heads=3)
    assert raised.value.path == "/args/input_tensor/tensor_spec/logical_shape"
    with pytest.raises(torp.InvalidArgumentError) as raised:
        get_runtime_from_model("concatenate_heads", tensor([1, 32, 512, 64]), {"memory_layout": 0})
    assert raised.value.path == "/args/memory_config/buffer_type"
    with pytest.raises(torp.UnknownOpError):
        get_runtime_from_model("conv2d", input_tensor=tensor([64, 64]))


def test_arguments_the_signature_does_not_know_raise_type_error():
    with pytest.raises(TypeError, match=re.escape("get_runtime_from_model('exp', ...)")):
        get_runtime_from_model("exp", tensor_json=tensor([64, 64]), memory_config=memory_config())
    with pytest.raises(TypeError):
        get_runtime_from_model("create_qkv_heads", tensor_json=tensor([1, 1, 32, 96]))  # num_heads missing
    with pytest.raises(TypeError):
        get_runtime_from_model("ttnn.matmul", tensor([64, 64]))


def test_usage_example_prints_the_walkthrough_answers(walkthrough_cli):
    out = subprocess.run([sys.executable, str(SOURCE / "examples" / "usage.py")], capture_output=True, text=True,
                         check=True, timeout=120).stdout
    printed = dict(re.findall(r"^(\w+): ([0-9.e+]+) ns$", out, re.M))
    assert {k: float(v) for k, v in printed.items()} == walkthrough_cli
