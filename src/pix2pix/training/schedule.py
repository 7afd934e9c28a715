"""The learning-rate schedule, what extending a finished run does to it, and the per-epoch seeds
that make every epoch reproducible alone."""

from __future__ import annotations

import dataclasses
import math

from ..config import TrainConfig


def lr_factor(cfg: TrainConfig, epoch: int) -> float:
    """Learning-rate multiplier for 0-based ``epoch``.

    The schedule runs over ``epochs + epochs_decay`` epochs. linear: 1 for ``epochs`` epochs, then
    falls linearly over ``epochs_decay`` epochs towards 0 (the last epoch runs at
    1 / (epochs_decay + 1), as in the reference). step: x0.1 every ``lr_step`` epochs. cosine: half
    a cosine from 1 towards 0. The ``extra_epochs`` after the schedule stay at its final rate.
    """
    planned = cfg.epochs + cfg.epochs_decay
    if epoch >= planned:  # an extended run: the schedule's last rate, held
        return lr_factor(cfg, planned - 1) if planned else 1.0
    if cfg.lr_policy == "linear":
        return 1.0 - max(0, epoch + 1 - cfg.epochs) / float(cfg.epochs_decay + 1)
    if cfg.lr_policy == "step":
        return 0.1 ** (epoch // cfg.lr_step)
    return 0.5 * (1.0 + math.cos(math.pi * epoch / planned))


def continue_schedule(old: TrainConfig, new: TrainConfig, trained: int) -> TrainConfig:
    """The config a resumed run continues with, after ``trained`` epochs under ``old``, asked for ``new``.

    While the schedule is still running (``trained < epochs + epochs_decay``), ``new`` is taken as
    it is: a changed ``--epochs`` / ``--epochs-decay`` re-plans the epochs still to come. Once it has
    ended, its rates are history: changing ``epochs`` or ``epochs_decay`` would re-stretch the decay
    and send the rate of the next epoch back up (from 0.01x to about 0.5x for 100 + 100 epochs).
    So the old schedule is kept and the length asked for becomes ``extra_epochs``, which continue
    at the schedule's final rate: ``--resume RUN --epochs 150`` on a finished 100 + 100 run trains
    50 more epochs at 1/101 of ``lr``. Where both readings give every epoch, past and
    future, the same rate (a schedule without decay), the change is taken as asked.
    """
    planned = old.epochs + old.epochs_decay
    if trained < planned or (new.epochs, new.epochs_decay) == (old.epochs, old.epochs_decay):
        return new
    extra = max(0, new.total_epochs - planned)
    held = dataclasses.replace(new, epochs=old.epochs, epochs_decay=old.epochs_decay, extra_epochs=extra)
    if all(lr_factor(held, e) == lr_factor(new, e) for e in range(new.total_epochs)):  # the past too
        return new
    return held


def epoch_seed(cfg: TrainConfig, *parts: int) -> int:
    """A 63-bit seed derived from the run's seed and e.g. (epoch, rank), so each epoch's
    randomness can be recreated without replaying earlier epochs."""
    h = cfg.seed & 0xFFFFFFFF
    for p in parts:
        h = (h * 1_000_003 + p + 0x9E3779B9) & 0x7FFFFFFFFFFFFFFF
    return h
