# SPDX-License-Identifier: Apache-2.0
"""Predictor: answers equal the torp CLI's bit for bit, errors are typed, batches never raise
for one bad item, threads give identical answers, models load from the documented places."""
import ast
import copy
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import ttnn_op_runtime_predictor as torp
from ttnn_op_runtime_predictor import _core
from conftest import (CLI, MODELS, SAMPLE_QUERIES, SOURCE, answer_of, assert_same_answer, cli_answers,
                      exp_queries, tensor)


def test_sample_queries_cover_every_shipped_op(predictor):
    # Every op of a trained or imported model has a sample query (the analytical models, one per
    # op and device, are swept by the C++ suite tests/serve/test_analytical_specs.cpp).
    ops = {m["op"] for m in predictor.models() if "/analytical/" not in m["id"]}
    answered = {a.model for a in predictor.predict_batch(SAMPLE_QUERIES) if isinstance(a, torp.Prediction)}
    assert {m["op"] for m in predictor.models() if m["id"] in answered and "/analytical/" not in m["id"]} == ops


def test_predict_equals_cli_for_every_op_and_error(predictor):
    cli = cli_answers(SAMPLE_QUERIES)
    assert {a["status"] for a in cli} == {"ok", "error"}
    for q, c in zip(SAMPLE_QUERIES, cli):
        assert_same_answer(c, answer_of(lambda: predictor.predict(q["op"], q["args"], q.get("model"))))


def test_predict_batch_equals_cli(predictor):
    for c, p in zip(cli_answers(SAMPLE_QUERIES), predictor.predict_batch(SAMPLE_QUERIES)):
        assert_same_answer(c, p)


def test_predict_record_says_how_far_to_trust_the_answer(predictor):
    q = exp_queries(1)[0]
    args = dict(q["args"], memory_config={"buffer_type": "L1", "memory_layout": "HEIGHT_SHARDED"})
    r = predictor.predict_record("ttnn.exp", args)
    assert isinstance(r, torp.Prediction)
    assert r.runtime_ns == predictor.predict("ttnn.exp", args) == predictor.predict("ttnn.exp", q["args"])
    assert r.ignored == ("/args/memory_config",)
    assert r.domain in ("seen", "inside", "outside", "unknown")
    assert (r.interval_ns is None) == (r.interval_note != "")
    if r.interval_ns is not None:
        assert r.interval_ns[0] <= r.runtime_ns <= r.interval_ns[1]
    assert predictor.predict_batch([{"op": "ttnn.exp", "args": args}]) == [r]
    big = {"input_tensor": tensor([1, 1, 1024, 1024])}
    ref = predictor.predict_record("ttnn.exp", big, model="reference/exp")
    assert (ref.model, ref.domain, ref.interval_ns, ref.interval_note) == (
        "reference/exp", "unknown", None, "imported model: no held-out data")
    assert predictor.predict_record("exp", q["args"], device="wormhole_n300") == predictor.predict_record("exp", q["args"])
    with pytest.raises(torp.NoModelError) as e:
        predictor.predict("exp", q["args"], device="no_such_device")
    assert e.value.path == "/device"


def test_args_and_queries_as_json_text(predictor):
    q = SAMPLE_QUERIES[0]
    assert predictor.predict(q["op"], json.dumps(q["args"])) == predictor.predict(q["op"], q["args"])
    assert predictor.predict_batch([json.dumps(q)]) == predictor.predict_batch([q])


def test_batch_with_a_bad_item_in_the_middle(predictor):
    good = exp_queries(4)
    bad = {"op": "ttnn.exp", "args": {"input_tensor": tensor([1, 1, 32, 32], dtype=4)}}  # BFLOAT4_B
    answers = predictor.predict_batch(good[:2] + [bad] + good[2:])
    assert len(answers) == 5
    expected = [predictor.predict(q["op"], q["args"]) for q in good]
    assert [a.runtime_ns for i, a in enumerate(answers) if i != 2] == expected
    assert all(isinstance(a, torp.Prediction) and a.model for i, a in enumerate(answers) if i != 2)
    assert isinstance(answers[2], torp.InvalidArgumentError)
    assert answers[2].path.startswith("/args/input_tensor")


def test_long_batch_with_bad_items_across_chunks(predictor):
    queries = exp_queries(150)
    bad = {0, 63, 64, 100, 149}
    for i in bad:
        queries[i] = "not a query"
    answers = predictor.predict_batch(iter(queries))  # any iterable
    assert len(answers) == len(queries)
    for i, (q, a) in enumerate(zip(queries, answers)):
        if i in bad:
            assert isinstance(a, torp.InvalidQueryError)
        else:
            assert a[:2] == (predictor.predict(q["op"], q["args"]), "wormhole_n300/exp")


