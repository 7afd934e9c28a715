"""The training checkpoint format: what a checkpoint holds, and reading one safely.

A checkpoint is a ``torch.save`` dict of tensors and plain values only, so it loads with
``torch.load(weights_only=True)``: a file from a stranger cannot run code. It holds::

    format, version, config (TrainConfig.to_dict()), generator, discriminator,
    opt_G, opt_D, scaler, epoch (completed), step, batch_in_epoch, skipped, rng, world_size

Where checkpoints live and how they are written (atomically) is the run folder's job
(:class:`~pix2pix.train.run_folder.RunFolder`).
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch

from ..config import TrainConfig
from ..errors import CheckpointError, Pix2PixError
from .run_folder import RunFolder

FORMAT = "pix2pix-checkpoint"
VERSION = 1
RESUME_KEYS = ("config", "generator", "discriminator", "opt_G", "opt_D", "epoch", "step", "batch_in_epoch")


def checkpoint_bytes(state: dict[str, Any]) -> bytes:
    """``state`` (see the module docstring) serialised with the format marker."""
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, **state}, buf)
    return buf.getvalue()


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A run folder means its ``latest.pt``; a file is taken as it is."""
    path = Path(path)
    if path.is_dir():
        run = RunFolder(path)
        if not run.has_checkpoint():
            raise CheckpointError(f"{path}: no {RunFolder.LATEST} in this run folder (has it finished an epoch yet?)")
        return run.latest
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file or run folder")
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu",
                    require: tuple[str, ...] = ()) -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``); errors name the file and the problem.

    ``require``: entries that must be present (a translator needs ``config`` and ``generator``, a
    resumed run all of :data:`RESUME_KEYS`).
    """
    file = resolve_checkpoint(path)
    try:
        state = torch.load(file, map_location=map_location, weights_only=True)
    except Exception as e:  # pickle errors, zip errors, truncated files, disallowed globals
        first = " ".join(str(e).split())[:300]
        raise CheckpointError(f"{file}: not a readable pix2pix checkpoint ({type(e).__name__}: {first})"
                              f"{_older_copies(file)}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{file}: not a pix2pix checkpoint (no '{FORMAT}' marker)")
    if state.get("version", 0) > VERSION:
        raise CheckpointError(f"{file}: written by a newer pix2pix (checkpoint version {state['version']})")
    missing = [k for k in require if k not in state]
    if missing:
        raise CheckpointError(f"{file}: incomplete checkpoint (no {', '.join(missing)})")
    return state


def _older_copies(file: Path) -> str:
    """A hint naming the newest numbered checkpoint when ``RUN/latest.pt`` itself is unreadable."""
    numbered = RunFolder(file.parent).numbered_checkpoints() if file.name == RunFolder.LATEST else []
    if not numbered:
        return ""
    return f"; the newest numbered checkpoint is {numbered[-1]}: copy it over {file} to continue from there"


def checkpoint_config(state: dict[str, Any], file: str | os.PathLike) -> TrainConfig:
    """The config stored in a checkpoint, checked as a config file is (types, ranges, unknown keys);
    a clear error naming the file if it does not fit this version of the code."""
    if "config" not in state:
        raise CheckpointError(f"{file}: incomplete checkpoint (no config)")
    try:
        return TrainConfig.from_dict(state["config"], source=str(file))
    except Pix2PixError as e:
        raise CheckpointError(f"{file}: the settings stored in this checkpoint cannot be used "
                              f"({str(e).removeprefix(f'{file}: ')})") from None


def load_weights(module: torch.nn.Module, weights: dict[str, torch.Tensor], what: str, file: Path | str) -> None:
    """``load_state_dict`` with a clear message when the architecture does not match."""
    try:
        module.load_state_dict(weights)
    except (RuntimeError, TypeError, AttributeError) as e:
        first = str(e).splitlines()[0] if str(e) else "shapes or keys differ"
        raise CheckpointError(
            f"{file}: the {what} weights do not fit the network built from its config ({first})"
        ) from None
