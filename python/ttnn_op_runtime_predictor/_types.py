# SPDX-License-Identifier: Apache-2.0
"""Result types: one exception class per TORP error code, and a batch item's success value.

The C++ extension builds these objects (``error``, ``Prediction`` and ``OutsideInput``), so a code means the same
class whichever entry point raised it.
"""
from typing import Dict, NamedTuple, Optional, Tuple, Type


class TorpError(Exception):
    """A TORP error: ``code`` (stable id, e.g. ``"invalid_argument"``), ``message``, ``path`` and ``file``.

    ``path`` is the JSON pointer of the offending field in the query or file, e.g.
    ``"/args/input_tensor/tensor_spec/logical_shape"``, or ``""`` when the error is not about one
    field. ``file`` is the file the error is about (a model file, dataset, op spec, sweep file or
    models directory), or ``""``; ``line`` and ``column`` locate it in that file when known (else 0).
    ``str(error)`` reads ``"code: file:line:column: message (at path)"`` (the empty parts left out)
    like the C++ library's messages. Catch ``TorpError`` for any failure, or a subclass for one code.
    """

    code = ""

    def __init__(self, message: str, path: str = "", code: str = "", file: str = "", line: int = 0,
                 column: int = 0) -> None:
        super().__init__(message, path, code, file, line, column)
        self.message = message
        self.path = path
        self.file = file
        self.line = line
        self.column = column
        if code:
            self.code = code

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "") + (f":{self.column}" if self.line and self.column else "")
            where += ": "
        return f"{self.code}: {where}{self.message}" + (f" (at {self.path})" if self.path else "")


class UnknownOpError(TorpError):
    """No loaded model serves an op of that name."""

    code = "unknown_op"


class NoModelError(TorpError):
    """The op is known, but no model covers this query (or the pinned model id does not)."""

    code = "no_model"


class InvalidArgumentError(TorpError):
    """An argument is missing, ill-typed, of the wrong rank, or outside the model's domain."""

    code = "invalid_argument"


class ModelOutputInvalidError(TorpError):
    """The network's answer is not a positive finite runtime (TORP never clamps it)."""

    code = "model_output_invalid"


class InvalidQueryError(TorpError):
    """The query is not JSON, or lacks ``op`` / ``args``."""

    code = "invalid_query"


class ModelFormatError(TorpError):
    """A model file is malformed (missing key, shape mismatch, non-finite weight)."""

    code = "model_format"


class ModelVersionError(TorpError):
    """A model file declares an unknown or future ``format_version``."""

    code = "model_version"


class OpSpecError(TorpError):
    """A model's op spec is malformed (bad expression, unknown argument type)."""

    code = "op_spec"


class TorpIOError(TorpError):
    """A model directory or file could not be read (or written)."""

    code = "io"


class DatasetError(TorpError):
    """A dataset or sweep file is malformed."""

    code = "dataset"


class TrainingError(TorpError):
    """Training could not proceed (e.g. too few configurations)."""

    code = "training"


_CLASS_BY_CODE: Dict[str, Type[TorpError]] = {
    c.code: c for c in (UnknownOpError, NoModelError, InvalidArgumentError, ModelOutputInvalidError,
                        InvalidQueryError, ModelFormatError, ModelVersionError, OpSpecError, TorpIOError,
                        DatasetError, TrainingError)}


def error(code: str, message: str, path: str, file: str = "", line: int = 0, column: int = 0) -> TorpError:
    """The exception for an error code (a plain ``TorpError`` carrying ``code`` if it has no class)."""
    cls = _CLASS_BY_CODE.get(code)
    if cls is not None:
        return cls(message, path, file=file, line=line, column=column)
    return TorpError(message, path, code, file, line, column)


class OutsideInput(NamedTuple):
    """A network input beyond its training range (it was clamped into it): the op-spec feature,
    its value for the query and the ``[min, max]`` over the training configurations."""

    feature: str
    value: float
    trained: Tuple[float, float]


class Prediction(NamedTuple):
    """A successful answer: the runtime in ns, the id of the model that answered, and how far to
    trust it (docs/query-format.md).

    ``interval_ns`` is ``(lo, hi)`` with lo <= runtime_ns <= hi, a prediction interval at the
    model's calibrated coverage, or ``None`` (``interval_note`` says why). ``domain`` is
    ``"seen"``, ``"inside"``, ``"outside"`` (``outside`` lists the inputs beyond the training
    range), ``"unknown"`` or ``"analytical"``. ``ignored`` names the given arguments the model
    never reads (JSON pointers such as ``"/args/memory_config"``).
    """

    runtime_ns: float
    model: str
    interval_ns: Optional[Tuple[float, float]] = None
    domain: str = "unknown"
    outside: Tuple[OutsideInput, ...] = ()
    ignored: Tuple[str, ...] = ()
    interval_note: str = ""
