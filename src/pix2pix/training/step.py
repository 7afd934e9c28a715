"""The pix2pix training step (paper section 3.3): one update of D, then one of G, on a batch.

    losses = train_step(nets, src, tgt, Objective.of(cfg))     # detached losses, no host sync

D learns to tell real pairs (x, y) from generated pairs (x, G(x)); its loss is halved, as in the
paper, to slow it relative to G. G then learns to fool the updated D and to stay close to the
target: ``lambda_gan * L_cGAN + lambda_l1 * L_L1``. What is not the paper's equations lives around
the step: the grad scaler (fp16) in :func:`_backward_and_step`, ``--skip-nonfinite`` in
:class:`NonFiniteGuard`, and L1 alone (``lambda_gan = 0``) as ``Objective.adversarial``.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
import torch.nn as nn

from ..devices import autocast
from . import distributed as dist
from .losses import Objective, discriminator_losses, generator_adversarial_loss, l1_loss
from .nets import Nets

LOSS_NAMES = ("G_gan", "G_L1", "D_real", "D_fake")


def train_step(nets: Nets, src: torch.Tensor, tgt: torch.Tensor, objective: Objective,
               guard: "NonFiniteGuard | None" = None) -> dict[str, torch.Tensor]:
    """One step of D, then one of G. ``src`` (B, input_nc, H, W), ``tgt`` (B, output_nc, H, W):
    floats in [-1, 1] on ``nets.device``. Returns the detached losses of :data:`LOSS_NAMES` and
    ``skipped`` (1 when ``guard`` refused the batch, else 0)."""
    zero = torch.zeros((), device=src.device)
    if guard is not None:
        guard.begin()
    with autocast(nets.device, nets.precision):
        fake = nets.G(src)  # G(x)

    d_real = d_fake = zero
    if objective.adversarial:
        with autocast(nets.device, nets.precision):
            # D: log D(x, y) + log(1 - D(x, G(x))); G(x) detached, so no gradient reaches G.
            d_real, d_fake = discriminator_losses(objective.gan_loss, nets.D(pair(src, tgt)),
                                                  nets.D(pair(src, fake.detach())))
            loss_D = 0.5 * (d_real + d_fake)
        if not _backward_and_step(nets, nets.opt_D, loss_D, guard):
            return guard.skip(zero)  # type: ignore[union-attr]  (only a guard refuses)

    with frozen(nets.D_for_G):  # G's step: D is a fixed judge, its parameters get no gradient
        with autocast(nets.device, nets.precision):
            g_gan = (generator_adversarial_loss(objective.gan_loss, nets.D_for_G(pair(src, fake)))
                     if objective.adversarial else zero)
            g_l1 = l1_loss(fake.float(), tgt)
            loss_G = objective.lambda_gan * g_gan + objective.lambda_l1 * g_l1
        stepped_G = _backward_and_step(nets, nets.opt_G, loss_G, guard)
    if stepped_G or objective.adversarial:
        nets.scaler.update()  # once per step, after every optimiser step of it
    if not stepped_G:
        return guard.skip(zero)  # type: ignore[union-attr]
    return {"G_gan": g_gan.detach().float(), "G_L1": g_l1.detach(), "D_real": d_real.detach().float(),
            "D_fake": d_fake.detach().float(), "skipped": zero}


def pair(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The conditional GAN's input to D: condition and image side by side along channels."""
    return torch.cat([x, y], dim=1)


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """``module``'s parameters take no gradient inside the block."""
    module.requires_grad_(False)
    try:
        yield
    finally:
        module.requires_grad_(True)


def _backward_and_step(nets: Nets, opt: torch.optim.Optimizer, loss: torch.Tensor,
                       guard: "NonFiniteGuard | None") -> bool:
    """Backward and one optimiser step (through the grad scaler, a no-op unless fp16); False, with
    nothing changed, when ``guard`` finds ``loss`` non-finite."""
    opt.zero_grad(set_to_none=True)
    if guard is not None and not guard.finite(loss):
        return False
    nets.scaler.scale(loss).backward()
    nets.scaler.step(opt)
    return True


class NonFiniteGuard:
    """``--skip-nonfinite``: a batch whose D loss is NaN/inf updates neither network, and one whose
    G loss is NaN/inf does not update G (D's update, made first, stays). Either way both networks'
    batch-norm running statistics are restored, and the step reports ``skipped`` = 1 and zero
    losses, so the logged means cover only the batches that were used. It costs a host sync per
    loss and a copy of the buffers per step."""

    def __init__(self, *modules: nn.Module):
        self.buffers = [b for m in modules for b in m.buffers()]
        self.saved: list[torch.Tensor] = []

    def begin(self) -> None:
        self.saved = [b.detach().clone() for b in self.buffers]  # a NaN batch must not poison them

    def finite(self, loss: torch.Tensor) -> bool:
        """Under DDP, agreed: a batch that is non-finite on any rank is skipped on every rank (a
        rank that skipped alone would never join the gradient all-reduce the others wait in)."""
        return not dist.any_true(~torch.isfinite(loss))

    @torch.no_grad()
    def skip(self, zero: torch.Tensor) -> dict[str, torch.Tensor]:
        for b, old in zip(self.buffers, self.saved):
            b.copy_(old)
        return {**{k: zero for k in LOSS_NAMES}, "skipped": zero + 1}
