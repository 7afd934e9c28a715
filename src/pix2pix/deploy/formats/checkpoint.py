"""Our training checkpoints (a run folder means its ``latest.pt``): the generator rebuilt as a module.

Reading only: checkpoints are written by training (``training/checkpoint.py``)."""

from __future__ import annotations

from pathlib import Path

import torch

from ...errors import CheckpointError, ConfigError
from ...models import build_generator
from ...models.size import check_fits
from ...training.checkpoint import checkpoint_config, load_checkpoint, load_weights, resolve_checkpoint
from .common import Opened, Source


def read(source: Source, name: str, device: torch.device) -> Opened:
    if isinstance(source, bytes):
        raise TypeError("training checkpoints are read from files")
    path = Path(source)
    state = load_checkpoint(path, map_location="cpu", require=("config", "generator"))
    file = resolve_checkpoint(path)
    cfg = checkpoint_config(state, file)
    try:
        check_fits(cfg.model, device, training=False, source=str(file))
    except ConfigError as e:
        raise CheckpointError(str(e)) from None
    g = build_generator(cfg.model)
    load_weights(g, state["generator"], "generator", file)
    meta = {"mode": "eval", "dtype": "float32",
            "source": {"file": file.name, "epoch": state.get("epoch"), "step": state.get("step")}}
    return Opened(g.to(device), cfg, "checkpoint", device, meta, discriminator=state.get("discriminator"))
