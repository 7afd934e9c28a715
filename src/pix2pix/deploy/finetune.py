"""Fine-tuning: ``pix2pix.train`` with ``init_from`` set opens that model here, because any model
kind may be named and opening them is this folder's job (``training/init.py`` says why).

    pix2pix train --init-from facades_label2photo --data datasets/my_facades --out runs/mine
    pix2pix train --init-from checkpoints/facades/latest_net_G.pth --data new/ --epochs 20 --epochs-decay 20

    cfg = pix2pix.TrainConfig.from_flat({"init_from": "runs/facades", "data_root": "new", "out": "runs/ft"})
    pix2pix.train(cfg)

The networks' shape comes from MODEL (``with_architecture``: options left at their defaults are
taken from it, others must agree); the generator starts from its weights, the discriminator too
when MODEL is a checkpoint of ours; optimisers, schedule and epoch count start fresh.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch.nn as nn

from ..config import TrainConfig
from ..errors import ConfigError
from ..training import loop
from ..training.init import InitialWeights, architecture_options, with_architecture
from .formats import kind_of, open_model


def initial_weights(model: str) -> InitialWeights:
    """MODEL's architecture and weights; exported programs (.onnx, .ts, .pt2) hold none to train."""
    program = kind_of(model) in ("torchscript", "torch-export", "onnx")  # refused unopened: may run code
    opened = None if program else open_model(model, "cpu")
    if opened is None or not isinstance(opened.generator, nn.Module):
        raise ConfigError(f"--init-from {model}: an exported {kind_of(model)} program has no trainable weights; "
                          "start from a run folder, checkpoint, .safetensors file, Hugging Face folder or "
                          "reference .pth")
    return InitialWeights(model, opened.config.model, opened.generator.state_dict(), opened.discriminator)


def train(cfg: TrainConfig, **kwargs: Any) -> Path:
    """``pix2pix.train``: :func:`pix2pix.training.train`, after opening ``cfg.init_from`` when it is set."""
    if not cfg.init_from:
        return loop.train(cfg, **kwargs)
    init = initial_weights(cfg.init_from)
    return loop.train(with_architecture(cfg, init), init=init, **kwargs)


def train_from_options(flat: Mapping[str, Any], **kwargs: Any) -> Path:
    """``pix2pix train``: flat options (preset, config file and flags, already layered) to a run.
    With ``init_from``, MODEL's architecture fills the options the user did not give, before the
    config is checked (so ``--crop-size 32`` with a unet_32 MODEL needs no ``--netG``)."""
    flat = dict(flat)
    if not flat.get("init_from"):
        return loop.train(TrainConfig.from_flat(flat), **kwargs)
    init = initial_weights(flat["init_from"])
    flat.update(architecture_options(init, flat))
    return loop.train(TrainConfig.from_flat(flat), init=init, **kwargs)


def auto_resume_from_options(flat: Mapping[str, Any], **kwargs: Any) -> Path:
    """``pix2pix train --auto-resume``: as :func:`train_from_options`, but a folder holding a
    checkpoint of the same settings is continued instead (``training.loop.auto_resume``). With
    ``init_from`` MODEL is opened either way, so the settings compared include its architecture."""
    flat = dict(flat)
    init = None
    if flat.get("init_from"):
        init = initial_weights(flat["init_from"])
        flat.update(architecture_options(init, flat))
    return loop.auto_resume(TrainConfig.from_flat(flat), init=init, **kwargs)
