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

from __future__ import annotations

import dataclasses
import json
import math
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Sequence

from .errors import ConfigError

DIRECTIONS = ("AtoB", "BtoA")
PREPROCESS_MODES = ("resize_and_crop", "resize", "crop", "none")
NORMS = ("batch", "instance", "none")
GAN_LOSSES = ("vanilla", "lsgan", "hinge")
LR_POLICIES = ("linear", "step", "cosine")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# PatchGAN receptive field (pixels) -> number of stride-2 convolutions; 1 is the pixel GAN.
PATCH_SIZES = {1: 0, 16: 1, 34: 2, 70: 3, 142: 4, 286: 5}
MAX_SIDE = 8192  # largest image side (load/crop size, U-Net input) an option may name
MAX_WIDTH = 1024  # largest base width (ngf, ndf): unet_256 at ngf 1024 already has ~14 G parameters


def option(default: Any, help: str, *, choices: Sequence[Any] | None = None, lo: float | None = None,
           hi: float | None = None, above: float | None = None, resumable: bool = False, flag: str | None = None,
           metavar: str | None = None) -> Any:
    """A config field: ``default`` plus what the CLI, the file checks and ``--resume`` need to know.

    ``lo``/``hi``: inclusive bounds for numbers, ``above``: an exclusive lower bound (a bound on a
    ``| None`` field applies when it is set);
    ``resumable``: ``--resume`` may change it; ``flag``: the command-line name when it is not
    ``--field-name``.
    """
    meta = {"help": help, "choices": tuple(choices) if choices else None, "lo": lo, "hi": hi, "above": above,
            "resumable": resumable, "flag": flag, "metavar": metavar}
    return field(default=default, metadata=meta)


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


def _check_fields(obj: Any) -> None:
    """The per-field rules from the metadata: choices and bounds; messages name the key and value."""
    for f in fields(obj):
        meta, value = f.metadata, getattr(obj, f.name)
        if not meta or value is None:
            continue
        if meta["choices"] and value not in meta["choices"]:
            raise ConfigError(f"{f.name}: {value!r} is not one of {', '.join(map(str, meta['choices']))}")
        if meta["lo"] is not None and value < meta["lo"]:
            raise ConfigError(f"{f.name}: {value!r} is below the smallest allowed value, {meta['lo']:g}")
        if meta["above"] is not None and not value > meta["above"]:
            raise ConfigError(f"{f.name}: {value!r} must be above {meta['above']:g}")
        if meta["hi"] is not None and value > meta["hi"]:
            raise ConfigError(f"{f.name}: {value!r} is above the largest allowed value, {meta['hi']:g}")


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
        _check_fields(self)
        if self.preprocess == "resize_and_crop":
            _check(self.crop_size <= self.load_size,
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
    """The two networks. ``netG`` is ``unet_N`` with N a power of two >= 32; depth = log2 N."""

    netG: str = option("unet_256", "generator unet_N, N a power of two from 32 to 4096 (depth log2 N)")
    ngf: int = option(64, "generator base width", lo=1, hi=MAX_WIDTH)
    ndf: int = option(64, "discriminator base width", lo=1, hi=MAX_WIDTH)
    norm: str = option("batch", "normalisation layers", choices=NORMS)
    patch: int = option(70, "PatchGAN receptive field in pixels; 1 = PixelGAN", choices=tuple(PATCH_SIZES))
    input_nc: int = option(3, "input channels", choices=(1, 3))
    output_nc: int = option(3, "output channels", choices=(1, 3))
    dropout: float = option(0.5, "dropout in the three innermost decoder blocks", lo=0.0, hi=0.99)

    def __post_init__(self) -> None:
        _check_fields(self)
        self.depth  # validates netG

    @property
    def depth(self) -> int:
        """Number of stride-2 downsamplings in the U-Net (8 for unet_256)."""
        name = self.netG
        size = name[5:] if name.startswith("unet_") else ""
        ok = size.isdigit() and 32 <= int(size) <= 4096 and (int(size) & (int(size) - 1)) == 0
        _check(ok, f"netG: {name!r} is not unet_N with N a power of two from 32 to 4096 (unet_128, unet_256)")
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
    out: str = option("runs/pix2pix", "run folder for checkpoints, samples and logs", metavar="RUN_DIR")
    epochs: int = option(100, "epochs at the initial learning rate", lo=0, hi=1_000_000, resumable=True)
    epochs_decay: int = option(100, "further epochs while the learning rate decays", lo=0, hi=1_000_000,
                               resumable=True)
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
        _check_fields(self)
        _check(self.total_epochs > 0, "epochs + epochs_decay must be at least 1")
        _check(self.lambda_l1 > 0 or self.lambda_gan > 0, "lambda_l1 and lambda_gan cannot both be 0")
        size = self.data.image_size
        if size is not None:
            _check(size % self.model.multiple == 0,
                   f"{self.model.netG} needs image sides that are a multiple of {self.model.multiple}, "
                   f"but the training size is {size} (crop_size, or load_size with preprocess=resize)")

    @property
    def total_epochs(self) -> int:
        return self.epochs + self.epochs_decay

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


# ----- values from files: coerced by field type ------------------------------------------------
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def coerce(key: str, value: Any, hint: Any, source: str = "options") -> Any:
    """``value`` as the field's type (``int``, ``float``, ``str``, ``bool``, or ``X | None``).

    YAML reads ``2e-4`` as a string, so numeric strings are accepted; ``ten``, ``2.5`` for an
    integer or a list for a number are errors naming ``source``, ``key`` and ``value``.
    """
    args = typing.get_args(hint)
    if type(None) in args:
        if value is None:
            return None
        hint = next(a for a in args if a is not type(None))
    kind = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}[hint]

    def bad() -> ConfigError:
        return ConfigError(f"{source}: {key}: {value!r} is not {kind}")

    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        raise bad()
    if hint is str:
        if isinstance(value, str):
            return value
        raise bad()
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise bad()
    try:
        number = float(value) if isinstance(value, str) else value
    except ValueError:
        raise bad() from None
    if not math.isfinite(number):
        raise bad()
    if hint is int:
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                raise bad() from None
        if float(number).is_integer():
            return int(number)
        raise bad()
    return float(number)


