"""``python -m pix2pix``: the same as the ``pix2pix`` command (used by torchrun: ``-m pix2pix``)."""

import logging
import os
import sys

from .cli import main

code = main()
from .training.distributed import joined  # noqa: E402  (after the command: torch is imported by then)

if joined():
    # A process that was in a gloo process group leaves without the interpreter's shutdown. torch
    # (2.13) lets a gloo worker thread drop the last collective's tensors after the collective has
    # returned; when that happens during shutdown it needs the GIL the shutdown holds, and the
    # process aborts (SIGABRT, "terminate called without an active exception") after a clean run or
    # a clean one-line error. Every file is written and closed by now; flush what is left and go.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(code or 0))
sys.exit(code)
