"""Training the FCN-score's segmenter on the real photos of a paired Cityscapes split.

    pix2pix evaluate --train-segmenter --data datasets/cityscapes --segmenter seg.safetensors

The split is decoded once (in parallel) and kept on the training device as uint8; the file is saved
after every epoch, so a stopped run keeps a usable segmenter.
"""

from __future__ import annotations

import logging
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data.convert import to_unit_range
from ..data.images import BadImage
from ..data.pairs import find_pairs
from ..devices import resolve_device
from ..errors import ConfigError, DataError
from .cityscapes import IGNORE
from .segmenter import SegmentationUNet, Segmenter, SegmenterConfig, read_photo_and_classes, try_read

log = logging.getLogger("pix2pix")


# ----- data -------------------------------------------------------------------------------------
@dataclass
class SegmentationSet:
    """A split decoded for training: ``photos`` (N, 3, H, W) uint8, ``labels`` (N, H, W) uint8
    trainIds (255 = not scored)."""

    photos: torch.Tensor
    labels: torch.Tensor
    names: list[str]
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.names)


def load_segmentation_set(root: str | os.PathLike, split: str, *, direction: str = "AtoB",
                          size: int | None = None, max_items: int | None = None,
                          progress: bool = False) -> SegmentationSet | None:
    """Decode a split once (in parallel) into a :class:`SegmentationSet`; None if the split does not
    exist. Unreadable files are skipped with a warning. Without ``size`` all pairs must share one."""
    from tqdm.auto import tqdm

    pairs = find_pairs(root, split)
    if pairs is None:
        return None
    pairs = pairs[:max_items] if max_items else pairs

    with ThreadPoolExecutor(min(8, (os.cpu_count() or 1) + 2)) as pool:
        results = list(tqdm(pool.map(lambda p: try_read(read_photo_and_classes, p, direction, size), pairs), total=len(pairs), desc=f"decode {split}", unit="img",
                            disable=not progress, leave=False))
    keep = [(p, r) for p, r in zip(pairs, results) if not isinstance(r, BadImage)]
    skipped = [str(r) for r in results if isinstance(r, BadImage)]
    for message in skipped:
        log.warning("skipped %s", message)
    if not keep:
        raise DataError(f"{Path(root) / split}: none of the {len(pairs)} pairs could be read")
    shapes = {r[0].shape for _, r in keep}
    if len(shapes) > 1:
        raise DataError(f"{Path(root) / split}: pairs differ in size ({sorted(shapes)[:2]} ...); pass --size "
                        "to resize them all")
    photos = torch.from_numpy(np.stack([r[0] for _, r in keep]).transpose(0, 3, 1, 2).copy())
    labels = torch.from_numpy(np.stack([r[1] for _, r in keep]))
    return SegmentationSet(photos, labels, [p.name for p, _ in keep], skipped)


# ----- training ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class SegmenterTraining:
    """How to train the segmenter. ``time_limit`` (minutes) bounds the run; the learning rate
    follows a poly schedule over whichever budget (epochs or time) runs out first."""

    epochs: int = 30
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4
    time_limit: float | None = None
    seed: int = 0
    flip: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ConfigError("segmenter training needs epochs >= 1, batch size >= 1 and lr > 0")
        if self.time_limit is not None and self.time_limit <= 0:
            raise ConfigError("--time-limit must be positive (minutes)")


