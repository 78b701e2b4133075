# SPDX-License-Identifier: Apache-2.0
"""Regeneration from Python: the ``torp`` commands ``dataset from-sweep``, ``train``, ``eval``,
``drift``, ``suggest`` and ``regenerate`` as calls with the same options as keyword arguments.

Each returns the command's JSON report as a dict and raises the package's ``TorpError``
subclasses (``DatasetError``, ``TrainingError``, ``TorpIOError``...). Progress lines go to
``progress`` (a callable taking one str) if given, else to the ``logging`` logger
``ttnn_op_runtime_predictor`` at INFO level. Only in a package built with the training libraries
(``TORP_BUILD_TRAINING``, the default); otherwise each call raises ``RuntimeError``.
"""
import json
import logging
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from . import _core

PathLike = Union[str, "os.PathLike[str]"]
Progress = Optional[Callable[[str], Any]]

_log = logging.getLogger("ttnn_op_runtime_predictor")


def _core_fn(name: str) -> Callable[..., str]:
    fn = getattr(_core, name, None)
    if fn is None:
        raise RuntimeError("this ttnn_op_runtime_predictor was built without the training libraries "
                           "(TORP_BUILD_TRAINING=OFF)")
    return fn


def _progress(progress: Progress) -> Callable[[str], Any]:
    return progress if progress is not None else _log.info


def _path(p: Optional[PathLike]) -> Optional[str]:
    return None if p is None else os.fspath(p)


def _paths(ps: Union[PathLike, Sequence[PathLike], None]) -> List[str]:
    if ps is None:
        return []
    if isinstance(ps, (str, os.PathLike)):
        return [os.fspath(ps)]
    return [os.fspath(p) for p in ps]


def from_sweep(*, op_spec: PathLike, device: PathLike, vectors: PathLike, results: Union[PathLike, Sequence[PathLike]],
               out: PathLike, tag: Optional[str] = None, suites: Sequence[str] = (), latest_only: bool = False,
               tt_metal_commit: Optional[str] = None, force: bool = False, progress: Progress = None) -> Dict[str, Any]:
    """``torp dataset from-sweep``: sweep vectors + results -> dataset ``out`` and its report
    (``out`` with ``.report.json``). Returns the report (rows, drops by reason, ...)."""
    return json.loads(_core_fn("_from_sweep")(_path(op_spec), _path(device), _path(vectors), _paths(results), _path(out),
                                              tag, list(suites), latest_only, tt_metal_commit, force,
                                              _progress(progress)))


def train(*, dataset: PathLike, op_spec: PathLike, device: PathLike, out: PathLike, seed: int = 1,
          recipe: str = "trained", id: str = "", threads: int = 0, validation_fraction: float = 0.15,
          test_fraction: float = 0.15, reject_factor: float = 1.5, force: bool = False,
          progress: Progress = None) -> Dict[str, Any]:
    """``torp train``: returns {"model", "op", "file", "metrics", "search", "wall_seconds"}."""
    return json.loads(_core_fn("_train")(_path(dataset), _path(op_spec), _path(device), _path(out), seed, recipe, id,
                                         threads, validation_fraction, test_fraction, reject_factor, force,
                                         _progress(progress)))


def evaluate(*, model: PathLike, dataset: PathLike, html: Optional[PathLike] = None,
             previous: Optional[PathLike] = None, progress: Progress = None) -> Dict[str, Any]:
    """``torp eval`` (split from the model's provenance): returns the ``--json`` report {"model", "op",
    "configurations", "test_configurations", "split", "plausibility", "metrics", "intervals",
    "comparison" (the model, its baseline alone and the ``previous`` model if given, overall and per
    report group), "worst"}; writes the HTML report to ``html`` if given."""
    return json.loads(_core_fn("_evaluate")(_path(model), _path(dataset), _path(html), _path(previous),
                                            _progress(progress)))


def drift(*, dataset: PathLike, models: Optional[PathLike] = None, alpha: float = 0.01, min_shift: float = 0.05,
          reject_factor: float = 1.5, progress: Progress = None) -> Dict[str, Any]:
    """``torp drift``: the report {"ops": [{"op", "model", "configurations", "within_interval" (labels
    inside the interval served for them), "interval_source", "domains", "groups", "verdict", ...}], ...}."""
    return json.loads(_core_fn("_drift")(_path(dataset), _path(models), alpha, min_shift, reject_factor,
                                         _progress(progress)))


def suggest(*, op: str, out: PathLike, count: int = 50, models: Optional[PathLike] = None, model: str = "",
            dataset: Optional[PathLike] = None, seed: int = 1, suite: str = "torp_probe", tag: str = "torp",
            force: bool = False, progress: Progress = None) -> Dict[str, Any]:
    """``torp suggest``: writes ``count`` sweep vectors to ``out``; returns the summary."""
    return json.loads(_core_fn("_suggest")(op, _path(out), count, _path(models), model, _path(dataset), seed, suite, tag,
                                           force, _progress(progress)))


def regenerate(*, op_spec: PathLike, device: PathLike, work: PathLike, dataset: Optional[PathLike] = None,
               vectors: Optional[PathLike] = None, results: Union[PathLike, Sequence[PathLike], None] = None,
               models: Optional[PathLike] = None, replace: str = "if-better", install_as: Optional[PathLike] = None,
               seed: int = 1, recipe: str = "trained", id: str = "", threads: int = 0, force: bool = False,
               progress: Progress = None) -> Dict[str, Any]:
    """``torp regenerate``: returns the comparison plus "model_file" and "previous_file"."""
    return json.loads(_core_fn("_regenerate")(_path(op_spec), _path(device), _path(work), _path(dataset), _path(vectors),
                                              _paths(results), _path(models), replace, _path(install_as), seed, recipe,
                                              id, threads, force, _progress(progress)))
