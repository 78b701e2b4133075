# SPDX-License-Identifier: Apache-2.0
"""TORP, the TTNN op runtime predictor, from Python.

    import torp
    p = torp.Predictor()            # --models / $TORP_MODELS / installed / ./models
    ns = p.predict("ttnn.exp", {"input_tensor": {...tt-metal tensor JSON...}})

``predict`` returns the runtime in nanoseconds or raises a ``TorpError`` subclass carrying
``code``, ``message`` and ``path`` (JSON pointer of the offending field). ``predict_batch``
answers many queries without raising: one dict per query.
"""
import json as _json

from . import _torp

__all__ = ["Predictor", "TorpError", "UnknownOpError", "NoModelError", "InvalidArgumentError",
           "ModelOutputInvalidError", "InvalidQueryError", "ModelLoadError"]


class TorpError(Exception):
    """Base class: ``code`` (stable id), ``message``, ``path`` (JSON pointer or "")."""

    def __init__(self, code, message, path=""):
        super().__init__(f"{code}: {message}" + (f" (at {path})" if path else ""))
        self.code, self.message, self.path = code, message, path


class UnknownOpError(TorpError):
    pass


class NoModelError(TorpError):
    pass


class InvalidArgumentError(TorpError):
    pass


class ModelOutputInvalidError(TorpError):
    pass


class InvalidQueryError(TorpError):
    pass


class ModelLoadError(TorpError):
    pass


_BY_CODE = {"unknown_op": UnknownOpError, "no_model": NoModelError, "invalid_argument": InvalidArgumentError,
            "model_output_invalid": ModelOutputInvalidError, "invalid_query": InvalidQueryError}


def _error(code, message, path):
    return _BY_CODE.get(code, TorpError)(code, message, path)


class Predictor:
    """Loads every model of a directory once; queries are thread-safe and release the GIL."""

    def __init__(self, models=None):
        self.models_dir = _torp.resolve_models_dir(models)
        try:
            self._p = _torp.Predictor(self.models_dir)
        except ValueError as e:
            code, _, message = str(e).partition("\t")
            raise ModelLoadError(code, message) from None

    def predict(self, op, args, model=None):
        """Runtime in ns of ``op`` on ``args`` (dict or JSON text); raises TorpError."""
        text = args if isinstance(args, str) else _json.dumps(args)
        r = self._p.predict(op, text, model or "")
        if r[0]:
            return r[1]
        raise _error(*r[1:])

    def predict_with_model(self, op, args, model=None):
        """(runtime_ns, model_id); raises TorpError."""
        text = args if isinstance(args, str) else _json.dumps(args)
        r = self._p.predict(op, text, model or "")
        if r[0]:
            return r[1], r[2]
        raise _error(*r[1:])

    def predict_batch(self, queries):
        """One dict per query ({"op", "args", "model"?}): {"runtime_ns", "model"} or {"error": {...}}."""
        texts = [q if isinstance(q, str) else _json.dumps(q) for q in queries]
        out = []
        for r in self._p.predict_lines(texts):
            if r[0]:
                out.append({"runtime_ns": r[1], "model": r[2], "status": "ok"})
            else:
                out.append({"status": "error", "error": {"code": r[1], "message": r[2], "path": r[3]}})
        return out

    def models(self):
        """Loaded models: id, op, file, priority, features, provenance."""
        res = []
        for m in self._p.models():
            m = dict(m)
            m["provenance"] = _json.loads(m.pop("provenance_json"))
            res.append(m)
        return res
