# SPDX-License-Identifier: Apache-2.0
"""The Python module answers like the C++ library and the CLI, and raises typed errors."""
import json
import os
import subprocess
import unittest

import torp

SOURCE = os.environ.get("TORP_SOURCE_DIR", ".")
MODELS = os.path.join(SOURCE, "models")


def tensor(shape, dtype, buffer):
    tile = {"face_shape": [16, 16], "num_faces": 4, "tile_shape": [32, 32]}
    return {"storage": {"index": 1, "value": {}},
            "tensor_spec": {"logical_shape": shape, "tensor_layout": {
                "alignment": {"value": [32, 32]}, "dtype": dtype,
                "memory_config": {"buffer_type": buffer, "created_with_nd_shard_spec": False, "memory_layout": 0},
                "page_config": {"config": {"index": 1, "value": {"tile": tile}}}}}}


def exp_queries():
    return [{"op": "ttnn.exp", "args": {"input_tensor": tensor([1 + i % 3, 2, 32 * (1 + i % 5), 64 + 32 * i], i % 2, i % 2)}}
            for i in range(12)]


class PythonModule(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.p = torp.Predictor(MODELS)

    def test_predict_returns_positive_runtime_and_model(self):
        q = exp_queries()[0]
        ns, model = self.p.predict_with_model(q["op"], q["args"])
        self.assertGreater(ns, 0)
        self.assertTrue(model)
        self.assertEqual(self.p.predict(q["op"], json.dumps(q["args"])), ns)

    def test_same_answers_as_cli(self):
        qs = exp_queries() + [{"op": "ttnn.nope", "args": {}}]
        text = "".join(json.dumps(q) + "\n" for q in qs)
        cli = subprocess.run([os.environ["TORP_CLI"], "predict", "--models", MODELS], input=text,
                             capture_output=True, text=True, check=True)
        cli_answers = [json.loads(line) for line in cli.stdout.splitlines()]
        py_answers = self.p.predict_batch(qs)
        self.assertEqual(len(cli_answers), len(qs))
        for c, p in zip(cli_answers, py_answers):
            self.assertEqual(c["status"], p["status"])
            if c["status"] == "ok":
                self.assertEqual(c["runtime_ns"], p["runtime_ns"])  # shortest round-trip text: exact
                self.assertEqual(c["model"], p["model"])
            else:
                self.assertEqual(c["error"], p["error"])

    def test_cli_answers_a_pipe_line_by_line(self):
        # A compiler keeps the pipe open and waits for each answer before the next query.
        proc = subprocess.Popen([os.environ["TORP_CLI"], "predict", "--models", MODELS], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        try:
            for q in exp_queries()[:3]:
                proc.stdin.write(json.dumps(q) + "\n")
                proc.stdin.flush()
                answer = json.loads(proc.stdout.readline())
                self.assertEqual(answer["status"], "ok")
                self.assertEqual(answer["runtime_ns"], self.p.predict(q["op"], q["args"]))
        finally:
            proc.stdin.close()
            self.assertEqual(proc.wait(timeout=30), 0)

    def test_typed_errors(self):
        with self.assertRaises(torp.UnknownOpError) as e:
            self.p.predict("ttnn.nope", {})
        self.assertEqual(e.exception.code, "unknown_op")
        with self.assertRaises(torp.InvalidArgumentError) as e:
            self.p.predict("ttnn.exp", {})
        self.assertEqual(e.exception.path, "/args/input_tensor")
        with self.assertRaises(torp.NoModelError):
            self.p.predict("ttnn.exp", exp_queries()[0]["args"], model="no/such/model")
        self.assertTrue(issubclass(torp.NoModelError, torp.TorpError))

    def test_bad_model_directory(self):
        with self.assertRaises(torp.ModelLoadError) as e:
            torp.Predictor("/nonexistent/models")
        self.assertEqual(e.exception.code, "io")

    def test_models_listing(self):
        ids = {m["id"] for m in self.p.models()}
        self.assertIn("reference/exp", ids)
        for m in self.p.models():
            self.assertIn("tt_metal_commit", m["provenance"])


if __name__ == "__main__":
    unittest.main()
