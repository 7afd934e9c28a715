"""pix2pix: paired image-to-image translation with conditional GANs (Isola et al., 2017).

    import pix2pix
    cfg = pix2pix.TrainConfig.from_flat({"data_root": "datasets/facades", "preset": "facades"})
    run_dir = pix2pix.train(cfg)
    translator = pix2pix.load(run_dir)          # -> Translator (also .safetensors/.onnx/.pt2/.ts exports)
    output = translator(PIL.Image.open("labels.png"))

The package, by folder: ``config``, ``errors``, ``fileio``, ``devices``, ``models/`` and ``data/``
are the core; ``training/``, ``deploy/`` and ``evaluate/`` are the features built on it;
``pictures`` and ``pages`` draw PNGs and write HTML; ``cli/`` is the command line. docs/design.md
has the map.
"""

from ._version import __version__
from .config import DataConfig, ModelConfig, TrainConfig
from .deploy import Translator, load
from .errors import CheckpointError, ConfigError, DataError, Pix2PixError
from .training import resume, train

__all__ = [
    "TrainConfig", "DataConfig", "ModelConfig", "Translator", "load", "train", "resume",
    "Pix2PixError", "ConfigError", "DataError", "CheckpointError", "__version__",
]
