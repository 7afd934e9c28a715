"""The three frozen config dataclasses: data, model and training, every field declared with
:func:`~pix2pix.config.fields.option`; plus the flat view of their fields and the direction swap."""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from ..errors import ConfigError
from .fields import (DIRECTIONS, DROPOUT_PLACEMENTS, GAN_LOSSES, LR_POLICIES, MAX_SIDE, MAX_WIDTH, NORMS,
                     PATCH_SIZES, PRECISIONS, PREPROCESS_MODES, check_fields, coerce, flatten, option, require)
from .presets import preset_overrides


@dataclass(frozen=True)
class DataConfig:
    """Where the pairs are and how they are jittered (see docs/data.md)."""

    data_root: str = option("", "dataset folder with train/ (and val/) splits", flag="--data", metavar="DIR")
    direction: str = option("AtoB", "which side of each pair is the model's input", choices=DIRECTIONS)
    load_size: int = option(286, "resize to this before cropping", lo=1, hi=MAX_SIDE)
    crop_size: int = option(256, "random crop size = training size", lo=1, hi=MAX_SIDE)
    preprocess: str = option("resize_and_crop", "jitter: resize_and_crop (the paper's), resize (to load_size), "
                             "crop (of the stored image), none (images as they are)", choices=PREPROCESS_MODES)
    flip: bool = option(True, "random horizontal flips")
    train_split: str = option("train", "training split folder name")
    val_split: str = option("val", "split the sample grids are drawn from")
    max_items: int | None = option(None, "use only the first N training pairs (sorted by name)", lo=1)
    strict: bool = option(False, "stop on unreadable images instead of skipping them with a warning")
    cache: bool = option(True, "keep the decoded pairs in the user's cache folder for later starts", resumable=True)
    cache_dir: str | None = option(None, "decoded-pair cache folder (the user's cache)", metavar="DIR", resumable=True)

    def __post_init__(self) -> None:
        check_fields(self)
        if self.preprocess == "resize_and_crop":
            require(self.crop_size <= self.load_size,
                   f"crop_size ({self.crop_size}) must not exceed load_size ({self.load_size})")

    @property
    def image_size(self) -> int | None:
        """Side length the model sees in training; None for ``preprocess=none`` (the data's own)."""
        if self.preprocess == "resize":
            return self.load_size
        if self.preprocess == "none":
            return None
        return self.crop_size

    @property
    def model_size(self) -> int:
        """The side a model trained with these settings is run at: the training size, or
        ``crop_size`` for ``preprocess=none`` (whose real size is the data's, not in the config)."""
        return self.image_size or self.crop_size


