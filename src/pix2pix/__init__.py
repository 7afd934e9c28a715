"""pix2pix: paired image-to-image translation with conditional GANs (Isola et al., 2017).

    import pix2pix
    cfg = pix2pix.TrainConfig.from_flat({"data_root": "datasets/facades", "preset": "facades"})
    run_dir = pix2pix.train(cfg)
    translator = pix2pix.load(run_dir)          # -> Translator (also exports, HF folders, reference .pth)
    output = translator(PIL.Image.open("labels.png"))

The package, by folder: ``config``, ``errors``, ``fileio``, ``devices``, ``models/`` and ``data/``
are the core; ``training/``, ``deploy/`` and ``evaluate/`` are the features built on it;
``pictures`` and ``pages`` draw PNGs and write HTML; ``cli/`` is the command line. docs/design.md
has the map.
"""

from ._version import __version__
from .config import DataConfig, ModelConfig, TrainConfig
from .deploy import Translator, load
from .deploy.finetune import train  # training's train(), which also opens an init_from model of any kind
from .errors import CheckpointError, ConfigError, DataError, Pix2PixError
from .training import resume

__all__ = [
    "TrainConfig", "DataConfig", "ModelConfig", "Translator", "load", "train", "resume",
    "Pix2PixError", "ConfigError", "DataError", "CheckpointError", "__version__",
]
