"""How big the networks of a config are, known before they are built, and whether they fit here.

    parameter_counts(ModelConfig(netG="unet_4096", ngf=1024))   # (26_810_427_395, 2_768_705)
    check_fits(cfg.model, torch.device("cpu"), training=False, source="model.safetensors")

Every option is bounded (``config.py``: ngf <= 1024, sides <= 8192, netG up to unet_4096), but the
bounds multiply: unet_4096 at ngf 1024 is 27 G parameters, 100 GiB of float32 weights. Building
that would end in an allocator traceback, or in the kernel's OOM killer, so the readers of model
files and the trainer ask :func:`check_fits` first and stop with one line naming the file.

The count is exact without building anything large: every width is ``ngf`` (or ``ndf``) times a
constant, so a network's parameter count is a quadratic in its base width. The real builders run
at widths 1, 2 and 3 (a few kilobytes) and the quadratic through those three counts is evaluated
at the real width.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable

import torch
import torch.nn as nn

from ..config import ModelConfig
from ..errors import ConfigError
from .discriminator import build_discriminator
from .generator import build_generator

TRAIN_BYTES_PER_PARAMETER = 16  # float32 weights, gradients and Adam's two moments
RUN_BYTES_PER_PARAMETER = 4  # float32 weights


def _numel(module: nn.Module) -> int:
    return sum(t.numel() for t in (*module.parameters(), *module.buffers()))


def _quadratic_in_width(count: Callable[[int], int], width: int) -> int:
    c1, c2, c3 = count(1), count(2), count(3)
    a2 = c3 - 2 * c2 + c1  # twice the leading coefficient (an exact integer)
    b = c2 - c1 - 3 * a2 // 2
    c = c1 - a2 // 2 - b
    return a2 * width * width // 2 + b * width + c


def parameter_counts(cfg: ModelConfig) -> tuple[int, int]:
    """(generator, discriminator) parameters and buffers of the networks ``cfg`` describes."""
    g = _quadratic_in_width(lambda w: _numel(build_generator(dataclasses.replace(cfg, ngf=w))), cfg.ngf)
    d = _quadratic_in_width(lambda w: _numel(build_discriminator(dataclasses.replace(cfg, ndf=w))), cfg.ndf)
    return g, d


def memory_of(device: torch.device) -> int | None:
    """Bytes of memory on ``device`` (the GPU's total, or the machine's RAM); None if unknown."""
    try:
        if device.type == "cuda":
            return torch.cuda.mem_get_info(device)[1]
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError, RuntimeError):
        return None


def check_fits(cfg: ModelConfig, device: torch.device, *, training: bool, source: str) -> None:
    """Refuse, with one :class:`ConfigError` naming ``source``, networks whose weights (``training``:
    weights, gradients and Adam moments of both networks) need more memory than ``device`` has in
    all. Built on the CPU first, their weights must fit in the machine's RAM too."""
    g, d = parameter_counts(cfg)
    n = g + d if training else g
    need = {device: n * (TRAIN_BYTES_PER_PARAMETER if training else RUN_BYTES_PER_PARAMETER)}
    if device.type != "cpu":
        need[torch.device("cpu")] = n * RUN_BYTES_PER_PARAMETER
    for where, bytes_needed in need.items():
        have = memory_of(where)
        if have is not None and bytes_needed > have:
            what = "train" if training and where == device else "hold"
            raise ConfigError(
                f"{source}: {cfg.netG} with ngf {cfg.ngf}{f' and ndf {cfg.ndf}' if training else ''} has "
                f"{n / 1e9:.2f} G parameters, {bytes_needed / 2**30:.1f} GiB to {what} them, more than the "
                f"{have / 2**30:.1f} GiB of {'memory' if where.type == 'cpu' else where} on this machine; "
                "use a smaller --ngf / --ndf or --netG")
