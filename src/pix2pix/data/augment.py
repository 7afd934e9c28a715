"""Paired random jitter as batched tensor ops, run on whatever device the batch is on.

Source and target are concatenated along channels before any geometric op, so every resize, crop
and flip is applied to both sides identically by construction::

    src, tgt = paired_jitter(src_u8, tgt_u8, cfg, generator)   # (B, C, S, S) floats in [-1, 1]

The paper's jitter (``resize_and_crop``): resize to load_size (286), random crop crop_size (256),
random horizontal flip. Randomness comes from ``generator`` (a ``torch.Generator`` on the batch's
device) so a run can be resumed exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..config import DataConfig
from .convert import to_pixel_range, to_unit_range


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bicubic resize of a float batch (values in [0, 255]) to (height, width); antialiased when shrinking."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    y = F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=shrink)
    return y.clamp_(0.0, 255.0)


def resize_unit(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """:func:`resize` for a batch in [-1, 1] (the model's range): same filter, same range out."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return to_unit_range(resize(to_pixel_range(x), size))


def crop_and_flip(x: torch.Tensor, size: int, top: torch.Tensor, left: torch.Tensor,
                  flip: torch.Tensor) -> torch.Tensor:
    """Per-sample crop of ``size`` x ``size`` at (top, left), mirrored where ``flip``; one gather.

    x: (B, C, H, W); top, left: (B,) long; flip: (B,) bool -> (B, C, size, size).
    """
    b = x.shape[0]
    steps = torch.arange(size, device=x.device)
    rows = top[:, None] + steps  # (B, size)
    cols = left[:, None] + steps
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    batch = torch.arange(b, device=x.device)[:, None, None]
    out = x.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # (B, size, size, C)
    return out.permute(0, 3, 1, 2)


def paired_jitter(
    src: torch.Tensor, tgt: torch.Tensor, cfg: DataConfig, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random jitter of a batch of pairs (uint8, (B, C, H, W)) -> floats in [-1, 1].

    Output side: crop_size for ``resize_and_crop`` and ``crop``, load_size for ``resize``, the
    stored size for ``none``.
    """
    c = src.shape[1]
    x = torch.cat([src, tgt], dim=1).float()  # (B, Cs + Ct, H, W), values in [0, 255]
    b, _, h, w = x.shape
    if cfg.preprocess in ("resize_and_crop", "resize"):
        x = resize(x, (cfg.load_size, cfg.load_size))
        h = w = cfg.load_size
    dev = x.device
    if cfg.preprocess in ("resize_and_crop", "crop"):
        top = torch.randint(0, h - cfg.crop_size + 1, (b,), generator=generator, device=dev)
        left = torch.randint(0, w - cfg.crop_size + 1, (b,), generator=generator, device=dev)
        size = cfg.crop_size
    else:
        top = left = torch.zeros(b, dtype=torch.long, device=dev)
        size = None
    if cfg.flip:
        flip = torch.rand(b, generator=generator, device=dev) < 0.5
    else:
        flip = torch.zeros(b, dtype=torch.bool, device=dev)
    if size is not None:
        x = crop_and_flip(x, size, top, left, flip)
    elif cfg.flip:
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    x = to_unit_range(x)
    return x[:, :c], x[:, c:]


def eval_transform(src: torch.Tensor, tgt: torch.Tensor, cfg: DataConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic counterpart of :func:`paired_jitter` for validation: no randomness.

    Resize modes resize straight to the training size; ``crop`` takes the centre crop.
    """
    x = torch.cat([src, tgt], dim=1).float()
    h, w = x.shape[-2:]
    size = cfg.image_size
    if cfg.preprocess in ("resize_and_crop", "resize"):
        x = resize(x, (size, size))
    elif cfg.preprocess == "crop":
        top, left = (h - size) // 2, (w - size) // 2
        x = x[:, :, top:top + size, left:left + size]
    x = to_unit_range(x)
    c = src.shape[1]
    return x[:, :c], x[:, c:]
