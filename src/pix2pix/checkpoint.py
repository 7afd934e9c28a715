"""Checkpoints: atomic save and safe load of the full training state.

A checkpoint is a ``torch.save`` dict of tensors and plain values only, so it loads with
``torch.load(weights_only=True)``: a file from a stranger cannot run code. It holds::

    format, version, config (TrainConfig.to_dict()), generator, discriminator,
    opt_G, opt_D, scaler, epoch (completed), step, batch_in_epoch, rng {torch, cuda, data}

Writes go to a temporary file in the same folder, are flushed to disk, then renamed over the
destination: a run killed at any moment leaves either the old file or the new one, never half.
A run folder's checkpoint is ``RUN/latest.pt``; numbered copies live in ``RUN/checkpoints/``.

Run-folder helpers live here too: the writability and free-space checks made before training
starts, and the clean-up a resumed run does (stale temporary files, loss-log lines from steps the
checkpoint does not include).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

import torch

from .errors import CheckpointError, OutputError, Pix2PixError
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


RESUME_KEYS = ("config", "generator", "discriminator", "opt_G", "opt_D", "epoch", "step", "batch_in_epoch")


def _older_copies(file: Path) -> str:
    """A hint naming the newest numbered checkpoint when ``RUN/latest.pt`` itself is unreadable."""
    numbered = sorted((file.parent / "checkpoints").glob("epoch_*.pt")) if file.name == LATEST else []
    if not numbered:
        return ""
    return f"; the newest numbered checkpoint is {numbered[-1]}: copy it over {file} to continue from there"


def checkpoint_config(state: dict[str, Any], file: str | os.PathLike):
    """The :class:`~pix2pix.config.TrainConfig` stored in a checkpoint; a clear error if it does not fit
    this version of the code."""
    from .config import TrainConfig

    try:
        return TrainConfig.from_dict(state["config"])
    except (Pix2PixError, KeyError, TypeError, ValueError, AttributeError) as e:
        raise CheckpointError(f"{file}: the settings stored in this checkpoint cannot be used ({e})") from None


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
        try:
            atomic_write_bytes(dst, src.read_bytes())
        except OSError as e:
            raise CheckpointError(f"could not write checkpoint {dst}: {e.strerror or e}; {src} is complete") from None


def parameter_bytes(*modules: torch.nn.Module) -> int:
    """Bytes of parameters and buffers: about a third of a checkpoint (weights + two Adam moments)."""
    return sum(t.numel() * t.element_size() for m in modules for t in (*m.parameters(), *m.buffers()))


def check_free_space(run_dir: Path, checkpoint_bytes: int, numbered: int) -> None:
    """Refuse to start when the run folder cannot hold even one checkpoint; warn when it cannot hold
    the ``numbered`` copies this run will keep (plus latest.pt and the one being written)."""
    try:
        free = shutil.disk_usage(run_dir).free
    except OSError:
        return  # unknown: the first write will tell
    need_now = int(checkpoint_bytes * 1.1) + (16 << 20)  # one checkpoint, samples and logs
    if free < need_now:
        raise CheckpointError(
            f"run folder {run_dir} has {free / 2**20:.0f} MB free, but needs at least {need_now / 2**20:.0f} MB "
            f"(a checkpoint of about {checkpoint_bytes / 2**20:.0f} MB, samples and logs); free some space or "
            "choose another --out")
    need_all = checkpoint_bytes * (numbered + 2)
    if free < need_all:
        import logging

        logging.getLogger("pix2pix").warning(
            "run folder %s has %.1f GB free; this run keeps %d numbered checkpoints of about %.2f GB each "
            "(%.1f GB with latest.pt): it will stop with an error when the disk is full (raise --save-every "
            "to keep fewer)", run_dir, free / 2**30, numbered, checkpoint_bytes / 2**30, need_all / 2**30)


@contextlib.contextmanager
def run_folder_write(path: Path, run_dir: Path) -> Iterator[None]:
    """Turn a failed write of a log or sample file into one clear error that says the checkpoint is safe."""
    try:
        yield
    except OSError as e:
        latest = run_dir / LATEST
        kept = f"the last checkpoint {latest} is complete" if latest.exists() else "no checkpoint was written yet"
        raise OutputError(f"could not write {path}: {e.strerror or e}; {kept}") from None


def trim_loss_log(path: Path, step: int) -> int:
    """Keep the whole lines of ``losses.jsonl`` up to ``step`` (the checkpoint being resumed).

    A run killed after its last checkpoint logged steps the resumed run will do again, and may have
    left half a line. Returns the number of lines dropped; the file is rewritten atomically.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return 0
    keep, dropped = [], 0
    for line in raw.split(b"\n"):
        if not line.strip():
            continue
        try:
            ok = int(json.loads(line)["step"]) <= step
        except (ValueError, KeyError, TypeError):
            ok = False  # a line cut short by the crash
        if ok:
            keep.append(line + b"\n")
        else:
            dropped += 1
    if dropped:
        atomic_write_bytes(path, b"".join(keep))
    return dropped
