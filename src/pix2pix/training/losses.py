"""The pix2pix objective (paper eq. 4): G* = arg min_G max_D L_cGAN(G, D) + lambda * L_L1(G).

Adversarial variants, all on the discriminator's raw logits:

- ``vanilla``: binary cross-entropy (the paper's log D(x, y) + log(1 - D(x, G(x))), with the
  non-saturating generator loss -log D(x, G(x)));
- ``lsgan``: least squares against targets 1 (real) and 0 (fake);
- ``hinge``: D: relu(1 - real) + relu(1 + fake); G: -fake.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..config import GAN_LOSSES, TrainConfig


def discriminator_losses(kind: str, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss on real pairs, loss on fake pairs); the caller halves their sum as in the paper."""
    if kind == "vanilla":
        return (F.binary_cross_entropy_with_logits(real, torch.ones_like(real)),
                F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
    if kind == "lsgan":
        return F.mse_loss(real, torch.ones_like(real)), F.mse_loss(fake, torch.zeros_like(fake))
    if kind == "hinge":
        return F.relu(1.0 - real).mean(), F.relu(1.0 + fake).mean()
    raise ValueError(f"unknown GAN loss {kind!r}")


def generator_adversarial_loss(kind: str, fake: torch.Tensor) -> torch.Tensor:
    """The generator's adversarial term, given the discriminator's logits on its outputs."""
    if kind == "vanilla":
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
    if kind == "lsgan":
        return F.mse_loss(fake, torch.ones_like(fake))
    if kind == "hinge":
        return -fake.mean()
    raise ValueError(f"unknown GAN loss {kind!r}")


def l1_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error; in [-1, 1] pixel units, so 0.1 is about 13 grey levels."""
    return F.l1_loss(output, target)


@dataclass(frozen=True)
class Objective:
    """The loss settings of a run as one object: which adversarial loss, and the two weights of
    ``lambda_gan * L_cGAN + lambda_l1 * L_L1``. ``lambda_gan = 0`` is the paper's L1-alone ablation."""

    gan_loss: str = "vanilla"
    lambda_l1: float = 100.0
    lambda_gan: float = 1.0

    def __post_init__(self) -> None:
        if self.gan_loss not in GAN_LOSSES:
            raise ValueError(f"unknown GAN loss {self.gan_loss!r}")

    @classmethod
    def of(cls, cfg: TrainConfig) -> "Objective":
        return cls(cfg.gan_loss, cfg.lambda_l1, cfg.lambda_gan)

    @property
    def adversarial(self) -> bool:
        """False for L1 alone: then D is neither run nor trained."""
        return self.lambda_gan > 0
