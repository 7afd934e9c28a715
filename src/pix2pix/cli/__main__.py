"""``python -m pix2pix.cli``: the same as the ``pix2pix`` command."""

import sys

from .main import main

sys.exit(main())
