"""Configuration: one frozen dataclass tree for data, model and training, plus the paper presets.

A run folder keeps its resolved config as ``config.json`` and every checkpoint carries the same
dict, so a checkpoint can always rebuild its own networks::

    cfg = TrainConfig.from_flat({"data_root": "datasets/facades", "preset": "facades"})
    cfg.model.depth        # 8 for unet_256

Field names are unique across the three sections, so the CLI and ``--config`` files can use a flat
namespace (``--ngf 32`` sets ``model.ngf``).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from .errors import ConfigError

DIRECTIONS = ("AtoB", "BtoA")
PREPROCESS_MODES = ("resize_and_crop", "resize", "crop", "none")
NORMS = ("batch", "instance", "none")
GAN_LOSSES = ("vanilla", "lsgan", "hinge")
LR_POLICIES = ("linear", "step", "cosine")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# PatchGAN receptive field (pixels) -> number of stride-2 convolutions; 1 is the pixel GAN.
PATCH_SIZES = {1: 0, 16: 1, 34: 2, 70: 3, 142: 4, 286: 5}


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


@dataclass(frozen=True)
class DataConfig:
    """Where the pairs are and how they are jittered.

    ``preprocess``: ``resize_and_crop`` (resize to load_size, random crop crop_size: the paper's
    random jitter), ``resize`` (resize to load_size, no crop), ``crop`` (random crop of the stored
    image), ``none`` (use images as they are; they must share one size).
    """

    data_root: str = ""
    direction: str = "AtoB"
    load_size: int = 286
    crop_size: int = 256
    preprocess: str = "resize_and_crop"
    flip: bool = True
    train_split: str = "train"
    val_split: str = "val"
    max_items: int | None = None  # use only the first N pairs (sorted by name): quick experiments
    strict: bool = False  # undecodable files are errors instead of skipped with a warning

    def __post_init__(self) -> None:
        _check(self.direction in DIRECTIONS, f"direction must be one of {DIRECTIONS}, got {self.direction!r}")
        _check(
            self.preprocess in PREPROCESS_MODES,
            f"preprocess must be one of {PREPROCESS_MODES}, got {self.preprocess!r}",
        )
        _check(self.load_size > 0 and self.crop_size > 0, "load_size and crop_size must be positive")
        if self.preprocess == "resize_and_crop":
            _check(
                self.crop_size <= self.load_size,
                f"crop_size ({self.crop_size}) must not exceed load_size ({self.load_size})",
            )
        _check(self.max_items is None or self.max_items > 0, "max_items must be positive")

    @property
    def image_size(self) -> int | None:
        """Side length the model sees in training; None for ``preprocess=none`` (the data's own)."""
        if self.preprocess == "resize":
            return self.load_size
        if self.preprocess == "none":
            return None
        return self.crop_size


@dataclass(frozen=True)
class ModelConfig:
    """The two networks. ``netG`` is ``unet_N`` with N a power of two >= 32; depth = log2 N."""

    netG: str = "unet_256"
    ngf: int = 64
    ndf: int = 64
    norm: str = "batch"
    patch: int = 70
    input_nc: int = 3
    output_nc: int = 3
    dropout: float = 0.5

    def __post_init__(self) -> None:
        _check(self.norm in NORMS, f"norm must be one of {NORMS}, got {self.norm!r}")
        _check(
            self.patch in PATCH_SIZES,
            f"patch must be one of {sorted(PATCH_SIZES)} (receptive field in pixels), got {self.patch!r}",
        )
        _check(self.ngf > 0 and self.ndf > 0, "ngf and ndf must be positive")
        _check(self.input_nc in (1, 3) and self.output_nc in (1, 3), "input_nc and output_nc must be 1 or 3")
        _check(0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), got {self.dropout}")
        self.depth  # validates netG

    @property
    def depth(self) -> int:
        """Number of stride-2 downsamplings in the U-Net (8 for unet_256)."""
        name = self.netG
        size = name[5:] if name.startswith("unet_") else ""
        ok = size.isdigit() and int(size) >= 32 and (int(size) & (int(size) - 1)) == 0
        _check(ok, f"netG must be unet_N with N a power of two >= 32 (unet_128, unet_256), got {name!r}")
        return int(math.log2(int(size)))

    @property
    def multiple(self) -> int:
        """Image sides must be a multiple of this for the U-Net's skips to line up."""
        return 2**self.depth


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs. ``out`` is the run folder."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    out: str = "runs/pix2pix"
    epochs: int = 100  # epochs at the initial learning rate
    epochs_decay: int = 100  # further epochs while the schedule decays
    lr_policy: str = "linear"
    lr_step: int = 50  # for lr_policy=step: multiply by 0.1 every lr_step epochs
    batch_size: int = 1
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    gan_loss: str = "vanilla"
    lambda_l1: float = 100.0
    lambda_gan: float = 1.0  # weight of the cGAN term; 0 = L1 alone (the paper's ablation, no D)
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    channels_last: bool = False
    compile: bool = False
    sync_bn: bool = False
    save_every: int = 20  # epochs between numbered checkpoints in checkpoints/
    latest_every: float = 1.0  # minutes: latest.pt at the end of an epoch if this long since the last
    sample_every: int = 500  # steps between sample grids
    log_every: int = 50  # steps between loss read-backs (progress bar, losses.jsonl)
    n_samples: int = 4  # fixed validation pairs in each sample grid
    skip_nonfinite: bool = False
    time_limit: float | None = None  # minutes; stop cleanly (with a checkpoint) when reached
    tensorboard: bool = False

    def __post_init__(self) -> None:
        _check(self.epochs >= 0 and self.epochs_decay >= 0, "epochs and epochs_decay must be >= 0")
        _check(self.total_epochs > 0, "epochs + epochs_decay must be at least 1")
        _check(self.lr_policy in LR_POLICIES, f"lr_policy must be one of {LR_POLICIES}, got {self.lr_policy!r}")
        _check(self.gan_loss in GAN_LOSSES, f"gan_loss must be one of {GAN_LOSSES}, got {self.gan_loss!r}")
        _check(self.precision in PRECISIONS, f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        _check(self.batch_size >= 1, "batch_size must be >= 1")
        _check(self.lr > 0, "lr must be positive")
        _check(self.lambda_l1 >= 0 and self.lambda_gan >= 0, "lambda_l1 and lambda_gan must be >= 0")
        _check(self.lambda_l1 > 0 or self.lambda_gan > 0, "lambda_l1 and lambda_gan cannot both be 0")
        _check(self.lr_step >= 1, "lr_step must be >= 1")
        _check(self.save_every >= 1 and self.sample_every >= 1 and self.log_every >= 1,
               "save_every, sample_every and log_every must be >= 1")
        _check(self.n_samples >= 0, "n_samples must be >= 0")
        _check(self.latest_every >= 0, "latest_every must be >= 0 (minutes; 0 = every epoch)")
        _check(self.time_limit is None or self.time_limit > 0, "time_limit must be positive (minutes)")
        size = self.data.image_size
        if size is not None:
            _check(
                size % self.model.multiple == 0,
                f"{self.model.netG} needs image sides that are a multiple of {self.model.multiple}, "
                f"but the training size is {size} (crop_size, or load_size with preprocess=resize)",
            )

    @property
    def total_epochs(self) -> int:
        return self.epochs + self.epochs_decay

    # ----- conversion ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrainConfig":
        """Inverse of :meth:`to_dict`; also accepts a flat dict (see :meth:`from_flat`)."""
        if "data" in d or "model" in d:
            flat = dict(d.get("data", {}))
            flat.update(d.get("model", {}))
            flat.update({k: v for k, v in d.items() if k not in ("data", "model")})
            return cls.from_flat(flat)
        return cls.from_flat(d)

    @classmethod
    def from_flat(cls, flat: Mapping[str, Any], base: "TrainConfig | None" = None) -> "TrainConfig":
        """Build from flat keys, applied over ``base`` (or the defaults). Unknown keys are errors.

        A ``preset`` key applies that preset first; the other keys override it.
        """
        flat = dict(flat)
        preset = flat.pop("preset", None)
        if preset is not None:
            flat = {**preset_overrides(preset), **flat}
        base = base or cls()
        sections: dict[str, dict[str, Any]] = {"data": {}, "model": {}, "train": {}}
        owner = _field_owner()
        for key, value in flat.items():
            if key not in owner:
                raise ConfigError(f"unknown option {key!r}; known options: {', '.join(sorted(owner))}")
            sections[owner[key]][key] = value
        data = dataclasses.replace(base.data, **sections["data"])
        model = dataclasses.replace(base.model, **sections["model"])
        return dataclasses.replace(base, data=data, model=model, **sections["train"])

    def to_flat(self) -> dict[str, Any]:
        flat = {k: v for k, v in self.to_dict().items() if k not in ("data", "model")}
        flat.update(dataclasses.asdict(self.data))
        flat.update(dataclasses.asdict(self.model))
        return flat

    def save_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")


def _field_owner() -> dict[str, str]:
    owner = {f.name: "data" for f in fields(DataConfig)}
    owner.update({f.name: "model" for f in fields(ModelConfig)})
    owner.update({f.name: "train" for f in fields(TrainConfig) if f.name not in ("data", "model")})
    return owner


def option_names() -> set[str]:
    """All flat option names (``ngf``, ``data_root``, ``epochs``, ...)."""
    return set(_field_owner())


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a JSON or YAML file of options (flat, or nested as in a run's config.json)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror or e}") from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            loaded = yaml.safe_load(text)
        else:
            loaded = json.loads(text)
    except Exception as e:  # json.JSONDecodeError, yaml.YAMLError
        raise ConfigError(f"config file {path} is not valid {path.suffix.lstrip('.').upper() or 'JSON'}: {e}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must hold a mapping of option names to values")
    if "data" in loaded or "model" in loaded:
        return TrainConfig.from_dict(loaded).to_flat()
    return loaded


# ----- paper presets ----------------------------------------------------------------------------
# Settings from the paper's appendix (section 6.2): direction as the paper's headline task for that
# dataset, epochs split half constant / half linear decay as in the reference implementation.
PRESETS: dict[str, dict[str, Any]] = {
    # 2975 pairs, labels -> photo, 200 epochs, batch 1, random jitter + mirroring.
    "cityscapes": dict(direction="BtoA", epochs=100, epochs_decay=100, batch_size=1,
                       load_size=286, crop_size=256, netG="unet_256", patch=70),
    # 400 pairs, labels -> facade, 200 epochs, batch 1.
    "facades": dict(direction="BtoA", epochs=100, epochs_decay=100, batch_size=1,
                    load_size=286, crop_size=256, netG="unet_256", patch=70),
    # 1096 pairs, aerial photo -> map, 200 epochs, batch 1.
    "maps": dict(direction="AtoB", epochs=100, epochs_decay=100, batch_size=1,
                 load_size=286, crop_size=256, netG="unet_256", patch=70),
    # 50k pairs, edges -> shoe, 15 epochs, batch 4.
    "edges2shoes": dict(direction="AtoB", epochs=8, epochs_decay=7, batch_size=4,
                        load_size=286, crop_size=256, netG="unet_256", patch=70),
    # 137k pairs, edges -> handbag, 15 epochs, batch 4.
    "edges2handbags": dict(direction="AtoB", epochs=8, epochs_decay=7, batch_size=4,
                           load_size=286, crop_size=256, netG="unet_256", patch=70),
    # 17823 pairs, night -> day, 17 epochs, batch 4.
    "night2day": dict(direction="AtoB", epochs=9, epochs_decay=8, batch_size=4,
                      load_size=286, crop_size=256, netG="unet_256", patch=70),
}


def preset_overrides(name: str) -> dict[str, Any]:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return dict(PRESETS[name])


def preset_and_file(preset: str | None, config_file: str | Path | None) -> dict[str, Any]:
    """Flat settings from ``--preset`` and then ``--config FILE`` (a ``preset`` key in the file
    applies before the file's other entries); explicit options go on top of this."""
    flat: dict[str, Any] = dict(preset_overrides(preset)) if preset else {}
    if config_file:
        from_file = load_config_file(config_file)
        if "preset" in from_file:
            flat.update(preset_overrides(from_file.pop("preset")))
        flat.update(from_file)
    return flat
