"""What a checkpoint saves of a run in progress, and putting it back: weights, optimisers, where
the run stands (:class:`Progress`) and each rank's random streams."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..config import TrainConfig
from ..errors import CheckpointError
from . import distributed as dist
from .checkpoint import load_weights
from .nets import Nets

log = logging.getLogger("pix2pix")


@dataclass
class Progress:
    epoch: int = 0  # completed epochs
    step: int = 0  # optimisation steps taken
    batch_in_epoch: int = 0  # batches of the current epoch already done (mid-epoch stop)
    skipped: int = 0  # non-finite steps skipped
    sample_in_epoch: int = 0  # global position in the epoch's shuffle: samples done by all ranks together


def training_state(cfg: TrainConfig, nets: Nets, progress: Progress, device: torch.device,
                   data_gen: torch.Generator) -> dict[str, Any]:
    """The checkpoint dict (see ``checkpoint.py``). A collective under DDP: every rank's random
    states are gathered, so every rank must call it."""
    rng = {"torch": torch.get_rng_state(), "data": data_gen.get_state().cpu()}
    if device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(device)
    return {
        "config": cfg.to_dict(),
        "generator": nets.G_plain.state_dict(),
        "discriminator": nets.D_plain.state_dict(),
        "opt_G": nets.opt_G.state_dict(),
        "opt_D": nets.opt_D.state_dict(),
        "scaler": nets.scaler.state_dict(),
        "epoch": progress.epoch,
        "step": progress.step,
        "batch_in_epoch": progress.batch_in_epoch,
        "skipped": progress.skipped,
        "sample_in_epoch": progress.sample_in_epoch,
        "rng": dist.gather_objects(rng),  # one entry per rank
        "world_size": dist.world_size(),
        "batch_size": cfg.batch_size,
    }


def restore_training_state(nets: Nets, state: dict[str, Any], file: Path) -> tuple[Progress, dict[str, Any] | None]:
    """Load weights and optimisers from ``state``; returns the progress and, for a mid-epoch
    checkpoint written by as many processes, this rank's random streams (else None)."""
    load_weights(nets.G_plain, state["generator"], "generator", file)
    load_weights(nets.D_plain, state["discriminator"], "discriminator", file)
    try:
        nets.opt_G.load_state_dict(state["opt_G"])
        nets.opt_D.load_state_dict(state["opt_D"])
        if state.get("scaler"):
            nets.scaler.load_state_dict(state["scaler"])
    except (KeyError, ValueError, RuntimeError, TypeError) as e:
        raise CheckpointError(f"{file}: the optimiser state does not fit the networks ({e})") from None
    old_world = int(state.get("world_size") or 1)
    batch = int(state.get("batch_size") or (state.get("config") or {}).get("batch_size") or 1)
    # checkpoints from before the global position was saved: every rank had done batch_in_epoch batches
    position = state.get("sample_in_epoch", state["batch_in_epoch"] * batch * old_world)
    progress = Progress(state["epoch"], state["step"], state["batch_in_epoch"], state.get("skipped", 0), position)
    rngs = state.get("rng") or []
    if old_world != dist.world_size() and dist.rank() == 0:
        log.warning("%s was written by %d process%s, resumed on %d: training continues at the same sample of "
                    "epoch %d, with a global batch of %d x %d instead of %d x %d (--lr is unchanged)", file,
                    old_world, "" if old_world == 1 else "es", dist.world_size(), state["epoch"] + 1,
                    dist.world_size(), batch, old_world, batch)
    if state.get("batch_in_epoch") and old_world == dist.world_size() and rngs:
        return progress, rngs[dist.rank()]
    if state.get("batch_in_epoch") and dist.rank() == 0:
        log.warning("resuming mid-epoch with a different number of processes: the rest of this epoch "
                    "uses fresh random numbers")
    return progress, None


def all_finite(*modules: nn.Module) -> bool:
    """True when every parameter and buffer is finite (one host sync)."""
    flags = [torch.isfinite(t).all() for m in modules for t in (*m.parameters(), *m.buffers()) if t.is_floating_point()]
    return bool(torch.stack(flags).all()) if flags else True
