"""The networks a run trains, with their optimisers and grad scaler, placed and wrapped for this
process: DDP under torchrun, ``torch.compile`` when asked for (falling back to eager)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from ..config import TrainConfig
from ..devices import resolve_precision
from ..models import build_discriminator, build_generator
from . import distributed as dist

log = logging.getLogger("pix2pix")


@dataclass
class Nets:
    """The networks and their optimisers. ``G``/``D`` may be compiled or DDP-wrapped;
    ``G_plain``/``D_plain`` are the bare modules that are saved and used outside the step."""

    G: nn.Module
    D: nn.Module
    G_plain: nn.Module
    D_plain: nn.Module
    D_for_G: nn.Module  # D as the generator's step calls it: no DDP gradient sync
    opt_G: torch.optim.Optimizer
    opt_D: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    device: torch.device
    precision: str


def build_nets(cfg: TrainConfig, device: torch.device) -> Nets:
    """Networks, optimisers and grad scaler, placed and wrapped for this process."""
    torch.manual_seed(cfg.seed)  # identical initial weights for a given seed
    G, D = build_generator(cfg.model).to(device), build_discriminator(cfg.model).to(device)
    if cfg.channels_last:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    precision = resolve_precision(cfg.precision, device)
    opt_kw: dict[str, Any] = dict(lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    opt_kw.update(_fast_adam_flags(device))
    opt_G = torch.optim.Adam(G.parameters(), **opt_kw)
    opt_D = torch.optim.Adam(D.parameters(), **opt_kw)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    G_run, D_run, D_for_G = G, D, D
    if dist.world_size() > 1:
        G_run, D_run = dist.wrap(G, device, cfg.sync_bn), dist.wrap(D, device, cfg.sync_bn)
        G, D = G_run.module, D_run.module  # SyncBN conversion happens inside wrap
        D_for_G = D
    if cfg.compile and _compiler_works(device):
        G_run, D_run, D_for_G = torch.compile(G_run), torch.compile(D_run), torch.compile(D_for_G)
    return Nets(G_run, D_run, G, D, D_for_G, opt_G, opt_D, scaler, device, precision)


def parameter_bytes(*modules: nn.Module) -> int:
    """Bytes of parameters and buffers: about a third of a checkpoint (weights + two Adam moments)."""
    return sum(t.numel() * t.element_size() for m in modules for t in (*m.parameters(), *m.buffers()))


def _fast_adam_flags(device: torch.device) -> dict[str, bool]:
    """Fused Adam (one kernel for all parameters) where this torch supports it on the device."""
    try:
        torch.optim.Adam([torch.zeros(1, device=device, requires_grad=True)], fused=True)
        return {"fused": True}
    except (RuntimeError, TypeError, ValueError):
        return {"foreach": device.type != "cpu"}


def _compiler_works(device: torch.device) -> bool:
    """torch.compile needs a working C/C++ (CPU) or Triton (GPU) toolchain; fall back to eager if not."""
    try:
        torch.compile(lambda x: x * 2 + 1)(torch.ones(4, device=device))
        return True
    except Exception as e:  # missing compiler, unsupported platform, ...
        log.warning("--compile: torch.compile is not usable here (%s: %s); training eagerly",
                    type(e).__name__, str(e).splitlines()[0] if str(e) else "")
        return False
