"""The command line's options for config fields, generated from the config dataclasses.

Each field of ``DataConfig`` / ``ModelConfig`` / ``TrainConfig`` becomes one option: its name
(``--crop-size`` for ``crop_size``, or the field's ``flag``), type, choices, default and help come
from the field and its metadata (``config.option``), so an option is declared exactly once. An
option the user does not type leaves no attribute (``argparse.SUPPRESS``), so presets and config
files are not overridden by defaults.
"""

from __future__ import annotations

import argparse
import typing
from dataclasses import MISSING, dataclass
from typing import Any, Callable, Collection

from ..config import PRESETS, option_fields

GROUP_TITLES = {"data": "data", "model": "model", "train": "training"}
# the flags of the commands that run a model (translate, evaluate, serve)
PAPER_SAMPLING_HELP = "the paper's test-time sampling: dropout on, each image normalised by its own statistics"
SEED_HELP = ("with --paper-sampling: draw each image's dropout noise from this seed and the image's position "
             "(same outputs at any batch size; needs the weights, not an exported program)")


@dataclass(frozen=True)
class Command:
    """One ``pix2pix NAME``: its options, what it runs, and the example ending its help."""

    name: str
    add_args: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    summary: str
    example: str


def flag_of(name: str) -> str:
    """The command-line spelling of a config field: its ``flag``, or ``--name-with-dashes``."""
    section, f, hint = option_fields()[name]
    if f.metadata.get("flag"):
        return f.metadata["flag"]
    stem = name.replace("_", "-")
    return f"--no-{stem}" if hint is bool and f.default is True else f"--{stem}"


def add_config_options(parser: argparse.ArgumentParser, only: Collection[str] | None = None,
                       resume_note: bool = False) -> None:
    """One option per config field (``only``: these field names), grouped by section."""
    groups: dict[str, Any] = {}  # section -> argument group
    for name, (section, f, hint) in option_fields().items():
        if only is not None and name not in only:
            continue
        group = groups.get(section) or groups.setdefault(section, parser.add_argument_group(GROUP_TITLES[section]))
        meta = f.metadata
        default = f.default if f.default is not MISSING else None
        text = meta["help"]
        kwargs: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS}
        if hint is bool:
            kwargs.update(action="store_const", const=not default)
            text = f"turn off: {text} (on by default)" if default else text
        else:
            inner = next((a for a in typing.get_args(hint) if a is not type(None)), hint)
            kwargs["type"] = inner
            if meta.get("choices"):
                kwargs["choices"] = meta["choices"]
            if meta.get("metavar") or not meta.get("choices"):
                kwargs["metavar"] = meta.get("metavar") or {int: "N", float: "X", str: "TEXT"}[inner]
            if default not in (None, ""):
                text += f" ({default})"
        if resume_note and meta.get("resumable"):
            text += "; may change with --resume"
        group.add_argument(flag_of(name), help=text.replace("%", "%%"), **kwargs)


def add_preset_and_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=list(PRESETS), default=argparse.SUPPRESS,
                        help="the paper's settings for a dataset (overrides of the defaults); explicit options "
                             "override it")
    parser.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                        help="JSON or YAML file of options (checked by type); explicit options override it")


def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The options the user typed that are config fields."""
    names = option_fields()
    return {k: v for k, v in vars(args).items() if k in names}


def build_train_options(args: argparse.Namespace) -> dict[str, Any]:
    """The flat options: defaults < --preset < --config file < explicit options."""
    from ..config import preset_and_file

    flat = preset_and_file(getattr(args, "preset", None), getattr(args, "config", None))
    flat.update(config_overrides(args))
    return flat


def build_train_config(args: argparse.Namespace):
    """defaults < --preset < --config file < explicit options, as a checked TrainConfig."""
    from ..config import TrainConfig

    return TrainConfig.from_flat(build_train_options(args))
