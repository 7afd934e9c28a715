"""Checkpoints: atomic save and safe load of the full training state.

A checkpoint is a ``torch.save`` dict of tensors and plain values only, so it loads with
``torch.load(weights_only=True)``: a file from a stranger cannot run code. It holds::

    format, version, config (TrainConfig.to_dict()), generator, discriminator,
    opt_G, opt_D, scaler, epoch (completed), step, batch_in_epoch, rng {torch, cuda, data}

Writes go to a temporary file in the same folder, are flushed to disk, then renamed over the
destination: a run killed at any moment leaves either the old file or the new one, never half.
A run folder's checkpoint is ``RUN/latest.pt``; numbered copies live in ``RUN/checkpoints/``.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch

from .errors import CheckpointError
from .fileio import atomic_write_bytes, remove_stale_temporaries

FORMAT = "pix2pix-checkpoint"
VERSION = 1
LATEST = "latest.pt"


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Atomically write ``state`` (see module docstring) to ``path``."""
    path = Path(path)
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, **state}, buf)
    try:
        atomic_write_bytes(path, buf.getvalue())
    except OSError as e:
        raise CheckpointError(
            f"could not write checkpoint {path}: {e.strerror or e}; the previous checkpoint is unchanged"
        ) from None
    return path


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A run folder means its ``latest.pt``; a file is taken as it is."""
    path = Path(path)
    if path.is_dir():
        latest = path / LATEST
        if not latest.is_file():
            raise CheckpointError(f"{path}: no {LATEST} in this run folder (has it finished an epoch yet?)")
        return latest
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file or run folder")
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``); errors name the file and the problem."""
    file = resolve_checkpoint(path)
    try:
        state = torch.load(file, map_location=map_location, weights_only=True)
    except Exception as e:  # pickle errors, zip errors, truncated files, disallowed globals
        raise CheckpointError(f"{file}: not a readable pix2pix checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{file}: not a pix2pix checkpoint (no '{FORMAT}' marker)")
    if state.get("version", 0) > VERSION:
        raise CheckpointError(f"{file}: written by a newer pix2pix (checkpoint version {state['version']})")
    return state


def load_weights(module: torch.nn.Module, weights: dict[str, torch.Tensor], what: str, file: Path | str) -> None:
    """``load_state_dict`` with a clear message when the architecture does not match."""
    try:
        module.load_state_dict(weights)
    except RuntimeError as e:
        first = str(e).splitlines()[0] if str(e) else "shapes or keys differ"
        raise CheckpointError(
            f"{file}: the {what} weights do not fit the network built from its config ({first})"
        ) from None


def prepare_run_dir(run_dir: Path) -> None:
    """Create the run folder and check it is writable before any work is done."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as e:
        raise CheckpointError(f"run folder {run_dir} is not writable: {e.strerror or e}") from None
    remove_stale_temporaries(run_dir)
    if (run_dir / "checkpoints").is_dir():
        remove_stale_temporaries(run_dir / "checkpoints")


def link_or_copy(src: Path, dst: Path) -> None:
    """Keep a numbered checkpoint: a hard link to latest.pt (no second write) where possible."""
    tmp = dst.with_name(f".{dst.name}.link.tmp")
    try:
        if tmp.exists():
            tmp.unlink()
        os.link(src, tmp)
        os.replace(tmp, dst)
    except OSError:
        atomic_write_bytes(dst, src.read_bytes())
