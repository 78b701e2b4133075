# SPDX-License-Identifier: Apache-2.0
"""``python -m ttnn_op_runtime_predictor [--models DIR] [--threads N] [FILE]``: ``torp predict``.

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
`torp predict --help`. A malformed line gets an error answer; the stream goes on. From a pipe
each answer is written as soon as its line has arrived; a file is answered on --threads cores.
Exit code 0 even when some queries fail; 1 if the models or the input cannot be read."""


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
    parser.add_argument("--models", metavar="DIR",
                        help="model directory (else $TORP_MODELS, else the models bundled with the package)")
    parser.add_argument("--threads", metavar="N", type=int, default=0,
                        help="worker threads for a file (0 = all cores)")
    parser.add_argument("file", metavar="FILE", nargs="?", help="JSON Lines file of queries (default: standard input)")
    ns = parser.parse_args()
    if ns.threads < 0:
        parser.error("--threads must be 0 or more")
    models = ns.models
    if models is None:
        env = os.environ.get("TORP_MODELS")
        models = env if env else (BUNDLED_MODELS if os.path.isdir(BUNDLED_MODELS) else _core.resolve_models_dir())
    sys.stdout.flush()
    try:
        _core.answer_json_lines(models, ns.file, ns.threads)
    except TorpError as e:
        sys.stdout.flush()
        sys.stderr.write(f"torp predict: error: {e.code}: {e.message}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
