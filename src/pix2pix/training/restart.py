"""Where a resumed run starts: its checkpoint read and checked against the options asked for, for
``--resume RUN`` and ``--auto-resume`` (which makes ``torchrun --max-restarts`` work: a restarted job
finds its own ``latest.pt`` in ``--out`` and continues from it)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import TrainConfig, resumable_options
from ..data.download import sha256_file
from ..errors import ConfigError
from . import distributed as dist
from .checkpoint import RESUME_KEYS, checkpoint_config, load_checkpoint
from .run_folder import RunFolder
from .schedule import continue_schedule, lr_factor

log = logging.getLogger("pix2pix")


@dataclass
class ResumePoint:
    state: dict[str, Any]  # the checkpoint
    cfg: TrainConfig  # its config with the allowed overrides applied
    digest: str  # SHA-256 of latest.pt: every DDP rank must have read the same file
    finished: bool  # all epochs done already


def resume_point(run: RunFolder, overrides: dict[str, Any] | None = None, *, auto: bool = False) -> ResumePoint:
    """Read ``run``'s checkpoint and apply ``overrides``, which may change only the resumable
    options. With ``auto`` (``--auto-resume``), ``overrides`` are all the options of the command and
    a difference in another option is refused with one line naming each option and both values."""
    state = load_checkpoint(run.path, map_location="cpu", require=RESUME_KEYS)
    digest = sha256_file(run.latest)
    cfg = checkpoint_config(state, run.latest)
    overrides = {k: v for k, v in (overrides or {}).items() if k != "out"}
    allowed = resumable_options()
    current = cfg.to_flat()
    bad = sorted(k for k, v in overrides.items() if k not in allowed and current.get(k) != v)
    if bad and auto:
        raise ConfigError(f"--auto-resume: {run.path} holds a run with other settings ("
                          + ", ".join(f"{k} {current.get(k)!r} there, {overrides[k]!r} here" for k in bad)
                          + "); give the same settings to continue it, or another --out")
    if bad:
        raise ConfigError(f"cannot change {', '.join(bad)} when resuming {run.path}; "
                          f"only {', '.join(sorted(allowed))} may change")
    asked = TrainConfig.from_flat({**overrides, "out": str(run.path)}, base=cfg)
    cfg = continue_schedule(cfg, asked, state["epoch"])  # a finished schedule is extended, not re-planned
    if cfg != asked and dist.rank() == 0:
        log.info("%s finished its %d + %d epoch schedule: %d more epochs at its final learning rate, %.3g "
                 "(extra_epochs %d; README: 'Extending a run')", run.path, cfg.epochs, cfg.epochs_decay,
                 cfg.total_epochs - state["epoch"], cfg.lr * lr_factor(cfg, cfg.total_epochs - 1), cfg.extra_epochs)
    finished = state["epoch"] >= cfg.total_epochs
    if finished and not auto:
        raise ConfigError(f"{run.path} already finished {state['epoch']} of {cfg.total_epochs} epochs; "
                          f"pass a larger --epochs (or --extra-epochs) to extend it")
    return ResumePoint(state, cfg, digest, finished)


def session_settings(run: RunFolder, overrides: dict[str, Any] | None) -> tuple[str, float]:
    """(device, dist_timeout) to join the process group with before the checkpoint is read: the
    options given, else the run's config.json, else the defaults."""
    try:
        saved = json.loads(run.config.read_text())
    except (OSError, ValueError):
        saved = {}
    saved = saved if isinstance(saved, dict) else {}
    overrides = overrides or {}
    defaults = TrainConfig()
    device = overrides.get("device", saved.get("device", defaults.device))
    timeout = overrides.get("dist_timeout", saved.get("dist_timeout", defaults.dist_timeout))
    return str(device), float(timeout) if isinstance(timeout, (int, float)) else defaults.dist_timeout
