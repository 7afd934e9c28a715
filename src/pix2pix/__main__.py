"""``python -m pix2pix``: the same as the ``pix2pix`` command (used by torchrun: ``-m pix2pix``)."""

import sys

from .cli import main

sys.exit(main())
