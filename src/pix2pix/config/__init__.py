"""Configuration: one frozen dataclass tree for data, model and training, the one source of options.

Every option is declared once, here, as a dataclass field whose metadata carries its help text,
its choices, its bounds and whether ``--resume`` may change it. The command line is generated from
these fields (``cli/options.py``), config files are checked and coerced by field type
(:func:`load_config_file`), and a checkpoint's stored config goes through the same checks::

    cfg = TrainConfig.from_flat({"data_root": "datasets/facades", "preset": "facades"})
    cfg.model.depth        # 8 for unet_256

Field names are unique across the sections, so the CLI and ``--config`` files use a flat namespace
(``--ngf 32`` sets ``model.ngf``). A run's ``config.json`` and its checkpoints carry the resolved config.
"""

from .fields import (DIRECTIONS, DROPOUT_PLACEMENTS, GAN_LOSSES, LR_POLICIES, MAX_SIDE, MAX_WIDTH, NORMS,
                     PATCH_SIZES, PRECISIONS, PREPROCESS_MODES, check_fields, coerce, flatten, option)
from .files import load_config_file, preset_and_file
from .presets import PRESETS, preset_overrides
from .schema import (SECTIONS, DataConfig, ModelConfig, TrainConfig, option_fields, resumable_options, sides_of,
                     source_and_target)

__all__ = ["DataConfig", "ModelConfig", "TrainConfig", "SECTIONS", "PRESETS", "option", "option_fields",
           "resumable_options", "coerce", "flatten", "check_fields", "load_config_file", "preset_and_file",
           "preset_overrides", "source_and_target", "sides_of", "DIRECTIONS", "PREPROCESS_MODES", "NORMS",
           "GAN_LOSSES", "LR_POLICIES", "DROPOUT_PLACEMENTS", "PRECISIONS", "PATCH_SIZES", "MAX_SIDE", "MAX_WIDTH"]
