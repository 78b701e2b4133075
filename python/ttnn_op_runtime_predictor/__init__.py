# SPDX-License-Identifier: Apache-2.0
"""TORP, the TTNN op runtime predictor: how long will this TTNN op take on the device?

    import ttnn_op_runtime_predictor as torp

    # The reference predictor's call, with its keyword arguments per op:
    ns = torp.get_runtime_from_model("exp", tensor_json=tensor, output_memory_config=dram)

    # The resident predictor, for any op of the query contract (docs/query-format.md):
    p = torp.Predictor()                         # model_dir, else $TORP_MODELS, else bundled models
    ns = p.predict("ttnn.exp", {"input_tensor": tensor})
    answers = p.predict_batch([{"op": "ttnn.exp", "args": {...}}, ...])   # never raises per item

Tensors are dicts in the JSON tt-metal serializes (``ttsl::json::to_json``). Runtimes are in ns.
Every failure raises a ``TorpError`` subclass with ``code``, ``message``, ``path`` and ``file``.
``python -m ttnn_op_runtime_predictor`` is ``torp predict`` (JSON Lines in, JSON Lines out).
"""
from ._core import __version__
from ._predictor import BUNDLED_MODELS, Predictor, resolve_models_dir
from ._reference import get_runtime_from_model
from ._training import drift, evaluate, from_sweep, regenerate, suggest, train
from ._types import (DatasetError, InvalidArgumentError, InvalidQueryError, ModelFormatError, ModelOutputInvalidError,
                     ModelVersionError, NoModelError, OpSpecError, OutsideInput, Prediction, TorpError,
                     TorpIOError, TrainingError, UnknownOpError)

__all__ = ["BUNDLED_MODELS", "DatasetError", "InvalidArgumentError", "InvalidQueryError", "ModelFormatError",
           "ModelOutputInvalidError", "ModelVersionError", "NoModelError", "OpSpecError", "OutsideInput", "Prediction",
           "Predictor", "TorpError", "TorpIOError", "TrainingError", "UnknownOpError", "drift", "evaluate",
           "from_sweep", "get_runtime_from_model", "regenerate", "resolve_models_dir", "suggest", "train"]
