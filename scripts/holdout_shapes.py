#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Accuracy and interval coverage on shapes the model never saw (README, "Unseen shapes").

For each seed: hold out a fraction (default 20%) of the dataset's groups -- exp: the logical
shapes, with every dtype and buffer of a shape; matmul (--key mkn): the (m, k, n) triples --
train with the documented command on the rest (`torp train ... --seed 1`), and serve the
held-out configurations (`torp eval --all --predictions`). Prints, per seed and on the plausible
labels: the share within +-10% and the median APE, and the 90% interval's coverage and median
width ((hi - lo) / runtime) overall, per domain, per dtype class (16-bit: BFLOAT16, BFLOAT8_B,
UINT16; 32-bit: FLOAT32, UINT32) and per domain and class; and, for comparison, the coverage and
width the model's domain-wide bands alone would give (its calibration without groups), and the
share within +-10% of the model's physical law alone (its baseline, fitted on the same training
shapes: the model file served as an analytical model, without networks).

  python3 scripts/holdout_shapes.py --torp build/cli/torp --seeds 1 2 3 --json /tmp/torp-holdout/exp.json

The held-out groups of a seed: the sorted distinct keys, shuffled by Python's random.Random(seed),
the first round(fraction * count). Everything is written under --work (default /tmp/torp-holdout).
"""
import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys

THIRTY_TWO_BIT = {"FLOAT32", "UINT32"}


def group_key(args, key):
    if key == "shape":
        return tuple(args["input_tensor"]["logical_shape"])
    a = args["input_tensor_a"]["logical_shape"]
    b = args["input_tensor_b"]["logical_shape"]
    return (math.prod(a[:-1]), a[-1], b[-1])  # (m, k, n)


def split(dataset, key, fraction, seed, out_train, out_held):
    with open(dataset) as f:
        header = f.readline()
        rows = [line for line in f if line.strip()]
    keys = sorted({group_key(json.loads(r)["args"], key) for r in rows})
    random.Random(seed).shuffle(keys)
    held = set(keys[: round(fraction * len(keys))])
    with open(out_train, "w") as t, open(out_held, "w") as h:
        t.write(header)
        h.write(header)
        for r in rows:
            (h if group_key(json.loads(r)["args"], key) in held else t).write(r)
    return len(held), len(keys)


def dtype_class(args):
    tensors = [v for v in args.values() if isinstance(v, dict) and "dtype" in v]
    return "32-bit" if any(t["dtype"] in THIRTY_TWO_BIT for t in tensors) else "16-bit"


def summarize(records):
    """records: (label, runtime, interval or None, domain-wide interval or None, law or None)."""
    ape = sorted(abs(r[1] / r[0] - 1.0) for r in records)
    out = {"n": len(records)}
    if not records:
        return out
    out["within_10"] = sum(a <= 0.1 for a in ape) / len(ape)
    out["median_ape"] = 100 * statistics.median(ape)
    law = [abs(r[4] / r[0] - 1.0) for r in records if r[4] is not None]
    if law:
        out["law_within_10"] = sum(a <= 0.1 for a in law) / len(law)
    for name, idx in (("served", 2), ("domain_wide", 3)):
        iv = [(r[0], r[1], r[idx]) for r in records if r[idx] is not None]
        if iv:
            out[name] = {"coverage": sum(lo <= y <= hi for y, _, (lo, hi) in iv) / len(iv),
                         "median_width": statistics.median((hi - lo) / p for _, p, (lo, hi) in iv)}
    return out


def domain_wide_band(model):
    """The answer's interval from the model's domain-wide bands only (no calibration groups), as
    served: seen <- inside, outside <- inside doubled where a band is missing."""
    cal = model.get("calibration") or {}
    d = cal.get("domains", {})

    def band(domain):
        if domain in d:
            return d[domain]["lo"], d[domain]["hi"]
        if domain == "seen" and "inside" in d:
            return d["inside"]["lo"], d["inside"]["hi"]
        if domain == "outside" and "inside" in d:
            return 2 * d["inside"]["lo"], 2 * d["inside"]["hi"]
        return None
    return band


def run_seed(a, seed):
    work = os.path.join(a.work, f"seed{seed}")
    os.makedirs(work, exist_ok=True)
    train, held = os.path.join(work, "train.jsonl"), os.path.join(work, "held_out.jsonl")
    model, preds = os.path.join(work, "model.json"), os.path.join(work, "held_out.predictions.jsonl")
    n_held, n_keys = split(a.dataset, a.key, a.fraction, seed, train, held)
    if not (a.reuse and os.path.exists(model)):
        subprocess.run([a.torp, "train", "--dataset", train, "--op-spec", a.op_spec, "--device", a.device,
                        "--seed", "1", "--out", model, "--force"], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    subprocess.run([a.torp, "eval", "--model", model, "--dataset", held, "--all", "--predictions", preds],
                   check=True, stdout=subprocess.DEVNULL)
    with open(model) as f:
        doc = json.load(f)
    band = domain_wide_band(doc)
    law_preds = law_predictions(a, doc, held, work)
    groups = {}
    with open(preds) as f:
        for line in f:
            r = json.loads(line)
            if not r["plausible"] or r["runtime_ns"] is None:
                continue
            p = r["runtime_ns"]
            b = band(r["domain"])
            rec = (r["label_ns"], p, r["interval_ns"], None if b is None else (p * math.exp(b[0]), p * math.exp(b[1])),
                   law_preds.get(json.dumps(r["args"], sort_keys=True)))
            cls = dtype_class(r["args"])
            for g in ("all", r["domain"], cls, f"{r['domain']} {cls}"):
                groups.setdefault(g, []).append(rec)
    return {"held_out_groups": n_held, "groups": n_keys, "by": {g: summarize(v) for g, v in sorted(groups.items())}}


def law_predictions(a, doc, held, work):
    """The model's baseline law alone on the held-out configurations, as served: the model file
    with kind "analytical" and no networks (answer = baseline)."""
    law = dict(doc, kind="analytical", id=doc["id"] + "/law", network=dict(doc["network"], ensemble=[]))
    law.pop("calibration", None)
    path, preds = os.path.join(work, "law.json"), os.path.join(work, "held_out.law.predictions.jsonl")
    with open(path, "w") as f:
        json.dump(law, f)
    subprocess.run([a.torp, "eval", "--model", path, "--dataset", held, "--all", "--predictions", preds],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = {}
    with open(preds) as f:
        for line in f:
            r = json.loads(line)
            if r["runtime_ns"] is not None:
                out[json.dumps(r["args"], sort_keys=True)] = r["runtime_ns"]
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--torp", default="build/cli/torp")
    p.add_argument("--dataset", default="data/exp/exp_wormhole.jsonl")
    p.add_argument("--op-spec", default="ops/exp.json")
    p.add_argument("--device", default="devices/wormhole_n300.json")
    p.add_argument("--key", choices=["shape", "mkn"], default="shape")
    p.add_argument("--fraction", type=float, default=0.2)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--work", default="/tmp/torp-holdout")
    p.add_argument("--reuse", action="store_true", help="keep a model already trained in --work")
    p.add_argument("--json", help="also write the results as JSON")
    a = p.parse_args()
    results = {}
    for seed in a.seeds:
        results[seed] = r = run_seed(a, seed)
        print(f"seed {seed}: {r['held_out_groups']} of {r['groups']} groups held out")
        for g, s in r["by"].items():
            line = f"  {g:18s} n {s['n']:5d}"
            if s["n"]:
                line += f"  within 10% {100 * s['within_10']:5.1f}%  median APE {s['median_ape']:.2f}%"
            if "law_within_10" in s:
                line += f" (law {100 * s['law_within_10']:5.1f}%)"
            for name in ("served", "domain_wide"):
                if name in s:
                    line += f"  {name} cov {100 * s[name]['coverage']:5.1f}% width {100 * s[name]['median_width']:5.1f}%"
            print(line)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
