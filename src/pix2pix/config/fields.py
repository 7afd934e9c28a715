"""How an option is declared (:func:`option`), checked (:func:`check_fields`) and read from a
file (:func:`coerce`, :func:`flatten`): the machinery behind the config dataclasses."""

from __future__ import annotations

import math
import typing
from dataclasses import field, fields
from typing import Any, Mapping, Sequence

from ..errors import ConfigError

DIRECTIONS = ("AtoB", "BtoA")
PREPROCESS_MODES = ("resize_and_crop", "resize", "crop", "none")
NORMS = ("batch", "instance", "none")
GAN_LOSSES = ("vanilla", "lsgan", "hinge")
LR_POLICIES = ("linear", "step", "cosine")
DROPOUT_PLACEMENTS = ("paper", "reference")
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


def require(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


def check_fields(obj: Any) -> None:
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
