"""The reference implementation's generator files (``*_net_G.pth``), with no options.

    pix2pix translate --checkpoint checkpoints/facades/latest_net_G.pth --input labels/ --output out/
    pix2pix.load("latest_net_G.pth")

Such a file is ``torch.save(net.state_dict())`` of the reference's ``UnetGenerator`` or
``ResnetGenerator`` and nothing else. It is opened with ``torch.load(weights_only=True)`` (no code
runs), its architecture is read from the tensors (``reference_keys.py``), and the weights are
renamed into our U-Net or ResNet, which compute the same function (to about 1e-9 in eval mode).
What a state dict cannot say is assumed, and each assumption is in :func:`assumed_config`:
the direction (AtoB: the model's input is whatever it was trained on), the training size (256), the
U-Net's dropout (on, where the reference puts it).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn as nn

from ...config import DataConfig, TrainConfig
from ...errors import CheckpointError
from ...models import build_generator
from ...training.checkpoint import load_weights
from .common import Opened, Source, first_line, stream
from .reference_keys import Layout, LayoutError, convert, infer_layout

ASSUMED_SIZE = 256  # the reference's default --crop_size


def read(source: Source, name: str, device: torch.device, direction: str = "AtoB") -> Opened:
    """The generator of a reference ``*_net_G.pth`` in eval mode, with the config it implies."""
    sd = load_state_dict(source, name)
    try:
        layout = infer_layout(sd)
    except LayoutError as e:
        raise CheckpointError(f"{name}: {e}") from None
    cfg = assumed_config(layout, direction)
    g = build_generator(cfg.model)
    load_weights(g, convert(sd, layout), "generator", name)
    meta: dict[str, Any] = {"mode": "eval", "dtype": "float32",
                            "source": {"file": Path(name).name, "format": "reference implementation state_dict",
                                       "architecture": layout.netG, "notes": list(layout.notes)}}
    return Opened(g.to(device).eval(), cfg, "reference", device, meta)


def load_state_dict(source: Source, name: str) -> dict[str, torch.Tensor]:
    """``torch.load(weights_only=True)``; anything but a flat name -> tensor mapping is one clear line."""
    try:
        obj = torch.load(stream(source), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:  # weights_only refused a class: a pickled model, not a state_dict
        raise CheckpointError(
            f"{name}: not a plain state_dict: it holds Python objects that a safe load refuses ({first_line(e)[:160]}); "
            "a whole pickled model can be re-saved with torch.save(net.state_dict(), path)") from None
    except Exception as e:  # truncated, not a torch file, ...
        raise CheckpointError(f"{name}: not a readable PyTorch file ({first_line(e)[:200]})") from None
    if isinstance(obj, nn.Module):
        raise CheckpointError(f"{name}: a whole nn.Module, not a state_dict; re-save it with "
                              "torch.save(net.state_dict(), path)")
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{name}: expected a state_dict (a mapping of names to tensors), got "
                              f"{'an empty one' if isinstance(obj, Mapping) else type(obj).__name__}")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        wrapped = any(isinstance(obj[k], Mapping) for k in bad)
        raise CheckpointError(f"{name}: not a plain state_dict{' (a training checkpoint that wraps one?)' if wrapped else ''}"
                              f": entries that are not tensors: {bad[:3]}")
    return dict(obj)


def assumed_config(layout: Layout, direction: str = "AtoB") -> TrainConfig:
    """The config a reference generator implies: its architecture from the tensors; the reference's
    defaults for what the file cannot say (trained at 256x256 after a 286 resize, or at one block
    of ``2 ** depth`` when that is larger; the given direction, AtoB unless known)."""
    model = layout.model_config()
    size = max(ASSUMED_SIZE, model.multiple)
    data = DataConfig(direction=direction, load_size=size * 286 // 256, crop_size=size)
    return TrainConfig(data=data, model=model)
