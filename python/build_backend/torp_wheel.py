# SPDX-License-Identifier: Apache-2.0
"""PEP 517 build backend for the ttnn_op_runtime_predictor wheel (pyproject.toml, backend-path).

It builds the ``_core`` extension with the project's CMake for the interpreter running it and
writes the wheel itself: the package's Python files, the extension (libtorp linked statically)
and the shipped models/. It needs only the standard library, CMake, a compiler and pybind11-dev
(no setuptools, wheel or PyPI), so ``pip install --no-build-isolation .`` works offline with any
interpreter.

``TORP_BUILD_DIR=<CMake build dir>`` reuses a configured build tree (the tests set it): its
``_core`` target is brought up to date and packed when it was built for this interpreter's ABI.
Otherwise the extension is built in ``build/wheel-<python tag>`` of the source tree, with only
the serving library and the Python module enabled; ``TORP_WHEEL_TRAINING=ON`` also links the
training libraries (Armadillo), which gives the package from_sweep, train, evaluate, drift,
suggest and regenerate.
"""
import base64
import hashlib
import io
import os
import re
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NAME = "ttnn_op_runtime_predictor"
SUMMARY = "TTNN op runtime predictor (TORP): device-kernel runtimes of TTNN ops from their tt-metal JSON arguments"
# What an sdist needs to build the wheel again.
SDIST_ENTRIES = ["CMakeLists.txt", "pyproject.toml", "README.md", "cmake", "include", "src", "cli", "python", "models"]
_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same inputs give the same wheel


def _version():
    text = (ROOT / "CMakeLists.txt").read_text()
    return re.search(r"project\(torp VERSION (\S+)", text).group(1)


def _dist_info():
    return f"{NAME}-{_version()}.dist-info"


def _tag():
    if sys.implementation.name != "cpython":
        raise RuntimeError(f"{NAME} builds for CPython only, not {sys.implementation.name}")
    python = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    platform = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    return f"{python}-{python}{sys.abiflags}-{platform}"


def metadata():
    return (f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {_version()}\nSummary: {SUMMARY}\n"
            "License: Apache-2.0\n")


def _wheel_file():
    return f"Wheel-Version: 1.0\nGenerator: torp_wheel\nRoot-Is-Purelib: false\nTag: {_tag()}\n"


def _run(cmd):
    print("torp_wheel:", " ".join(str(c) for c in cmd), file=sys.stderr, flush=True)
    subprocess.run([str(c) for c in cmd], check=True, stdout=sys.stderr)


def configure_command(source, build):
    """CMake configuration of the extension alone, for this interpreter."""
    return ["cmake", "-S", source, "-B", build, "-DCMAKE_BUILD_TYPE=Release", f"-DPython3_EXECUTABLE={sys.executable}",
            "-DTORP_BUILD_PYTHON=ON",
            "-DTORP_BUILD_TRAINING=" + ("ON" if os.environ.get("TORP_WHEEL_TRAINING", "OFF").upper() == "ON" else "OFF"), "-DTORP_BUILD_CLI=OFF", "-DTORP_BUILD_TESTS=OFF",
            "-DTORP_BUILD_BENCH=OFF", "-DTORP_INSTALL=OFF"]


def _build_extension():
    """The _core extension built for this interpreter (its file name carries the ABI)."""
    jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL") or str(os.cpu_count() or 1)
    file_name = "_core" + sysconfig.get_config_var("EXT_SUFFIX")
    reuse = os.environ.get("TORP_BUILD_DIR")
    if reuse:
        _run(["cmake", "--build", reuse, "--target", "_core", "-j", jobs])
        ext = Path(reuse) / "python" / NAME / file_name
        if ext.is_file():
            return ext
        print(f"torp_wheel: {reuse} holds no {file_name} for this interpreter; building one", file=sys.stderr)
    build = ROOT / "build" / f"wheel-{sys.implementation.cache_tag}"
    _run(configure_command(ROOT, build))
    _run(["cmake", "--build", build, "--target", "_core", "-j", jobs])
    return build / "python" / NAME / file_name


def _zip_add(archive, name, data, executable=False):
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.external_attr = (0o755 if executable else 0o644) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


# ---- PEP 517 hooks ---------------------------------------------------------------------------

def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    target = Path(metadata_directory) / _dist_info()
    target.mkdir(parents=True, exist_ok=True)
    (target / "METADATA").write_text(metadata())
    (target / "WHEEL").write_text(_wheel_file())
    return target.name


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    ext = _build_extension()
    files = {f"{NAME}/{f.name}": f for f in sorted((ROOT / "python" / NAME).iterdir())
             if f.suffix in (".py", ".pyi", ".typed")}
    files[f"{NAME}/{ext.name}"] = ext
    models = ROOT / "models"
    files.update({f"{NAME}/models/{f.relative_to(models).as_posix()}": f for f in sorted(models.rglob("*.json"))})

    wheel = Path(wheel_directory) / f"{NAME}-{_version()}-{_tag()}.whl"
    dist_info = _dist_info()
    with zipfile.ZipFile(wheel, "w") as archive:
        record = [_zip_add(archive, name, path.read_bytes(), executable=path == ext) for name, path in files.items()]
        for name, text in (("METADATA", metadata()), ("WHEEL", _wheel_file()), ("top_level.txt", NAME + "\n")):
            record.append(_zip_add(archive, f"{dist_info}/{name}", text.encode()))
        record.append(f"{dist_info}/RECORD,,")
        info = zipfile.ZipInfo(f"{dist_info}/RECORD", date_time=_EPOCH)
        info.external_attr = 0o644 << 16
        archive.writestr(info, "\n".join(record) + "\n")
    return wheel.name


def build_sdist(sdist_directory, config_settings=None):
    base = f"{NAME}-{_version()}"
    sdist = Path(sdist_directory) / f"{base}.tar.gz"

    def clean(info):
        if "__pycache__" in info.name:
            return None
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = 0
        return info

    with tarfile.open(sdist, "w:gz") as archive:
        for entry in SDIST_ENTRIES:
            archive.add(ROOT / entry, f"{base}/{entry}", filter=clean)
        pkg_info = metadata().encode()
        info = tarfile.TarInfo(f"{base}/PKG-INFO")
        info.size = len(pkg_info)
        archive.addfile(info, io.BytesIO(pkg_info))
    return sdist.name
