"""The learning-rate schedule and the per-epoch seeds that make every epoch reproducible alone."""

from __future__ import annotations

import math

from ..config import TrainConfig


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


def epoch_seed(cfg: TrainConfig, *parts: int) -> int:
    """A 63-bit seed derived from the run's seed and e.g. (epoch, rank), so each epoch's
    randomness can be recreated without replaying earlier epochs."""
    h = cfg.seed & 0xFFFFFFFF
    for p in parts:
        h = (h * 1_000_003 + p + 0x9E3779B9) & 0x7FFFFFFFFFFFFFFF
    return h