@dataclass(frozen=True)
class ModelConfig:
    """The two networks. ``netG`` is ``unet_N`` (N a power of two >= 32; depth = log2 N) or
    ``resnet_Nblocks`` (two stride-2 downsamplings, N residual blocks)."""

    netG: str = option("unet_256", "generator: unet_N (N a power of two from 32 to 4096; depth log2 N) or "
                       "resnet_6blocks / resnet_9blocks")
    ngf: int = option(64, "generator base width", lo=1, hi=MAX_WIDTH)
    ndf: int = option(64, "discriminator base width", lo=1, hi=MAX_WIDTH)
    norm: str = option("batch", "normalisation layers", choices=NORMS)
    patch: int = option(70, "PatchGAN receptive field in pixels; 1 = PixelGAN", choices=tuple(PATCH_SIZES))
    input_nc: int = option(3, "input channels", choices=(1, 3))
    output_nc: int = option(3, "output channels", choices=(1, 3))
    dropout: float = option(0.5, "dropout in the three innermost U-Net decoder blocks (ResNet: in every "
                            "residual block)", lo=0.0, hi=0.99)
    dropout_placement: str = option("paper", "U-Net decoder blocks with dropout: paper (the three innermost, "
                                    "as the paper's Torch code) or reference (as the PyTorch reference: "
                                    "one block further out)", choices=DROPOUT_PLACEMENTS)

    def __post_init__(self) -> None:
        check_fields(self)
        self.depth  # validates netG

    @property
    def n_blocks(self) -> int | None:
        """Residual blocks of a ``resnet_Nblocks`` generator; None for a U-Net."""
        name = self.netG
        count = name[7:-6] if name.startswith("resnet_") and name.endswith("blocks") else ""
        return int(count) if count.isdigit() and int(count) <= 64 else None

    @property
    def depth(self) -> int:
        """Number of stride-2 downsamplings: 8 for unet_256, 2 for every resnet_Nblocks."""
        name = self.netG
        if self.n_blocks is not None:
            return 2
        size = name[5:] if name.startswith("unet_") else ""
        ok = size.isdigit() and 32 <= int(size) <= 4096 and (int(size) & (int(size) - 1)) == 0
        require(ok, f"netG: {name!r} is not unet_N with N a power of two from 32 to 4096 (unet_128, unet_256) "
                   "or resnet_Nblocks (resnet_6blocks, resnet_9blocks)")
        return int(math.log2(int(size)))

    @property
    def multiple(self) -> int:
        """Image sides must be a multiple of this (the U-Net's skips must line up; 4 for a ResNet)."""
        return 2**self.depth


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs. ``out`` is the run folder."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    out: str = option("runs/pix2pix", "run folder for checkpoints, samples and logs", metavar="RUN_DIR")
    init_from: str = option("", "fine-tune: start from this model's weights (and its architecture); any "
                            "model file, run folder or downloaded model name", metavar="MODEL")
    epochs: int = option(100, "epochs at the initial learning rate", lo=0, hi=1_000_000, resumable=True)
    epochs_decay: int = option(100, "further epochs while the learning rate decays", lo=0, hi=1_000_000,
                               resumable=True)
    extra_epochs: int = option(0, "epochs after the schedule's end, at its final learning rate (how a "
                               "finished run is extended)", lo=0, hi=1_000_000, resumable=True)
    lr_policy: str = option("linear", "learning-rate schedule", choices=LR_POLICIES)
    lr_step: int = option(50, "with --lr-policy step: x0.1 every this many epochs", lo=1)
    batch_size: int = option(1, "images per step per process", lo=1, hi=65536)
    lr: float = option(2e-4, "Adam learning rate", above=0.0, hi=10.0)
    beta1: float = option(0.5, "Adam beta1", lo=0.0, hi=0.9999)
    beta2: float = option(0.999, "Adam beta2", lo=0.0, hi=0.99999)
    gan_loss: str = option("vanilla", "adversarial loss", choices=GAN_LOSSES)
    lambda_l1: float = option(100.0, "weight of the L1 term", lo=0.0, hi=1e6)
    lambda_gan: float = option(1.0, "weight of the cGAN term; 0 = L1 alone, the paper's ablation (no "
                               "discriminator)", lo=0.0, hi=1e6)
    seed: int = option(0, "random seed", lo=0, hi=2**63 - 1)
    device: str = option("auto", "auto, cpu, cuda, cuda:N or mps", resumable=True)
    precision: str = option("auto", "autocast precision (auto: bf16 on CPUs with native bf16, else fp32)", choices=PRECISIONS)
    channels_last: bool = option(False, "NHWC memory format")
    compile: bool = option(False, "torch.compile both networks", resumable=True)
    sync_bn: bool = option(False, "SyncBatchNorm under torchrun")
    save_every: int = option(20, "epochs between numbered checkpoints in checkpoints/", lo=1, resumable=True)
    latest_every: float = option(5.0, "minutes between latest.pt writes, at log points; 0 = each epoch end", lo=0.0,
                                 hi=1e6, resumable=True)
    sample_every: int = option(500, "steps between sample grids", lo=1, resumable=True)
    log_every: int = option(50, "steps between loss read-backs (progress bar, losses.jsonl)", lo=1, resumable=True)
    n_samples: int = option(4, "validation pairs in each sample grid", lo=0, hi=256, resumable=True)
    skip_nonfinite: bool = option(False, "skip batches whose loss is NaN/inf instead of stopping", resumable=True)
    time_limit: float | None = option(None, "stop cleanly (with a checkpoint) after this many minutes", above=0.0,
                                      resumable=True)
    tensorboard: bool = option(False, "also log to RUN_DIR/tensorboard", resumable=True)
    dist_timeout: float = option(10.0, "torchrun: minutes to wait for the other processes", above=0.0, resumable=True)

    def __post_init__(self) -> None:
        check_fields(self)
        require(self.total_epochs > 0, "epochs + epochs_decay must be at least 1")
        require(self.lambda_l1 > 0 or self.lambda_gan > 0, "lambda_l1 and lambda_gan cannot both be 0")
        size = self.data.image_size
        if size is not None:
            require(size % self.model.multiple == 0,
                   f"{self.model.netG} needs image sides that are a multiple of {self.model.multiple}, "
                   f"but the training size is {size} (crop_size, or load_size with preprocess=resize)")

    @property
    def total_epochs(self) -> int:
        return self.epochs + self.epochs_decay + self.extra_epochs

    @property
    def side_channels(self) -> tuple[int, int]:
        """(channels of side A, channels of side B) of the dataset's pairs, after the direction."""
        return sides_of(self.data.direction, self.model.input_nc, self.model.output_nc)

    # ----- conversion ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "options") -> "TrainConfig":
        """Inverse of :meth:`to_dict`; also accepts a flat dict (see :meth:`from_flat`)."""
        return cls.from_flat(flatten(d, source), source=source)

    @classmethod
    def from_flat(cls, flat: Mapping[str, Any], base: "TrainConfig | None" = None,
                  source: str = "options") -> "TrainConfig":
        """Build from flat keys over ``base`` (or the defaults); values are coerced to each field's
        type. Unknown keys, wrong types and values out of range are one :class:`ConfigError` naming
        ``source`` (a file name, or "options"), the key and the value. A ``preset`` key applies that
        preset first; the other keys override it."""
        flat = dict(flat)
        preset = flat.pop("preset", None)
        if preset is not None:
            try:
                flat = {**preset_overrides(preset), **flat}
            except ConfigError as e:
                raise ConfigError(f"{source}: {e}") from None
        base = base or cls()
        sections: dict[str, dict[str, Any]] = {"data": {}, "model": {}, "train": {}}
        specs = option_fields()
        for key, value in flat.items():
            if key not in specs:
                raise ConfigError(f"{source}: unknown option {key!r}; known options: {', '.join(sorted(specs))}")
            section, f, hint = specs[key]
            sections[section][key] = coerce(key, value, hint, source)
        try:
            data = dataclasses.replace(base.data, **sections["data"])
            model = dataclasses.replace(base.model, **sections["model"])
            return dataclasses.replace(base, data=data, model=model, **sections["train"])
        except ConfigError as e:
            raise ConfigError(f"{source}: {e}") from None

    def to_flat(self) -> dict[str, Any]:
        flat = {k: v for k, v in self.to_dict().items() if k not in ("data", "model")}
        flat.update(dataclasses.asdict(self.data))
        flat.update(dataclasses.asdict(self.model))
        return flat


SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


def option_fields() -> dict[str, tuple[str, dataclasses.Field, Any]]:
    """Every flat option name -> (section, field, type hint), in declaration order."""
    out: dict[str, tuple[str, dataclasses.Field, Any]] = {}
    for section, cls in SECTIONS.items():
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            if f.name not in ("data", "model"):
                out[f.name] = (section, f, hints[f.name])
    return out


def resumable_options() -> set[str]:
    """The options ``--resume`` may change (anything else must match the checkpoint)."""
    return {name for name, (_, f, _) in option_fields().items() if f.metadata.get("resumable")}


def source_and_target(direction: str, a: Any, b: Any) -> tuple[Any, Any]:
    """(model input, target) from a pair's sides A and B: the one place the direction is applied."""
    if direction not in DIRECTIONS:
        raise ConfigError(f"direction: {direction!r} is not one of {', '.join(DIRECTIONS)}")
    return (a, b) if direction == "AtoB" else (b, a)


def sides_of(direction: str, source: Any, target: Any) -> tuple[Any, Any]:
    """(side A, side B) from (model input, target): the inverse of :func:`source_and_target`."""
    return source_and_target(direction, source, target)  # a swap is its own inverse