def test_batch_items_that_are_not_queries(predictor):
    answers = predictor.predict_batch(["{not json", 42, {"op": "ttnn.exp"}, exp_queries(1)[0]])
    assert [type(a) for a in answers[:3]] == [torp.InvalidQueryError] * 3
    assert answers[2].path == "/args"
    assert isinstance(answers[3], torp.Prediction)
    assert predictor.predict_batch([]) == []


@pytest.mark.parametrize("query, error_class, path", [
    ({"op": "ttnn.conv2d", "args": {"input_tensor": tensor([64, 64])}}, torp.UnknownOpError, "/op"),
    ({"op": "ttnn.exp", "args": {"input_tensor": tensor([64, 64])}, "model": "no/such/model"}, torp.NoModelError,
     "/model"),
    ({"op": "ttnn.exp", "args": {}}, torp.InvalidArgumentError, "/args/input_tensor"),
    ({"op": "ttnn.exp", "args": {"input_tensor": tensor([32, 32])}, "model": "reference/exp"},
     torp.ModelOutputInvalidError, ""),
])
def test_query_error_codes_raise_their_types(predictor, query, error_class, path):
    with pytest.raises(error_class) as raised:
        predictor.predict(query["op"], query["args"], query.get("model"))
    e = raised.value
    assert isinstance(e, torp.TorpError) and e.path == path and e.message
    assert str(e) == f"{e.code}: {e.message}" + (f" (at {path})" if path else "")
    assert_same_answer(cli_answers([query])[0], e)


@pytest.mark.parametrize("args", ['{"input_tensor": ', [1, 2]])
def test_invalid_query_raises_its_type(predictor, args):
    with pytest.raises(torp.InvalidQueryError) as raised:
        predictor.predict("ttnn.exp", args)
    assert (raised.value.code, raised.value.path) == ("invalid_query", "/args")


def broken_model_dirs(tmp_path):
    good = json.loads((MODELS / "reference" / "exp.json").read_text())
    cases = {}
    for code, break_it in {"model_format": lambda m: m.pop("network"),
                           "model_version": lambda m: m.update(format_version=99),
                           "op_spec": lambda m: m["features"].__setitem__(0, "no_such_feature")}.items():
        model = copy.deepcopy(good)
        break_it(model)
        (tmp_path / code).mkdir()
        (tmp_path / code / "m.json").write_text(json.dumps(model))
        cases[code] = tmp_path / code
    cases["io"] = tmp_path / "missing"
    return cases


def test_load_error_codes_raise_their_types(tmp_path):
    classes = {"model_format": torp.ModelFormatError, "model_version": torp.ModelVersionError,
               "op_spec": torp.OpSpecError, "io": torp.TorpIOError}
    for code, directory in broken_model_dirs(tmp_path).items():
        with pytest.raises(classes[code]) as raised:
            torp.Predictor(directory)
        assert raised.value.code == code
        # The file (or the missing directory) in its own field and in the text, as the CLI prints it.
        want = str(directory) if code == "io" else str(directory / "m.json")
        assert raised.value.file == want
        assert str(raised.value).startswith(f"{code}: {want}: {raised.value.message}")


def test_threads_give_identical_answers(predictor):
    queries = exp_queries(64) + SAMPLE_QUERIES
    sequential = [answer_of(lambda q=q: predictor.predict(q["op"], q["args"], q.get("model"))) for q in queries]
    batch = predictor.predict_batch(queries)

    def one(i):
        q = queries[i % len(queries)]
        return answer_of(lambda: predictor.predict(q["op"], q["args"], q.get("model")))

    with ThreadPoolExecutor(8) as pool:
        parallel = list(pool.map(one, range(20 * len(queries))))
        batches = list(pool.map(lambda _: predictor.predict_batch(queries), range(16)))
    key = lambda a: (type(a), str(a)) if isinstance(a, torp.TorpError) else a  # noqa: E731
    assert [key(a) for a in parallel] == [key(a) for a in sequential] * 20
    for b in batches:
        assert [key(a) for a in b] == [key(a) for a in batch]
    assert [a.runtime_ns if isinstance(a, torp.Prediction) else key(a) for a in batch] == [key(a) for a in sequential]