def flatten(d: Mapping[str, Any], source: str = "options") -> dict[str, Any]:
    """A run's nested ``config.json`` ({"data": {...}, "model": {...}, ...}) as flat options."""
    if not isinstance(d, Mapping):
        raise ConfigError(f"{source}: the settings must be a mapping of option names to values")
    if "data" not in d and "model" not in d:
        return dict(d)
    flat: dict[str, Any] = {}
    for part in ("data", "model"):
        section = d.get(part, {})
        if not isinstance(section, Mapping):
            raise ConfigError(f"{source}: '{part}' must be a mapping of option names to values")
        flat.update(section)
    flat.update({k: v for k, v in d.items() if k not in ("data", "model")})
    return flat


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a JSON or YAML file of options (flat, or nested as in a run's config.json), checked:
    every key must be an option and every value must fit its type and range."""
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
        first = " ".join(str(e).split())[:200]
        raise ConfigError(f"config file {path} is not valid {path.suffix.lstrip('.').upper() or 'JSON'}: {first}") \
            from None
    flat = flatten(loaded if loaded is not None else {}, str(path))
    TrainConfig.from_flat(flat, source=str(path))  # every key, type and range checked now, naming the file
    specs = option_fields()
    return {k: v if k == "preset" else coerce(k, v, specs[k][2], str(path)) for k, v in flat.items()}


# ----- the paper's presets: overrides of the defaults -------------------------------------------
# The defaults are the paper's setting (appendix 6.2): unet_256, 70x70 PatchGAN, batch 1, 286 -> 256
# jitter, 100 + 100 epochs. A preset says only what differs for its dataset: the direction of the
# paper's headline task, and for the large sets the shorter schedule and batch 4.
PRESETS: dict[str, dict[str, Any]] = {
    "cityscapes": dict(direction="BtoA"),  # 2975 pairs, labels -> photo
    "facades": dict(direction="BtoA"),  # 400 pairs, labels -> facade
    "maps": dict(),  # 1096 pairs, aerial photo -> map: the defaults
    "edges2shoes": dict(epochs=8, epochs_decay=7, batch_size=4),  # 50k pairs, edges -> shoe, 15 epochs
    "edges2handbags": dict(epochs=8, epochs_decay=7, batch_size=4),  # 137k pairs, 15 epochs
    "night2day": dict(epochs=9, epochs_decay=8, batch_size=4),  # 17823 pairs, night -> day, 17 epochs
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


def source_and_target(direction: str, a: Any, b: Any) -> tuple[Any, Any]:
    """(model input, target) from a pair's sides A and B: the one place the direction is applied."""
    if direction not in DIRECTIONS:
        raise ConfigError(f"direction: {direction!r} is not one of {', '.join(DIRECTIONS)}")
    return (a, b) if direction == "AtoB" else (b, a)


def sides_of(direction: str, source: Any, target: Any) -> tuple[Any, Any]:
    """(side A, side B) from (model input, target): the inverse of :func:`source_and_target`."""
    return source_and_target(direction, source, target)  # a swap is its own inverse
