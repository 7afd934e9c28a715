"""Pictures (PNG and JPEG files): grids of pairs and samples, previews, loss curves.

Grids are rows of equally sized tiles, e.g. one row per validation pair: input | output | target.

    pix2pix show --data datasets/facades --n 16 --augmented --out pairs.png   # show_pairs()
    plot_loss_curves(RunFolder("runs/x").read_losses(), "runs/x/curves.png")

matplotlib is imported only when a plot is drawn, through its object API (no pyplot, no global
backend change), so plotting works headless and inside a training loop.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from .config import DataConfig
from .data.convert import array_to_tensor, tensor_to_image
from .fileio import atomic_write_bytes


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


def save_preview(image: Image.Image | np.ndarray, path: str | os.PathLike, quality: int = 92) -> Path:
    """A JPEG preview for a results page (scores are always computed on the full-quality images)."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image)
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="JPEG", quality=quality)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


# ----- pix2pix show: pairs as they are, or as the training jitter makes them --------------------
def blend(a: Image.Image, b: Image.Image) -> Image.Image:
    """50 % mix of A and B: edges that do not line up show as double contours."""
    return Image.blend(a.convert("RGB"), b.convert("RGB"), 0.5)


def pick_evenly(n_total: int, n: int) -> list[int]:
    """``n`` indices spread evenly over ``range(n_total)`` (all of them when n >= n_total)."""
    if n >= n_total:
        return list(range(n_total))
    return sorted({round(i * (n_total - 1) / max(1, n - 1)) for i in range(n)}) if n > 1 else [0]


def show_pairs(root: str | os.PathLike, split: str = "train", n: int = 16, *, augmented: bool = False,
               data: DataConfig | None = None, seed: int = 0, columns: int | None = None) -> Image.Image:
    """A grid of ``n`` pairs of a dataset split, spread evenly over it, A | B as stored on disk.

    With ``augmented``, each pair is passed through the training jitter (:func:`paired_jitter` with
    ``data``'s load_size, crop_size, preprocess and flip; seeded) and shown as A' | B' | blend, so
    misaligned pairs show double edges in the blend. ``columns`` pairs per row (default about
    sqrt(n)). Only the chosen pairs are decoded, or read from the decoded-pair cache when it holds the
    split at its own size.
    """
    from .data.augment import paired_jitter
    from .data.pairs import cached_sides, find_pairs, read_pair
    from .errors import DataError

    pairs = find_pairs(root, split)
    if pairs is None:
        raise DataError(f"{root}: no '{split}' split (expected {Path(root) / split}/)")
    if n < 1:
        raise DataError("--n must be at least 1")
    chosen = [pairs[i] for i in pick_evenly(len(pairs), n)]
    data = data or DataConfig()
    gen = torch.Generator().manual_seed(seed)
    tiles: list[list[Image.Image]] = []
    cached = cached_sides(root, split, pairs, 3, 3, data.cache_dir) if data.cache else {}
    for pair in chosen:
        a, b = cached[pair.name] if pair.name in cached else read_pair(pair, 3, 3)  # (H, W, 3) uint8 each
        if augmented:
            ja, jb = paired_jitter(array_to_tensor(a)[None], array_to_tensor(b)[None], data, gen)
            ia, ib = tensor_to_image(ja[0]), tensor_to_image(jb[0])
            tiles.append([ia, ib, blend(ia, ib)])
        else:
            tiles.append([Image.fromarray(a), Image.fromarray(b)])
    per_row = columns or max(1, math.ceil(math.sqrt(len(tiles))))
    rows = []
    for start in range(0, len(tiles), per_row):
        rows.append([side_by_side(t) for t in tiles[start:start + per_row]])
    return grid(rows, pad=4)


# ----- loss curves ------------------------------------------------------------------------------
CURVES = (("G_gan", "G adversarial"), ("G_L1", "G L1 (unweighted)"), ("D_real", "D on real pairs"),
          ("D_fake", "D on generated pairs"), ("lr", "learning rate"), ("images_per_sec", "images / second"))


def smooth(values: Sequence[float], weight: float) -> list[float]:
    """Exponential moving average with bias correction (as TensorBoard's smoothing slider)."""
    out, avg, norm = [], 0.0, 0.0
    for v in values:
        avg = weight * avg + (1 - weight) * v
        norm = weight * norm + (1 - weight)
        out.append(avg / norm if norm else v)
    return out


def plot_loss_curves(records: Sequence[dict], path: str | os.PathLike, smoothing: float | None = None) -> Path:
    """PNG of each logged quantity against step: raw values faint, smoothed values on top.

    ``smoothing`` is the EMA weight; by default it adapts to the run's length so the average spans
    about 1/40 of the logged points (no smoothing below 40 points, 0.99 at 4000).
    """
    from matplotlib.figure import Figure  # no pyplot: no global backend state, safe in threads

    fig = Figure(figsize=(12, 6.5), dpi=80)
    axes = fig.subplots(2, 3).ravel()
    steps = [r["step"] for r in records]
    if smoothing is None:
        smoothing = 1.0 - 1.0 / max(1.0, len(records) / 40.0)
    for ax, (key, title) in zip(axes, CURVES):
        pts = [(s, r[key]) for s, r in zip(steps, records) if isinstance(r.get(key), (int, float))
               and math.isfinite(r[key])]
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        if not pts:
            continue
        xs, ys = zip(*pts)
        if key == "lr":
            ax.plot(xs, ys, color="tab:green")
            ax.set_ylim(0, max(ys) * 1.1 or 1.0)
            ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
            continue
        ax.plot(xs, ys, color="tab:blue", alpha=0.25, linewidth=0.8)
        ax.plot(xs, smooth(ys, smoothing), color="tab:blue", linewidth=1.5)
    fig.suptitle(f"up to step {steps[-1] if steps else 0}; faint: logged means, dark: EMA (weight {smoothing:.3g})",
                 fontsize=11)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)
