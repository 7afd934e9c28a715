"""Pictures: tensors to images, grids of pairs and samples.

Grids are rows of equally sized tiles, e.g. one row per validation pair: input | output | target.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from PIL import Image

from .data.augment import to_uint8


def tensor_to_image(x: torch.Tensor) -> Image.Image:
    """(C, H, W) float in [-1, 1] or uint8 -> PIL RGB or L image."""
    if x.dtype != torch.uint8:
        x = to_uint8(x)
    arr = x.detach().cpu().permute(1, 2, 0).numpy()
    return Image.fromarray(arr[:, :, 0], "L") if arr.shape[2] == 1 else Image.fromarray(arr, "RGB")


def image_to_tensor(image: Image.Image, channels: int = 3) -> torch.Tensor:
    """PIL image -> (C, H, W) float in [-1, 1]; converted to RGB (3) or L (1)."""
    from .data.images import to_array

    arr = to_array(image, channels)
    return torch.from_numpy(np.array(arr.transpose(2, 0, 1))).float().div_(127.5).sub_(1.0)


def grid(rows: Sequence[Sequence[Image.Image]], pad: int = 2, background: int = 255) -> Image.Image:
    """Paste images into a grid; each cell is as large as the largest tile, tiles are centred."""
    n_cols = max(len(r) for r in rows)
    cell_w = max(im.width for r in rows for im in r)
    cell_h = max(im.height for r in rows for im in r)
    out = Image.new("RGB", (n_cols * cell_w + (n_cols + 1) * pad, len(rows) * cell_h + (len(rows) + 1) * pad),
                    (background,) * 3)
    for i, row in enumerate(rows):
        for j, im in enumerate(row):
            x = pad + j * (cell_w + pad) + (cell_w - im.width) // 2
            y = pad + i * (cell_h + pad) + (cell_h - im.height) // 2
            out.paste(im.convert("RGB"), (x, y))
    return out


def side_by_side(images: Sequence[Image.Image]) -> Image.Image:
    """One row, no padding: input | output (| target), as the reference's result images."""
    h = max(im.height for im in images)
    out = Image.new("RGB", (sum(im.width for im in images), h))
    x = 0
    for im in images:
        out.paste(im.convert("RGB"), (x, 0))
        x += im.width
    return out


def sample_grid(source: torch.Tensor, output: torch.Tensor, target: torch.Tensor) -> Image.Image:
    """Rows of input | output | target for a batch of floats in [-1, 1], each (B, C, H, W)."""
    rows = [[tensor_to_image(s), tensor_to_image(o), tensor_to_image(t)] for s, o, t in zip(source, output, target)]
    return grid(rows)
