"""The losses between two log points: summed on the device by every step (no host sync), read back
once per log point (one sync, averaged over every rank), and checked for NaN/inf there; the run's
elapsed time and ETA for the progress display."""

from __future__ import annotations

import math
import time

import torch

from . import distributed as dist
from .step import LOSS_NAMES


class LossMeter:
    """Sums of the step's losses (and skipped batches) since the last read-back."""

    def __init__(self, device: torch.device, batch_size: int):
        self.device, self.batch_size = device, batch_size
        self.reset()

    def reset(self) -> None:
        self.sums = {k: torch.zeros((), device=self.device) for k in (*LOSS_NAMES, "skipped")}
        self.count, self.since = 0, time.monotonic()

    def add(self, losses: dict[str, torch.Tensor]) -> None:
        for k, total in self.sums.items():
            total += losses[k]
        self.count += 1

    def read(self, step: int) -> tuple[dict[str, float | None], int, float, str]:
        """(mean of each loss over the batches not skipped, batches skipped, images/s, "steps a-b").

        Means are None when every batch was skipped; a non-finite mean stays in the dict for the
        caller to report."""
        stacked = dist.all_reduce_mean(torch.stack([self.sums[k] for k in (*LOSS_NAMES, "skipped")]))
        values = stacked.tolist()
        world = dist.world_size()
        skipped = round(values[-1] * world)
        used = self.count * world - skipped  # batches whose losses are in the sums
        means = {k: v * world / used if used else None for k, v in zip(LOSS_NAMES, values)}
        ips = self.count * self.batch_size * world / max(time.monotonic() - self.since, 1e-9)
        steps = f"step {step}" if self.count == 1 else f"steps {step - self.count + 1}-{step}"
        return means, skipped, ips, steps

    @staticmethod
    def finite(means: dict[str, float | None]) -> bool:
        return all(v is None or math.isfinite(v) for v in means.values())


def run_clock(elapsed: float, steps_done: int, steps_left: int) -> str:
    """``elapsed H:MM:SS, ETA H:MM:SS`` for the whole run: the steps still to run at the pace of the
    steps this process has run so far (a resumed run measures its own pace)."""
    eta = _clock(elapsed / steps_done * steps_left) if steps_done else "?"
    return f"elapsed {_clock(elapsed)}, ETA {eta}"


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
