"""pix2pix: paired image-to-image translation with conditional GANs (Isola et al., 2017).

    import pix2pix
    cfg = pix2pix.TrainConfig.from_flat({"data_root": "datasets/facades", "preset": "facades"})
    run_dir = pix2pix.train(cfg)
    translator = pix2pix.load(run_dir)          # -> Translator (also .safetensors/.onnx/.pt2/.ts exports)
    output = translator(PIL.Image.open("labels.png"))
"""

from .config import DataConfig, ModelConfig, TrainConfig
from .errors import CheckpointError, ConfigError, DataError, Pix2PixError
from .inference import Translator, load
from .training import resume, train

__version__ = "0.1.0"

__all__ = [
    "TrainConfig", "DataConfig", "ModelConfig", "Translator", "load", "train", "resume",
    "Pix2PixError", "ConfigError", "DataError", "CheckpointError", "__version__",
]