def test_gil_is_released_while_loading_and_predicting(predictor):
    queries = exp_queries(4096)
    seen, stop = [], threading.Event()

    def spin():
        while not stop.is_set():
            seen.append(time.perf_counter())
            time.sleep(0)  # gives the GIL back to the main thread

    def overlaps(call):
        start = time.perf_counter()
        call()
        end = time.perf_counter()
        return any(start < t < end for t in seen)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1000)  # no forced switches: spin() runs during a call only if the call releases the GIL
    thread = threading.Thread(target=spin)
    thread.start()
    try:
        assert overlaps(lambda: torp.Predictor(str(MODELS)))
        assert any(overlaps(lambda: predictor.predict_batch(queries)) for _ in range(5))
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(interval)


def test_models_listing_equals_torp_list_json(predictor):
    out = subprocess.run([CLI, "list", "--json", "--models", str(MODELS)], capture_output=True, text=True, check=True)
    assert predictor.models() == [json.loads(line) for line in out.stdout.splitlines()]
    assert all("tt_metal_commit" in m["provenance"] for m in predictor.models())


def test_model_directory_resolution(tmp_path, monkeypatch):
    one = tmp_path / "one"
    shutil.copytree(MODELS / "reference", one / "reference", ignore=shutil.ignore_patterns("reshard"))
    monkeypatch.setenv("TORP_MODELS", str(one))
    assert torp.Predictor().directory == str(one)  # $TORP_MODELS when no directory is given
    assert len(torp.Predictor().models()) == 4
    assert torp.Predictor(MODELS).directory == str(MODELS)  # an explicit directory (str or path) wins
    monkeypatch.delenv("TORP_MODELS")
    monkeypatch.chdir(SOURCE)  # the build tree has no bundled models: the C++ order goes on to ./models
    assert torp.Predictor().directory == "models"


def test_python_values_without_json_form(predictor):
    class Index:  # like numpy integers: not an int, but has __index__
        def __init__(self, v):
            self.v = v

        def __index__(self):
            return self.v

    args = {"input_tensor": tensor([1, 2, 64, 128])}
    shape = args["input_tensor"]["tensor_spec"]["logical_shape"]
    as_index = copy.deepcopy(args)
    as_index["input_tensor"]["tensor_spec"]["logical_shape"] = [Index(d) for d in shape]
    as_tuple = copy.deepcopy(args)
    as_tuple["input_tensor"]["tensor_spec"]["logical_shape"] = tuple(shape)
    expected = predictor.predict("exp", args)
    assert predictor.predict("exp", as_index) == expected
    assert predictor.predict("exp", as_tuple) == expected

    bad = copy.deepcopy(args)
    bad["input_tensor"]["tensor_spec"]["logical_shape"][1] = object()
    with pytest.raises(torp.InvalidArgumentError) as raised:
        predictor.predict("exp", bad)
    assert raised.value.path == "/args/input_tensor/tensor_spec/logical_shape/1"
    with pytest.raises(torp.InvalidArgumentError) as raised:
        predictor.predict("exp", {"input_tensor": {1: 2}})
    assert raised.value.path == "/args/input_tensor"
    with pytest.raises(torp.InvalidArgumentError) as raised:
        predictor.predict("exp", {"a/b~c": {"x": 2 ** 70}})
    assert raised.value.path == "/args/a~1b~0c/x"


def test_error_objects_survive_pickling():
    import pickle
    for e in (torp.InvalidArgumentError("m", "/args/x"), torp.TorpError("m", "", "dataset"),
              torp.DatasetError("m", "/args", file="d.jsonl", line=3, column=7)):
        back = pickle.loads(pickle.dumps(e))
        assert (type(back), back.code, back.message, back.path, back.file, back.line, back.column) == \
            (type(e), e.code, e.message, e.path, e.file, e.line, e.column)
        assert str(back) == str(e)
    assert str(torp.DatasetError("m", "/args", file="d.jsonl", line=3, column=7)) == "dataset: d.jsonl:3:7: m (at /args)"


