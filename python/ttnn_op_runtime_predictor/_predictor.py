# SPDX-License-Identifier: Apache-2.0
"""The resident Predictor and where it finds its models."""
import os
from typing import Any, Dict, Iterable, List, Optional, Union

from . import _core
from ._types import Prediction, TorpError

#: Models shipped inside the installed package (the wheel carries the repository's models/).
BUNDLED_MODELS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models")

Args = Union[Dict[str, Any], str]
Query = Union[Dict[str, Any], str]
PathLike = Union[str, "os.PathLike[str]"]


def resolve_models_dir(model_dir: Optional[PathLike] = None) -> str:
    """The model directory a ``Predictor(model_dir)`` loads.

    ``model_dir`` if given, else ``$TORP_MODELS``, else the models bundled with this package, else
    (as the C++ library) ``<prefix>/share/torp/models`` next to the module, else ``./models``.
    """
    if model_dir is None and not os.environ.get("TORP_MODELS") and os.path.isdir(BUNDLED_MODELS):
        return BUNDLED_MODELS
    return _core.resolve_models_dir(None if model_dir is None else os.fspath(model_dir))


class Predictor:
    """Loads and validates every model of a directory once, then answers runtime queries.

    Queries are thread-safe and release the GIL while the C++ predictor runs, so Python threads
    predict in parallel. Arguments follow the query contract (docs/query-format.md): names as in
    the TTNN Python signature, tensors as dicts in the JSON tt-metal serializes.

    Raises a ``TorpError`` subclass (``TorpIOError``, ``ModelFormatError``, ``ModelVersionError``,
    ``OpSpecError``) naming the file if a model cannot be loaded.
    """

    __slots__ = ("_core",)

    def __init__(self, model_dir: Optional[PathLike] = None) -> None:
        self._core = _core.Predictor(resolve_models_dir(model_dir))

    @property
    def directory(self) -> str:
        """The directory the models were loaded from."""
        return self._core.directory

    def predict(self, op: str, args: Args, model: Optional[str] = None, device: Optional[str] = None) -> float:
        """The runtime in ns of ``op`` on ``args``.

        ``op`` is the TTNN name (``"ttnn.exp"``), the C++ name (``"ttnn::exp"``) or the short name
        (``"exp"``); ``args`` a dict (or its JSON text); ``model`` pins a model id; ``device``
        (e.g. ``"wormhole_n300"``) restricts the choice to that device's models. Raises a
        ``TorpError`` subclass for the error's code, with ``message`` and ``path``.
        """
        return self._core.predict(op, args, model, device)

    def predict_record(self, op: str, args: Args, model: Optional[str] = None,
                       device: Optional[str] = None) -> Prediction:
        """As ``predict``, but the full answer: a ``Prediction`` with ``runtime_ns``, ``model``,
        ``interval_ns``, ``domain``, ``outside``, ``ignored`` and ``interval_note``."""
        return self._core.predict_record(op, args, model, device)

    def predict_batch(self, queries: Iterable[Query]) -> List[Union[Prediction, TorpError]]:
        """One answer per query, in order, without raising for a bad one.

        A query is a dict ``{"op": ..., "args": {...}, "model"?: ...}`` or its JSON text (a JSON
        Lines line), optionally with ``"model"`` and ``"device"``. An answer is the full
        ``Prediction`` record (as ``predict_record``) or the ``TorpError`` that ``predict`` would
        have raised. Answers equal ``predict``'s exactly.
        """
        return self._core.predict_batch(queries)

    def models(self) -> List[Dict[str, Any]]:
        """The loaded models, as ``torp list --json`` prints them.

        Each is a dict with ``id``, ``op``, ``file``, ``priority``, ``features`` and
        ``provenance`` (device, tt-metal commit, source data, test metrics, ...).
        """
        return self._core.models()

    def __repr__(self) -> str:
        return f"Predictor({self.directory!r})"
