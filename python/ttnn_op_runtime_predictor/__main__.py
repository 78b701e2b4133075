# SPDX-License-Identifier: Apache-2.0
"""``python -m ttnn_op_runtime_predictor [--models DIR] [FILE]``: the ``torp predict`` command.

JSON Lines queries in, one JSON answer per line out (``--help`` for the details). It runs the
C++ command itself, in this process; the models bundled with the package are the default.
"""
import os
import signal
import sys

from . import _core
from ._predictor import BUNDLED_MODELS


def main() -> int:
    # Behave like the torp executable: Ctrl-C and a closed output pipe end the process.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    # --models DIR still wins; $TORP_MODELS wins over the bundled models.
    if not os.environ.get("TORP_MODELS") and os.path.isdir(BUNDLED_MODELS):
        os.environ["TORP_MODELS"] = BUNDLED_MODELS
    sys.stdout.flush()
    return _core.run_predict_command(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
