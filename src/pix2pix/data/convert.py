"""The one conversion between 8-bit images and the tensors the networks see.

Everything a model sees is float in [-1, 1], (C, H, W) or (B, C, H, W); everything on disk and in
the decoded-data tensors is uint8 in [0, 255]. Resizing runs on floats in the pixel range [0, 255].

    x = to_unit_range(uint8_batch)        # uint8 -> [-1, 1]
    u = to_uint8(x)                       # [-1, 1] -> uint8 (rounded, clamped)
    image = tensor_to_image(x[0])         # -> PIL RGB or L
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image


def to_unit_range(x: torch.Tensor) -> torch.Tensor:
    """uint8 (or float in [0, 255]) -> float in [-1, 1]."""
    return x.float().div_(127.5).sub_(1.0) if x.dtype == torch.uint8 else x.div(127.5).sub(1.0)


def to_pixel_range(x: torch.Tensor) -> torch.Tensor:
    """float in [-1, 1] -> float in [0, 255] (for resizing; not rounded)."""
    return (x.float() + 1.0) * 127.5


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float in [-1, 1] -> uint8 in [0, 255] (rounded, clamped)."""
    return to_pixel_range(x.detach().clamp(-1, 1)).round_().to(torch.uint8)


def array_to_tensor(arr: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, C) array -> uint8 (C, H, W) tensor (a copy, so it is writable)."""
    return torch.from_numpy(np.array(arr.transpose(2, 0, 1)))


def array_to_image(arr: np.ndarray) -> Image.Image:
    """uint8 (H, W, 1 or 3) array -> PIL L or RGB image."""
    return Image.fromarray(arr[:, :, 0], "L") if arr.shape[2] == 1 else Image.fromarray(arr, "RGB")


def tensor_to_image(x: torch.Tensor) -> Image.Image:
    """(C, H, W) float in [-1, 1] or uint8 -> PIL RGB or L image."""
    if x.dtype != torch.uint8:
        x = to_uint8(x)
    return array_to_image(x.detach().cpu().permute(1, 2, 0).numpy())


def image_to_tensor(image: Image.Image, channels: int = 3) -> torch.Tensor:
    """PIL image -> (C, H, W) float in [-1, 1]; converted to RGB (3) or L (1) as training data is."""
    from .images import to_array

    return to_unit_range(array_to_tensor(to_array(image, channels)))
