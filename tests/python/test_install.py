# SPDX-License-Identifier: Apache-2.0
"""The README's install: `pip install --no-build-isolation .` into a fresh venv of the default
python3; the module then imports and answers from another directory with no path or model
variable set, from the models bundled in the wheel."""
import json
import os
import shutil
import subprocess
import sys
import tarfile

from conftest import CLI, MODELS, SOURCE, WALKTHROUGH, cli_answers

CHECK = """
import json, sys
import ttnn_op_runtime_predictor as torp
kwargs, query = json.loads(sys.argv[1])
p = torp.Predictor()
print(json.dumps({"file": torp.__file__, "directory": p.directory, "models": len(p.models()),
                  "reference_call": torp.get_runtime_from_model(**kwargs),
                  "predict": p.predict(query["op"], query["args"])}))
"""


def test_pip_install_into_a_fresh_venv(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([shutil.which("python3"), "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TORP_MODELS")}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INDEX="1")
    # ctest sets TORP_BUILD_DIR: the backend packs the extension the tests built (same ABI).
    pip = subprocess.run([python, "-m", "pip", "install", "--no-cache-dir", "--no-build-isolation", str(SOURCE)], env=env,
                         capture_output=True, text=True, timeout=1200)
    assert pip.returncode == 0, pip.stdout + pip.stderr

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    kwargs, query = WALKTHROUGH["exp"]
    run = lambda *args, **extra: subprocess.run([python, *args], cwd=elsewhere, env={**env, **extra},  # noqa: E731
                                                capture_output=True, text=True, check=True, timeout=120)
    got = json.loads(run("-c", CHECK, json.dumps([kwargs, query])).stdout)
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['platlib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    package = os.path.join(site, "ttnn_op_runtime_predictor")
    assert got["file"] == os.path.join(package, "__init__.py")
    assert got["directory"] == os.path.join(package, "models")  # bundled, found with no variable set
    assert got["models"] == len(list(MODELS.rglob("*.json")))
    expected = cli_answers([query])[0]["runtime_ns"]
    assert got["reference_call"] == expected and got["predict"] == expected

    queries = str(SOURCE / "examples" / "queries.jsonl")
    cli = subprocess.run([CLI, "predict", "--models", str(MODELS), queries], capture_output=True, text=True,
                         check=True)
    assert run("-m", "ttnn_op_runtime_predictor", queries).stdout == cli.stdout

    # $TORP_MODELS overrides the bundled models.
    subset = tmp_path / "subset"
    shutil.copytree(MODELS / "wormhole", subset)
    got = json.loads(run("-c", CHECK, json.dumps([kwargs, query]), TORP_MODELS=str(subset)).stdout)
    assert (got["directory"], got["models"]) == (str(subset), 2)


def test_sdist_holds_what_the_wheel_build_needs(tmp_path):
    sys.path.insert(0, str(SOURCE / "python" / "build_backend"))
    try:
        import torp_wheel
    finally:
        sys.path.pop(0)
    name = torp_wheel.build_sdist(str(tmp_path))
    with tarfile.open(tmp_path / name) as sdist:
        sdist.extractall(tmp_path / "unpacked")
    tree = tmp_path / "unpacked" / name[:-len(".tar.gz")]
    assert (tree / "PKG-INFO").read_text() == torp_wheel.metadata()
    # The wheel build configures exactly this: every source it names must be in the sdist.
    configure = subprocess.run([str(a) for a in torp_wheel.configure_command(tree, tmp_path / "build")],
                               capture_output=True, text=True, timeout=300)
    assert configure.returncode == 0, configure.stderr