def train_segmenter(data_root: str | os.PathLike, out: str | os.PathLike, *, split: str = "train",
                    val_split: str | None = "val", direction: str = "AtoB",
                    arch: SegmenterConfig = SegmenterConfig(), train: SegmenterTraining = SegmenterTraining(),
                    max_items: int | None = None, device: str = "auto", progress: bool = True) -> Segmenter:
    """Train on the real photos of ``split``, save to ``out`` after every epoch (a stopped run keeps
    a usable file), score the real photos of ``val_split`` and record everything in the file."""
    from tqdm.auto import tqdm

    from ..fileio import check_writable

    check_writable(out, what="--segmenter file")  # before the data is decoded and the training starts
    dev = resolve_device(device)
    data = load_segmentation_set(data_root, split, direction=direction, size=arch.size, max_items=max_items,
                                 progress=progress)
    if data is None:
        raise ConfigError(f"{data_root}: no '{split}' split to train the segmenter on")
    log.info("training a segmenter (U-Net width %d, depth %d, %dx%d) on %d photos of %s, device %s",
             arch.width, arch.depth, arch.size, arch.size, len(data), Path(data_root) / split, dev)
    torch.manual_seed(train.seed)
    model = SegmentationUNet(arch).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=train.lr, weight_decay=train.weight_decay)
    gen = torch.Generator().manual_seed(train.seed)
    photos, labels = data.photos.to(dev), data.labels.to(dev)  # uint8: 256x256 Cityscapes ~ 0.8 GB
    n, bs = len(data), train.batch_size
    per_epoch = math.ceil(n / bs)
    total = train.epochs * per_epoch
    budget = 60.0 * train.time_limit if train.time_limit else None
    start, step, epochs_done, stop = time.monotonic(), 0, 0, False
    seg = Segmenter(model, {"data": str(data_root), "split": split, "direction": direction, "images": n,
                            "epochs": train.epochs, "batch_size": bs, "lr": train.lr, "device": str(dev)}, dev)
    info = seg.info  # the training record saved with the weights
    for epoch in range(train.epochs):
        model.train()
        order = torch.randperm(n, generator=gen)
        loss_sum, correct, counted = 0.0, 0, 0
        bar = tqdm(range(per_epoch), desc=f"segmenter epoch {epoch + 1}/{train.epochs}", unit="batch",
                   disable=not progress, leave=False)
        for b in bar:
            elapsed = time.monotonic() - start
            done = max(step / total, elapsed / budget if budget else 0.0)
            if done >= 1.0:
                stop = True
                break
            for group in opt.param_groups:
                group["lr"] = train.lr * (1.0 - done) ** 0.9  # poly schedule
            idx = order[b * bs:(b + 1) * bs].to(dev)
            x = to_unit_range(photos[idx])  # (B, 3, S, S)
            y = labels[idx].long()  # (B, S, S)
            if train.flip:
                flip = (torch.rand(len(idx), generator=gen) < 0.5).to(dev)
                x = torch.where(flip[:, None, None, None], x.flip(-1), x)
                y = torch.where(flip[:, None, None], y.flip(-1), y)
            logits = model(x)
            # mean over scored pixels; a batch with none gives 0 instead of NaN (and no host sync)
            n_valid = (y != IGNORE).sum().clamp(min=1)
            loss = F.cross_entropy(logits, y, ignore_index=IGNORE, reduction="sum") / n_valid
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if step % 10 == 0 or b + 1 == per_epoch:  # one host sync every 10 steps
                valid = y != IGNORE
                correct += int((logits.argmax(1)[valid] == y[valid]).sum())
                counted += int(valid.sum())
                loss_sum = float(loss.detach())
                bar.set_postfix(loss=f"{loss_sum:.3f}", acc=f"{correct / max(counted, 1):.3f}")
        bar.close()
        if stop and step == 0:
            break
        epochs_done = epoch + 1 if not stop else epoch + b / per_epoch
        info.update(epochs_done=round(epochs_done, 3), steps=step, train_time_s=round(time.monotonic() - start, 1))
        seg.save(out)
        log.info("segmenter epoch %d/%d: loss %.3f, train pixel accuracy %.3f (sampled), %.0f s",
                 epoch + 1, train.epochs, loss_sum, correct / max(counted, 1), time.monotonic() - start)
        if stop:
            log.info("segmenter: time limit of %g minutes reached after %d steps", train.time_limit, step)
            break
    model.eval()
    if val_split:
        scored = seg.score_split(data_root, val_split, direction, progress=progress)
        if scored is not None:
            scores, n_val = scored
            info["val"] = {"split": val_split, "images": n_val, **scores.as_dict()}
            log.info("segmenter on the real %s photos: pixel accuracy %.3f, class accuracy %.3f, class IoU %.3f",
                     val_split, scores.pixel_accuracy, scores.class_accuracy, scores.class_iou)
    seg.save(out)
    return seg
