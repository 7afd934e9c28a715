"""A procedurally generated paired dataset: flat-coloured label maps and their shaded renderings.

A (label map): a background and a few shapes, each class one flat colour (palette below).
B (rendering): the same scene with per-class texture and shading (a lit sphere for discs, bricks
for rectangles, striped foliage for triangles, a sky-to-ground gradient behind). The mapping
A -> B is deterministic given A, so a small U-Net learns it in minutes on a CPU; ``pix2pix
quickstart`` uses it to show the whole pipeline with no download.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# class name -> label colour (taken from the Cityscapes palette, so the look is familiar)
PALETTE = {
    "ground": (128, 64, 128),
    "disc": (220, 20, 60),
    "block": (70, 70, 70),
    "tree": (107, 142, 35),
}


def synthetic_pair(rng: np.random.Generator, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """One (label map, rendering) pair, each uint8 (size, size, 3)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size  # (H, W) in [0, 1)
    label = np.empty((size, size, 3), np.uint8)
    label[:] = PALETTE["ground"]
    # background rendering: sky-ish blue at the top fading to warm ground at the bottom
    top, bottom = np.array([90, 140, 200], np.float32), np.array([150, 120, 90], np.float32)
    render = top * (1 - yy[..., None]) + bottom * yy[..., None]
    for _ in range(rng.integers(2, 6)):
        kind = rng.choice(["disc", "block", "tree"])
        cx, cy = rng.uniform(0.15, 0.85, size=2)
        r = rng.uniform(0.08, 0.22)
        if kind == "disc":
            d2 = ((xx - cx) ** 2 + (yy - cy) ** 2) / r**2
            mask = d2 <= 1.0
            # Lambert shading of a sphere lit from the upper left
            nz = np.sqrt(np.clip(1.0 - d2, 0.0, 1.0))
            nx, ny = (xx - cx) / r, (yy - cy) / r
            light = np.clip(0.25 + 0.75 * (-0.5 * nx - 0.5 * ny + 0.7 * nz), 0.1, 1.0)
            colour = np.array([230, 60, 40], np.float32) * light[..., None]
        elif kind == "block":
            mask = (np.abs(xx - cx) <= r) & (np.abs(yy - cy) <= r * 0.7)
            rows = np.floor((yy - cy) * size / 4)
            brick = ((np.floor((xx * size + 4 * (rows % 2)) / 8) + rows) % 2)[..., None]
            mortar = (np.mod((yy - cy) * size, 4) < 1)[..., None]
            colour = np.where(mortar, 200.0, np.where(brick > 0, [170, 90, 60], [140, 70, 50]))
            colour = colour * (0.8 + 0.2 * (1 - (yy[..., None] - cy + r) / (2 * r)))
        else:
            mask = (yy - cy <= r) & (np.abs(xx - cx) <= (yy - cy + r) / 2)
            stripes = 0.75 + 0.25 * np.sin((xx + yy) * size * 1.2)
            colour = np.array([60, 150, 50], np.float32) * stripes[..., None]
        label[mask] = PALETTE[kind]
        render = np.where(mask[..., None], colour, render)
    return label, np.clip(render, 0, 255).astype(np.uint8)


def make_synthetic_dataset(root: str | Path, n_train: int = 200, n_val: int = 20, size: int = 64,
                           layout: str = "ab", seed: int = 0, ext: str = ".png") -> Path:
    """Write ``root/train`` and ``root/val`` with label maps as A and renderings as B.

    ``layout``: ``ab`` (side-by-side files) or ``folders`` (``split/A`` and ``split/B``).
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        folder = root / split
        for i in range(n):
            a, b = synthetic_pair(rng, size)
            name = f"{i + 1:04d}{ext}"
            if layout == "ab":
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(np.concatenate([a, b], axis=1)).save(folder / name)
            else:
                (folder / "A").mkdir(parents=True, exist_ok=True)
                (folder / "B").mkdir(parents=True, exist_ok=True)
                Image.fromarray(a).save(folder / "A" / name)
                Image.fromarray(b).save(folder / "B" / name)
    return root
