# SPDX-License-Identifier: Apache-2.0
"""The regeneration calls from Python: from_sweep, train, evaluate, drift, suggest and regenerate
mirror the torp commands (keyword options, dict results, typed exceptions, progress)."""
import json
import logging
import shutil

import pytest

import ttnn_op_runtime_predictor as torp
from conftest import CLI, MODELS, SOURCE

SLICE = SOURCE / "tests" / "data" / "exp_slice.jsonl"
OPS, DEVICE = SOURCE / "ops" / "exp.json", SOURCE / "devices" / "wormhole_n300.json"

pytestmark = pytest.mark.skipif(not hasattr(torp._core, "_drift"), reason="built without the training libraries")


def shifted_slice(path, l1_factor):
    """The exp slice with every L1 row's runtime multiplied by l1_factor."""
    lines = SLICE.read_text().splitlines()
    out = [lines[0]]
    for line in lines[1:]:
        row = json.loads(line)
        if row["args"]["input_tensor"]["memory_config"]["buffer_type"] == "L1":
            row["runtime_ns"] *= l1_factor
        out.append(json.dumps(row))
    path.write_text("\n".join(out) + "\n")
    return path


def verdicts(report):
    return {m["model"]: m["verdict"] for m in report["ops"]}


def test_drift_sees_a_25_percent_l1_shift(tmp_path):
    lines = []
    as_measured = torp.drift(dataset=SLICE, models=MODELS, progress=lines.append)
    assert verdicts(as_measured)["wormhole_n300/exp"] == "current"
    assert any("wormhole_n300/exp" in line for line in lines)
    slower = torp.drift(dataset=shifted_slice(tmp_path / "slower.jsonl", 1.25), models=MODELS)
    entry = next(m for m in slower["ops"] if m["model"] == "wormhole_n300/exp")
    assert entry["verdict"] == "stale"
    assert {g["group"].split()[-1] for g in entry["groups"] if g["moved"]} == {"L1"}
    # The same report as the command's
    cli = json.loads(__import__("subprocess").run([CLI, "drift", "--models", str(MODELS), "--dataset",
                                                   str(tmp_path / "slower.jsonl")], capture_output=True,
                                                  text=True, check=True).stdout)
    assert verdicts(cli) == verdicts(slower)


def test_suggested_vectors_import_back_through_from_sweep(tmp_path):
    out = tmp_path / "eltwise.unary.exp.exp.json"
    summary = torp.suggest(op="exp", count=20, models=MODELS, dataset=SLICE, out=out)
    assert summary["count"] == 20 and summary["model"] == "wormhole_n300/exp"
    with pytest.raises(torp.TorpIOError):
        torp.suggest(op="exp", count=20, models=MODELS, dataset=SLICE, out=out)  # exists
    vectors = json.loads(out.read_text())["torp_probe"]
    results = [{"suite_name": "torp_probe", "vector_id": h, "input_hash": h, "status": "TestStatus.PASS",
                "start_time_ts": "2026-11-29 10:00:00.0", "device_perf": {"DEVICE KERNEL DURATION [ns]": "5000"}}
               for h in vectors]
    (tmp_path / "results.json").write_text(json.dumps(results))
    report = torp.from_sweep(op_spec=OPS, device=DEVICE, vectors=out, results=tmp_path / "results.json",
                             out=tmp_path / "probes.jsonl")
    assert report["rows"] == 20
    assert (tmp_path / "probes.report.json").exists()
    info = json.loads(__import__("subprocess").run([CLI, "dataset", "info", "--json", str(tmp_path / "probes.jsonl")],
                                                   capture_output=True, text=True, check=True).stdout)
    assert info["configurations"] == 20


def test_errors_are_typed(tmp_path):
    with pytest.raises(torp.TorpIOError):
        torp.drift(dataset=tmp_path / "missing.jsonl", models=MODELS)
    with pytest.raises(torp.NoModelError):
        torp.suggest(op="no_such_op", out=tmp_path / "v.json", models=MODELS)
    (tmp_path / "bad.json").write_text("[1, 2")
    with pytest.raises(torp.DatasetError) as raised:
        torp.from_sweep(op_spec=OPS, device=DEVICE, vectors=tmp_path / "bad.json", results=tmp_path / "bad.json",
                        out=tmp_path / "x.jsonl")
    assert (raised.value.file, raised.value.path) == (str(tmp_path / "bad.json"), "/")


def test_errors_name_their_file_line_and_column(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(SLICE.read_text().splitlines()[0] + "\n" + '{"args": {}, "runtime_ns": -5}\n')
    with pytest.raises(torp.DatasetError) as raised:
        torp.train(dataset=bad, op_spec=OPS, device=DEVICE, out=tmp_path / "m.json")
    e = raised.value
    assert (e.file, e.line, e.column, e.path) == (str(bad), 2, 14, "/runtime_ns")
    assert str(e) == f"dataset: {bad}:2:14: {e.message} (at /runtime_ns)"
    # An op spec is read by the binding and handed over as JSON: its errors still name the file.
    spec = json.loads(OPS.read_text())
    spec["features"]["dim_0"] = "no_such_function(1)"
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    with pytest.raises(torp.OpSpecError) as raised:
        torp.train(dataset=SLICE, op_spec=tmp_path / "spec.json", device=DEVICE, out=tmp_path / "m.json")
    assert (raised.value.file, raised.value.path) == (str(tmp_path / "spec.json"), "/features/dim_0")


def test_train_evaluate_and_regenerate(tmp_path, caplog):
    trained = torp.train(dataset=SLICE, op_spec=OPS, device=DEVICE, out=tmp_path / "exp.json")
    assert trained["model"] == "wormhole_n300/exp" and trained["metrics"]["test"]["n"] > 0
    ev = torp.evaluate(model=tmp_path / "exp.json", dataset=SLICE, html=tmp_path / "report.html")
    assert ev["metrics"]["test"] == trained["metrics"]["test"]
    assert (tmp_path / "report.html").read_text().startswith("<!DOCTYPE html>")
    same = torp.evaluate(model=tmp_path / "exp.json", dataset=SLICE, previous=tmp_path / "exp.json")
    overall = same["comparison"]["overall"]["plausible"]
    assert overall["previous"] == overall["model"] and overall["model"]["n"] == trained["metrics"]["test_plausible"]["n"]
    assert overall["baseline"]["n"] == overall["model"]["n"]
    # the op spec's report groups (ops/exp.json)
    assert [g["keys"] for g in same["comparison"]["groups"]] == [["input_tensor.dtype", "input_tensor.buffer_type"],
                                                                 ["tiles_per_core"]]

    models = tmp_path / "models"
    shutil.copytree(MODELS / "wormhole", models / "wormhole")
    with caplog.at_level(logging.INFO, logger="ttnn_op_runtime_predictor"):
        r = torp.regenerate(dataset=SLICE, op_spec=OPS, device=DEVICE, models=models, work=tmp_path / "work",
                            replace="never")
    assert r["current_model"] == "wormhole_n300/exp" and r["decision"]["replaced"] is False
    assert r["previous_file"] is None
    assert json.loads((tmp_path / "work" / "comparison.json").read_text())["metrics"] == r["metrics"]
    assert any("training" in rec.getMessage() for rec in caplog.records)
    with pytest.raises(torp.TorpIOError):  # the reports exist: not replaced without force
        torp.regenerate(dataset=SLICE, op_spec=OPS, device=DEVICE, models=models, work=tmp_path / "work",
                        replace="never")