def test_stubs_match_the_extension():
    stub = ast.parse((SOURCE / "python" / "ttnn_op_runtime_predictor" / "_core.pyi").read_text())
    top = {n.name for n in stub.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    top |= {n.target.id for n in stub.body if isinstance(n, ast.AnnAssign)}
    assert top == {n for n in dir(_core) if not n.startswith("_")} | {"__version__"}
    cls = next(n for n in stub.body if isinstance(n, ast.ClassDef))
    members = {n.name for n in cls.body if isinstance(n, ast.FunctionDef)} - {"__init__"}
    assert members == {n for n in dir(_core.Predictor) if not n.startswith("_")}


def run_module(args, stdin):
    return subprocess.run([sys.executable, "-m", "ttnn_op_runtime_predictor", *args], input=stdin,
                          capture_output=True, text=True, timeout=120)


def test_python_m_is_torp_predict():
    text = (SOURCE / "examples" / "queries.jsonl").read_text()
    cli = subprocess.run([CLI, "predict", "--models", str(MODELS)], input=text, capture_output=True, text=True,
                         check=True)
    module = run_module(["--models", str(MODELS)], text)
    assert (module.returncode, module.stdout) == (0, cli.stdout)
    file_input = run_module([str(SOURCE / "examples" / "queries.jsonl")], "")  # TORP_MODELS is set by ctest
    assert (file_input.returncode, file_input.stdout) == (0, cli.stdout)

    usage = run_module(["--help"], "")
    assert usage.returncode == 0 and usage.stdout.startswith("usage: torp predict")
    failed = run_module(["--models", "/nonexistent"], "")
    assert failed.returncode == 1 and failed.stderr.startswith("torp predict: error: io: ")
    assert run_module(["--no-such-option"], "").returncode == 2


def test_python_m_takes_the_models_directories_and_line_cap_of_torp_predict(tmp_path):
    # The shipped models split over two directories: --models repeated and TORP_MODELS=a:b load
    # both, as `torp predict` does; one of them alone answers fewer queries.
    a, b = tmp_path / "a", tmp_path / "b"
    for sub in MODELS.iterdir():
        shutil.copytree(sub, (a if sub.name == "wormhole" else b) / sub.name)
    text = (SOURCE / "examples" / "queries.jsonl").read_text()
    both = subprocess.run([CLI, "predict", "--models", str(a), "--models", str(b)], input=text, capture_output=True,
                          text=True, check=True).stdout
    assert both == subprocess.run([CLI, "predict", "--models", str(MODELS)], input=text, capture_output=True,
                                  text=True, check=True).stdout
    module = run_module(["--models", str(a), "--models", str(b)], text)
    assert (module.returncode, module.stdout) == (0, both)
    env = dict(os.environ, TORP_MODELS=f"{a}::{b}")
    from_env = subprocess.run([sys.executable, "-m", "ttnn_op_runtime_predictor"], input=text, capture_output=True,
                              text=True, timeout=120, env=env)
    assert (from_env.returncode, from_env.stdout) == (0, both)
    only_b = run_module(["--models", str(b)], text)
    assert only_b.returncode == 0 and only_b.stdout != both

    # --max-line-bytes: a longer line gets the invalid_query answer and the stream goes on.
    first = text.splitlines()[0]
    short = "\n".join([first, " " * len(first) + "{}", first]) + "\n"
    cli = subprocess.run([CLI, "predict", "--models", str(MODELS), "--max-line-bytes", "64"], input=short,
                         capture_output=True, text=True, check=True).stdout
    module = run_module(["--models", str(MODELS), "--max-line-bytes", "64"], short)
    assert (module.returncode, module.stdout) == (0, cli)
    answers = [json.loads(line) for line in cli.splitlines()]
    assert [a.get("error", {}).get("code") for a in answers] == ["invalid_query"] * 3  # even the query is > 64 bytes
    module = run_module(["--models", str(MODELS), "--max-line-bytes", str(len(first))], short)
    answers = [json.loads(line) for line in module.stdout.splitlines()]
    assert [a["status"] for a in answers] == ["ok", "error", "ok"]
    assert "longer than" in answers[1]["error"]["message"]
    for bad in ("10", "x", str((1 << 32) + 1)):
        assert run_module(["--max-line-bytes", bad], "").returncode == 2
    # The load error names the directory in its own place, as the CLI prints it.
    failed = run_module(["--models", str(tmp_path / "none")], "")
    assert failed.returncode == 1
    assert failed.stderr == f"torp predict: error: io: {tmp_path / 'none'}: " \
                            "the models directory does not exist (set --models DIR or TORP_MODELS)\n"
    cli_failed = subprocess.run([CLI, "predict", "--models", str(tmp_path / "none")], input="", capture_output=True,
                                text=True)
    assert (cli_failed.returncode, cli_failed.stderr) == (1, failed.stderr)


def test_arguments_nested_too_deep_or_containing_themselves_are_errors(predictor):
    # Issue 13: converting such a value recursed until the stack overflowed.
    looped = []
    looped.append(looped)
    deep = 1
    for _ in range(1000):
        deep = [deep]
    for value in (looped, deep):
        with pytest.raises(torp.InvalidArgumentError) as raised:
            predictor.predict("ttnn.exp", {"input_tensor": value})
        assert "nested deeper than 256 levels" in str(raised.value)
    answers = predictor.predict_batch([{"op": "ttnn.exp", "args": {"input_tensor": looped}}])
    assert isinstance(answers[0], torp.InvalidArgumentError)
