# SPDX-License-Identifier: Apache-2.0
"""``python -m ttnn_op_runtime_predictor [--models DIR]... [--threads N] [--max-line-bytes N] [FILE]``: ``torp predict``.

JSON Lines queries in, one JSON answer per line out (``--help`` for the details). It runs the
library's JSON Lines server (the one the torp command runs) in this process; the models bundled
with the package are the default.
"""
import argparse
import os
import signal
import sys

from . import _core
from ._predictor import BUNDLED_MODELS
from ._types import TorpError

DESCRIPTION = """\
Answer runtime queries: one JSON query per input line, one JSON answer per line, in order.
A query is {"op": NAME, "args": {...}, "model"?: ID}; the answers and error codes are those of
`torp predict --help`. A malformed line, or one longer than --max-line-bytes, gets an error
answer; the stream goes on. From a pipe each answer is written as soon as its line has arrived;
a file is answered on --threads cores. Models come from every --models directory, else from
$TORP_MODELS (DIR:DIR...), else from the models bundled with the package.
Exit code 0 even when some queries fail; 1 if the models or the input cannot be read."""

# The bounds `torp predict` checks --max-line-bytes against.
MIN_LINE_BYTES, MAX_LINE_BYTES = 64, 1 << 32


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        sys.stderr.write(f"torp predict: error: {message}\n")
        sys.exit(2)


def main() -> int:
    # Behave like the torp executable: Ctrl-C and a closed output pipe end the process.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    parser = _Parser(prog="torp predict", description=DESCRIPTION,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", metavar="DIR", action="append", default=[],
                        help="model directory, repeatable (else $TORP_MODELS: DIR:DIR..., else the models bundled "
                             "with the package)")
    parser.add_argument("--threads", metavar="N", type=int, default=0,
                        help="worker threads for a file (0 = all cores)")
    parser.add_argument("--max-line-bytes", metavar="N", type=int, default=_core.DEFAULT_MAX_LINE_BYTES,
                        help="longest query line read; a longer line gets an invalid_query answer and the stream "
                             f"goes on (default: {_core.DEFAULT_MAX_LINE_BYTES})")
    parser.add_argument("file", metavar="FILE", nargs="?", help="JSON Lines file of queries (default: standard input)")
    ns = parser.parse_args()
    if not 0 <= ns.threads <= 1024:
        parser.error("--threads must be from 0 to 1024")
    if not MIN_LINE_BYTES <= ns.max_line_bytes <= MAX_LINE_BYTES:
        parser.error(f"--max-line-bytes must be from {MIN_LINE_BYTES} to {MAX_LINE_BYTES}")
    sys.stdout.flush()
    try:
        _core.answer_json_lines(models_dirs(ns.models), ns.file, ns.threads, ns.max_line_bytes)
    except TorpError as e:
        sys.stdout.flush()
        sys.stderr.write(f"torp predict: error: {e}\n")
        return 1
    return 0


def models_dirs(given):
    """The directories to load, as `torp predict` chooses them: every --models, else $TORP_MODELS
    split at ':' (empty parts ignored), else the bundled models (else the C++ library's default)."""
    if given:
        return given
    env = [d for d in os.environ.get("TORP_MODELS", "").split(":") if d]
    if env:
        return env
    return [BUNDLED_MODELS if os.path.isdir(BUNDLED_MODELS) else _core.resolve_models_dir()]


if __name__ == "__main__":
    sys.exit(main())
