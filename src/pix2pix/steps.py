"""The pix2pix training step (paper section 3.3) and what it is made of.

:func:`train_step` runs one update of D, then one of G, on a batch, exactly as the paper writes it;
:func:`build_nets` makes the networks, optimisers and grad scaler it works on (:class:`Nets`), placed,
wrapped for DDP and optionally compiled for this process. :func:`lr_factor` is the learning-rate
schedule and ``_seed`` the per-epoch seeds. The epoch loop that drives these lives in ``training.py``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from . import distributed as dist
from .config import TrainConfig
from .devices import autocast, resolve_precision
from .errors import Pix2PixError
from .losses import discriminator_losses, generator_adversarial_loss, l1_loss
from .models import build_discriminator, build_generator

log = logging.getLogger("pix2pix")
LOSS_NAMES = ("G_gan", "G_L1", "D_real", "D_fake")


class NonFiniteLoss(Pix2PixError):
    """A loss became NaN or infinite; the message names the step and the last good checkpoint."""


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


def train_step(nets: Nets, src: torch.Tensor, tgt: torch.Tensor, gan_loss: str, lambda_l1: float,
               skip_nonfinite: bool = False, lambda_gan: float = 1.0) -> dict[str, torch.Tensor]:
    """One step of D, then one of G, on a batch; returns the detached losses (no host sync).

    src: (B, input_nc, H, W), tgt: (B, output_nc, H, W), floats in [-1, 1] on ``nets.device``.
    With ``skip_nonfinite`` (this costs a sync and a copy of the batch-norm statistics) a batch whose
    D loss is NaN/inf updates neither network, and one whose G loss is NaN/inf does not update G
    (D's update, made first, stays); either way both networks' running statistics are restored, the
    returned dict has ``skipped`` = 1 and zeros for the losses, so the logged means cover the batches
    that were used. ``lambda_gan`` = 0 trains G with L1 alone (the paper's ablation): D is then
    neither run nor updated, and its losses are reported as 0.
    """
    zero = torch.zeros((), device=src.device)
    skip = stepped = False
    buffers = [*nets.G_plain.buffers(), *nets.D_plain.buffers()] if skip_nonfinite else []
    saved = [b.detach().clone() for b in buffers]  # a NaN batch must not poison the running statistics
    with autocast(nets.device, nets.precision):
        fake = nets.G(src)  # G(x)
    d_real = d_fake = zero
    if lambda_gan > 0:
        with autocast(nets.device, nets.precision):
            # D: maximise log D(x, y) + log(1 - D(x, G(x))); G(x) detached so no gradient reaches G.
            logits_real = nets.D(torch.cat([src, tgt], dim=1))
            logits_fake = nets.D(torch.cat([src, fake.detach()], dim=1))
            d_real, d_fake = discriminator_losses(gan_loss, logits_real, logits_fake)
            loss_D = 0.5 * (d_real + d_fake)  # halved, as in the paper, to slow D relative to G
        nets.opt_D.zero_grad(set_to_none=True)
        skip = skip_nonfinite and not bool(torch.isfinite(loss_D))
        if not skip:
            nets.scaler.scale(loss_D).backward()
            nets.scaler.step(nets.opt_D)
            stepped = True

    # G: fool the updated D and stay close to the target: L_cGAN + lambda * L_L1.
    nets.D_for_G.requires_grad_(False)
    with autocast(nets.device, nets.precision):
        g_gan = generator_adversarial_loss(gan_loss, nets.D_for_G(torch.cat([src, fake], dim=1))) \
            if lambda_gan > 0 else zero
        g_l1 = l1_loss(fake.float(), tgt)
        loss_G = lambda_gan * g_gan + lambda_l1 * g_l1
    nets.opt_G.zero_grad(set_to_none=True)
    skip = skip or (skip_nonfinite and not bool(torch.isfinite(loss_G)))
    if not skip:
        nets.scaler.scale(loss_G).backward()
        nets.scaler.step(nets.opt_G)
        stepped = True
    nets.D_for_G.requires_grad_(True)
    if stepped:
        nets.scaler.update()
    if skip:
        with torch.no_grad():
            for b, old in zip(buffers, saved):
                b.copy_(old)
        return {"G_gan": zero, "G_L1": zero, "D_real": zero, "D_fake": zero, "skipped": zero + 1}
    return {"G_gan": g_gan.detach().float(), "G_L1": g_l1.detach(), "D_real": d_real.detach().float(),
            "D_fake": d_fake.detach().float(), "skipped": zero}


def lr_factor(cfg: TrainConfig, epoch: int) -> float:
    """Learning-rate multiplier for 0-based ``epoch``.

    linear: 1 for ``epochs`` epochs, then falls linearly over ``epochs_decay`` epochs towards 0
    (the last epoch runs at 1 / (epochs_decay + 1), as in the reference). step: x0.1 every
    ``lr_step`` epochs. cosine: half a cosine from 1 to 0 over all epochs.
    """
    if cfg.lr_policy == "linear":
        return 1.0 - max(0, epoch + 1 - cfg.epochs) / float(cfg.epochs_decay + 1)
    if cfg.lr_policy == "step":
        return 0.1 ** (epoch // cfg.lr_step)
    return 0.5 * (1.0 + math.cos(math.pi * epoch / cfg.total_epochs))


def _seed(cfg: TrainConfig, *parts: int) -> int:
    """A 63-bit seed derived from the run's seed and e.g. (epoch, rank), so each epoch's
    randomness can be recreated without replaying earlier epochs."""
    h = cfg.seed & 0xFFFFFFFF
    for p in parts:
        h = (h * 1_000_003 + p + 0x9E3779B9) & 0x7FFFFFFFFFFFFFFF
    return h


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


__all__ = ["LOSS_NAMES", "NonFiniteLoss", "Nets", "train_step", "lr_factor", "build_nets"]
