#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Latency of the Python module: one warm exp query through get_runtime_from_model and
Predictor.predict (dict and JSON-text arguments), then 4096 distinct exp queries answered one by
one with predict and at once with predict_batch. Tensors are tt-metal's full Tensor JSON, as examples/queries.jsonl.
Medians of --repeat timeit runs.

    PYTHONPATH=build/python python3 bench/python_bench.py [--models models] [--repeat 7]
"""
import argparse
import copy
import json
import os
import statistics
import timeit

import ttnn_op_runtime_predictor as torp

HERE = os.path.dirname(os.path.abspath(__file__))


def exp_queries(n):
    """n distinct exp queries: the first sample query with shape, dtype and buffer varied."""
    with open(os.path.join(HERE, "..", "examples", "queries.jsonl")) as f:
        base = json.loads(f.readline())
    assert base["op"] == "ttnn.exp"
    queries = []
    for i in range(n):
        q = copy.deepcopy(base)
        layout = q["args"]["input_tensor"]["tensor_spec"]["tensor_layout"]
        q["args"]["input_tensor"]["tensor_spec"]["logical_shape"] = [1 + i % 4, 8 + i % 13, 32 * (4 + i % 9),
                                                                     32 * (4 + i % 7)]
        layout["dtype"] = i % 2
        layout["memory_config"]["buffer_type"] = (i // 2) % 2
        queries.append(q)
    return queries


def per_call(fn, number, repeat):
    """Median seconds per call over `repeat` runs of `number` calls."""
    return statistics.median(t / number for t in timeit.Timer(fn).repeat(repeat=repeat, number=number))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", help="model directory (default: the module's resolution)")
    ap.add_argument("--repeat", type=int, default=7)
    a = ap.parse_args()

    if a.models:  # get_runtime_from_model's Predictor() resolves the same directory
        os.environ["TORP_MODELS"] = a.models
    p = torp.Predictor()
    q = exp_queries(1)[0]
    args, text = q["args"], json.dumps(q["args"])
    memory_config = q["args"]["input_tensor"]["tensor_spec"]["tensor_layout"]["memory_config"]
    rows = [
        ("get_runtime_from_model('exp', ...)",
         per_call(lambda: torp.get_runtime_from_model("exp", tensor_json=args["input_tensor"],
                                                      output_memory_config=memory_config), 20000, a.repeat)),
        ("Predictor.predict('ttnn.exp', dict)", per_call(lambda: p.predict("ttnn.exp", args), 20000, a.repeat)),
        ("Predictor.predict('ttnn.exp', JSON text)", per_call(lambda: p.predict("ttnn.exp", text), 20000, a.repeat)),
    ]
    batch = exp_queries(4096)
    assert all(isinstance(r, torp.Prediction) for r in p.predict_batch(batch))

    def one_by_one():
        for q in batch:
            p.predict(q["op"], q["args"])

    rows.append(("Predictor.predict, 4096 distinct dicts in turn", per_call(one_by_one, 5, a.repeat) / len(batch)))
    rows.append(("Predictor.predict_batch(4096 distinct dicts)",
                 per_call(lambda: p.predict_batch(batch), 5, a.repeat) / len(batch)))

    print(f"models: {p.directory}; median of {a.repeat} runs")
    for name, s in rows:
        print(f"{name:48s} {s * 1e6:6.2f} us/query  {1 / s / 1e3:5.0f} k queries/s")


if __name__ == "__main__":
    main()
