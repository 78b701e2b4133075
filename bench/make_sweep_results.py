#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Generate a large tt-metal sweep export for timing `torp dataset from-sweep`.

Writes OUT_DIR/vectors.json (vectors_export, era A: Python-literal strings, MemoryConfig data
as a JSON string) for an exp sweep and OUT_DIR/results.json (results_export, generation R1:
one list, runs appended one after the other, records as the 000b34cf runner writes them with
original_vector_data, device_perf of five keys, null for failures, {} or zero dummies for
PASS records without profiler data; the runner skips INVALID vectors). Durations follow the
eltwise law a + b * ceil(tiles / 56) with 1% noise. Python standard library only.

    python3 bench/make_sweep_results.py /tmp/sweep-bench --records 2000000
"""
import argparse
import hashlib
import json
import os
import random

DTYPES = ["BFLOAT16", "FLOAT32", "UINT16", "UINT32", "BFLOAT8_B"]
SUITES = ["2dim", "3dim", "4dim"]


def memory_config(buffer):
    data = json.dumps({"buffer_type": buffer, "created_with_nd_shard_spec": False, "memory_layout": 0},
                      separators=(",", ":"), sort_keys=True)
    return {"type": "ttnn._ttnn.tensor.MemoryConfig", "data": data}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--records", type=int, default=2_000_000, help="result records to write (default 2000000)")
    ap.add_argument("--vectors", type=int, default=5000, help="vectors in the sweep (default 5000)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    os.makedirs(args.out_dir, exist_ok=True)

    vectors = {s: {} for s in SUITES}
    order = []  # (suite, hash, vector) in file order, as the runner executes them
    for i in range(args.vectors):
        suite = SUITES[i % len(SUITES)]
        rank = int(suite[0])
        shape = [rng.choice([1, 2, 4, 8]) for _ in range(rank - 2)] + [32 * rng.randint(1, 64), 32 * rng.randint(1, 64)]
        dtype, buffer = rng.choice(DTYPES), rng.randint(0, 1)
        v = {"input_shape": str(shape), "input_a_dtype": "DataType." + dtype, "input_a_layout": "Layout.TILE",
             "input_a_memory_config": memory_config(buffer), "output_memory_config": memory_config(buffer),
             "use_safe_nums": "True", "suite_name": suite,
             "validity": "VectorValidity.INVALID" if rng.random() < 0.02 else "VectorValidity.VALID",
             "invalid_reason": "", "status": "VectorStatus.CURRENT", "sweep_name": "exp_sweep",
             "timestamp": "2025-10-20_14-05-11"}
        h = hashlib.sha224(("%d %s" % (i, json.dumps(v, sort_keys=True))).encode()).hexdigest()
        v["input_hash"] = h
        v["tag"] = "bench"
        vectors[suite][h] = v
        tiles = 1
        for d in shape[:-2]:
            tiles *= d
        tiles *= (shape[-2] // 32) * (shape[-1] // 32)
        base = (1500 + 300 * buffer) + (30 if dtype in ("FLOAT32", "UINT32") else 18) * -(-tiles // 56)
        order.append((suite, h, v, base))
    order.sort(key=lambda t: SUITES.index(t[0]))  # the runner walks suites, then keys, in file order
    with open(os.path.join(args.out_dir, "vectors.json"), "w") as f:
        json.dump(vectors, f, indent=1)

    valid = [t for t in order if t[2]["validity"].endswith(".VALID")]
    written, run = 0, 0
    with open(os.path.join(args.out_dir, "results.json"), "w") as f:
        f.write("[")
        while written < args.records:
            for suite, h, v, base in valid:
                if written == args.records:
                    break
                seconds = run * len(valid) + written % len(valid)
                start = "2025-10-%02d %02d:%02d:%02d.%06d" % (1 + run % 28, seconds // 3600 % 24, seconds // 60 % 60,
                                                             seconds % 60, rng.randint(0, 999999))
                end = start[:-6] + "%06d" % rng.randint(0, 999999)
                roll = rng.random()
                status, perf = "TestStatus.PASS", None
                if roll < 0.05:
                    status = "TestStatus.FAIL_L1_OUT_OF_MEM"
                elif roll < 0.08:
                    perf = {}
                elif roll < 0.10:
                    perf = {"DEVICE FW DURATION [ns]": "0", "DEVICE KERNEL DURATION [ns]": "0", "OP TO OP LATENCY [ns]": 0}
                else:
                    ns = base * rng.gauss(1.0, 0.01)
                    perf = {"DEVICE FW DURATION [ns]": "%.0f" % (ns + 480), "DEVICE KERNEL DURATION [ns]": "%.0f" % ns,
                            "OP TO OP LATENCY [ns]": 0, "DEVICE BRISC FW DURATION [ns]": "%.0f" % (ns + 410),
                            "DEVICE NCRISC FW DURATION [ns]": "%.0f" % (ns + 395)}
                original = {k: v[k] for k in ("input_shape", "input_a_dtype", "input_a_layout", "use_safe_nums",
                                              "validity", "invalid_reason", "status")}
                for k in ("input_a_memory_config", "output_memory_config"):
                    b = json.loads(v[k]["data"])["buffer_type"]
                    original[k] = {"buffer_type": ["DRAM", "L1"][b], "created_with_nd_shard_spec": False,
                                   "memory_layout": "INTERLEAVED"}
                rec = {"sweep_name": "exp_sweep", "suite_name": suite, "vector_id": h, "input_hash": h,
                       "start_time_ts": start, "message": "0.999" if status.endswith("PASS") else "TT_THROW: out of memory",
                       "status": status, "device_perf": perf, "e2e_perf": "None", "original_vector_data": original,
                       "end_time_ts": end, "timestamp": start[:19].replace(" ", "_").replace(":", "-"),
                       "host": "wh-n300-07", "user": "bench", "git_hash": "87144607", "error_signature": None}
                f.write(("" if written == 0 else ",\n") + json.dumps(rec))
                written += 1
            run += 1
        f.write("]\n")
    print("wrote %d vectors and %d records (%d runs) to %s" % (args.vectors, written, run, args.out_dir))


if __name__ == "__main__":
    main()
