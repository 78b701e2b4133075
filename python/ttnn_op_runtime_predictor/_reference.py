# SPDX-License-Identifier: Apache-2.0
"""``get_runtime_from_model``: the reference predictor's call, with its keyword arguments per op.

Each reference signature is turned into a query of the contract (docs/query-format.md) and
answered by a process-wide ``Predictor()``; the table in docs/python.md maps every keyword to
the query argument it fills, which is what an error's ``path`` names.
"""
import threading
from typing import Any, Dict, Literal, Optional, Tuple, overload

from ._predictor import Predictor

Tensor = Dict[str, Any]
MemoryConfig = Dict[str, Any]

_default: Optional[Predictor] = None
_default_lock = threading.Lock()


def default_predictor() -> Predictor:
    """The ``Predictor()`` that ``get_runtime_from_model`` uses, loaded on first use."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Predictor()
    return _default


def _output_memory_config(args: Dict[str, Any], config: Optional[MemoryConfig]) -> Dict[str, Any]:
    # The reference's default {} means "not given": the op's output memory config is then the input's.
    if config is not None and config != {}:
        args["memory_config"] = config
    return args


def _unary(op: str):
    def build(tensor_json: Tensor, output_memory_config: Optional[MemoryConfig] = None) -> Tuple[str, Dict[str, Any]]:
        return op, _output_memory_config({"input_tensor": tensor_json}, output_memory_config)
    return build


def _create_qkv_heads(tensor_json: Tensor, num_heads: int, num_kv_heads: Optional[int] = None,
                      transpose_k_heads: bool = False) -> Tuple[str, Dict[str, Any]]:
    args: Dict[str, Any] = {"input_tensor": tensor_json, "num_heads": num_heads, "transpose_k_heads": transpose_k_heads}
    if num_kv_heads is not None:
        args["num_kv_heads"] = num_kv_heads
    return "ttnn.experimental.create_qkv_heads", args


def _paged_sdpa_decode(q_tensor_json: Tensor, k_tensor_json: Tensor, v_tensor_json: Tensor,
                       page_table_tensor_json: Tensor, optional_cur_pos_tensor_json: Optional[Tensor] = None,
                       optional_attn_mask_tensor_json: Optional[Tensor] = None, is_causal: bool = False,
                       optional_scale: Optional[float] = 1.0, k_chunk_size: int = 0, q_chunk_size: int = 0,
                       output_memory_config: Optional[MemoryConfig] = None, math_fidelity: int = 0,
                       math_approx_mode: int = 0, fp32_dest_acc_en: int = 0, packer_l1_acc: int = 0,
                       exp_approx_mode: int = 0, use_sdpa_program_config: bool = True,
                       use_compute_kernel_config: bool = True) -> Tuple[str, Dict[str, Any]]:
    args: Dict[str, Any] = {"input_tensor_q": q_tensor_json, "input_tensor_k": k_tensor_json,
                            "input_tensor_v": v_tensor_json, "page_table_tensor": page_table_tensor_json,
                            "is_causal": is_causal}
    if optional_cur_pos_tensor_json is not None:
        args["cur_pos_tensor"] = optional_cur_pos_tensor_json
    if optional_attn_mask_tensor_json is not None:
        args["attn_mask"] = optional_attn_mask_tensor_json
    if optional_scale is not None:
        args["scale"] = optional_scale
    if use_sdpa_program_config:
        args["program_config"] = {"k_chunk_size": k_chunk_size, "q_chunk_size": q_chunk_size,
                                  "exp_approx_mode": exp_approx_mode}
    if use_compute_kernel_config:
        args["compute_kernel_config"] = {"math_fidelity": math_fidelity, "math_approx_mode": math_approx_mode,
                                         "fp32_dest_acc_en": fp32_dest_acc_en, "packer_l1_acc": packer_l1_acc}
    return "ttnn.transformer.paged_scaled_dot_product_attention_decode", _output_memory_config(args, output_memory_config)


_REFERENCE_CALLS = {
    "exp": _unary("ttnn.exp"),
    "concatenate_heads": _unary("ttnn.transformer.concatenate_heads"),
    "create_qkv_heads": _create_qkv_heads,
    "paged_scaled_dot_product_attention_decode": _paged_sdpa_decode,
}
for _name, _build in _REFERENCE_CALLS.items():  # so that a TypeError names the call the user made
    _build.__qualname__ = f"get_runtime_from_model({_name!r}, ...)"


@overload
def get_runtime_from_model(op_name: Literal["exp", "concatenate_heads"], tensor_json: Tensor,
                           output_memory_config: Optional[MemoryConfig] = None) -> float: ...


@overload
def get_runtime_from_model(op_name: Literal["create_qkv_heads"], tensor_json: Tensor, num_heads: int,
                           num_kv_heads: Optional[int] = None, transpose_k_heads: bool = False) -> float: ...


@overload
def get_runtime_from_model(op_name: Literal["paged_scaled_dot_product_attention_decode"], q_tensor_json: Tensor,
                           k_tensor_json: Tensor, v_tensor_json: Tensor, page_table_tensor_json: Tensor,
                           optional_cur_pos_tensor_json: Optional[Tensor] = None,
                           optional_attn_mask_tensor_json: Optional[Tensor] = None, is_causal: bool = False,
                           optional_scale: Optional[float] = 1.0, k_chunk_size: int = 0, q_chunk_size: int = 0,
                           output_memory_config: Optional[MemoryConfig] = None, math_fidelity: int = 0,
                           math_approx_mode: int = 0, fp32_dest_acc_en: int = 0, packer_l1_acc: int = 0,
                           exp_approx_mode: int = 0, use_sdpa_program_config: bool = True,
                           use_compute_kernel_config: bool = True) -> float: ...


@overload
def get_runtime_from_model(op_name: str, **args: Any) -> float: ...


def get_runtime_from_model(op_name: str, *args: Any, **kwargs: Any) -> float:
    """The runtime in ns of ``op_name`` called with the reference predictor's arguments.

    ``op_name`` is ``"exp"``, ``"concatenate_heads"``, ``"create_qkv_heads"`` or
    ``"paged_scaled_dot_product_attention_decode"`` (or their TTNN names) with the reference's
    positional/keyword arguments; tensors and memory configs are dicts in the JSON tt-metal
    serializes. Any other op takes the query contract's argument names as keywords, e.g.
    ``get_runtime_from_model("ttnn.matmul", input_tensor_a=a, input_tensor_b=b)``.

    Unlike the reference, which returned the integer 0 on any failure, this raises a
    ``TorpError`` subclass carrying ``code``, ``message`` and ``path`` (a JSON pointer into the
    query built from the arguments, see docs/python.md), and returns the float the C++ API answers.
    Arguments the signature does not know raise ``TypeError``.
    """
    if not isinstance(op_name, str):
        raise TypeError(f"op_name must be a str, not {type(op_name).__name__}")
    build = _REFERENCE_CALLS.get(op_name.replace("::", ".").rsplit(".", 1)[-1])
    if build is None:
        if args:
            raise TypeError(f"get_runtime_from_model({op_name!r}, ...) takes the op's arguments as keywords only")
        return default_predictor().predict(op_name, kwargs)
    op, query_args = build(*args, **kwargs)
    return default_predictor().predict(op, query_args)
