"""The segmenter behind the FCN-score: trained on real photos, saved, reused to judge generated ones.

    pix2pix evaluate --train-segmenter --data datasets/cityscapes --segmenter seg.safetensors
    pix2pix evaluate --checkpoint runs/cityscapes --data datasets/cityscapes --task label2photo \\
        --segmenter seg.safetensors

    seg = Segmenter.load("seg.safetensors")
    ids = seg.segment(photos)          # (N, 3, H, W) uint8 -> (N, H, W) uint8 trainIds 0..18

The paper scores generated Cityscapes photos with an FCN-8s trained on Cityscapes. We train our own
network (:mod:`pix2pix.models.segmenter`, a compact U-Net) on the real training photos of the
paired dataset, with class targets from its colour label maps by the rule in
:mod:`pix2pix.data.cityscapes` (void pixels ignored). Its score on the real validation photos is the
ceiling (the paper's "ground truth" row); see docs/evaluation.md for the protocol and caveats.

The file is a safetensors file (weights only, safe to load) whose metadata holds the architecture,
the class names and how it was trained, so it rebuilds itself.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .data.augment import resize
from .data.cityscapes import CLASS_NAMES, IGNORE, NUM_CLASSES, colours_to_train_ids
from .data.images import BadImage
from .data.pairs import PairFile, find_pairs, read_pair
from .devices import resolve_device
from .errors import CheckpointError, ConfigError, DataError
from .fileio import atomic_write_bytes
from .metrics import SegmentationScores, confusion_matrix
from .models.segmenter import SegmentationUNet, SegmenterConfig

log = logging.getLogger("pix2pix")
FORMAT = "pix2pix-segmenter"
VERSION = 1


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


def read_photo_and_classes(pair: PairFile, direction: str = "AtoB",
                           size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(photo (H, W, 3) uint8, trainIds (H, W) uint8) of one pair; ``direction`` AtoB means the
    photo is side A and the label map side B (the Cityscapes layout). With ``size``, both are
    resized to size x size: the photo bicubic, the class map nearest-neighbour (after the colour
    rule, so classes are never blended)."""
    a, b = read_pair(pair, 3, 3)
    photo, label = (a, b) if direction == "AtoB" else (b, a)
    ids = colours_to_train_ids(label)
    if size is not None and photo.shape[:2] != (size, size):
        x = torch.from_numpy(photo.transpose(2, 0, 1).copy())[None].float()
        photo = resize(x, (size, size)).round()[0].to(torch.uint8).permute(1, 2, 0).numpy()  # as segment() does
        ids = np.asarray(Image.fromarray(ids).resize((size, size), Image.NEAREST))
    return photo, ids


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
        results = list(tqdm(pool.map(lambda p: _try(read_photo_and_classes, p, direction, size), pairs), total=len(pairs), desc=f"decode {split}", unit="img",
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


def _try(fn, *args):
    """fn(*args), or the BadImage it raised (so one bad file does not stop a thread pool)."""
    try:
        return fn(*args)
    except BadImage as e:
        return e


# ----- the model wrapper ------------------------------------------------------------------------
class Segmenter:
    """A trained :class:`SegmentationUNet` with its config and training record (``info``)."""

    def __init__(self, model: SegmentationUNet, info: dict[str, Any] | None = None,
                 device: torch.device | str = "cpu", batch_size: int = 16):
        self.model = model.to(device).eval()
        self.cfg: SegmenterConfig = model.cfg
        self.info = dict(info or {})
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.path: Path | None = None  # the file it was loaded from or last saved to

    @torch.no_grad()
    def segment(self, photos: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor | list[torch.Tensor]:
        """uint8 photos (N, 3, H, W), or a list of (3, H, W) of any sizes -> trainIds (N, H, W) uint8
        (or a list). Each photo is resized to the segmenter's size, segmented, and the logits
        resized back (bilinear) to the photo's own size before the arg-max."""
        if not isinstance(photos, torch.Tensor):
            if len({tuple(p.shape) for p in photos}) == 1:
                return list(self.segment(torch.stack(list(photos))))
            return [self.segment(p[None])[0] for p in photos]
        self.model.eval()
        out = []
        h, w = photos.shape[-2:]
        s = self.cfg.size
        for chunk in photos.split(self.batch_size):
            x = chunk.to(self.device).float()
            if (h, w) != (s, s):
                x = resize(x, (s, s))
            logits = self.model(x / 127.5 - 1.0)
            if (h, w) != (s, s):
                logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
            out.append(logits.argmax(1).to(torch.uint8).cpu())
        return torch.cat(out)

    def score_split(self, root: str | os.PathLike, split: str, direction: str = "AtoB",
                    progress: bool = False) -> tuple[SegmentationScores, int] | None:
        """Scores on the real photos of a split (the ceiling of the FCN-score) and the number of
        photos; None if the split does not exist. Streams the split; any image sizes."""
        from tqdm.auto import tqdm

        pairs = find_pairs(root, split)
        if pairs is None:
            return None
        conf = np.zeros((NUM_CLASSES, NUM_CLASSES + 1), np.int64)
        n = 0
        bs = self.batch_size
        with ThreadPoolExecutor(min(8, (os.cpu_count() or 1) + 2)) as pool, tqdm(
                total=len(pairs), desc=f"segment {split}", unit="img", disable=not progress, leave=False) as bar:
            for start in range(0, len(pairs), bs):
                chunk = list(pool.map(lambda p: _try(read_photo_and_classes, p, direction), pairs[start:start + bs]))
                for message in (str(c) for c in chunk if isinstance(c, BadImage)):
                    log.warning("skipped %s", message)
                chunk = [c for c in chunk if not isinstance(c, BadImage)]
                if chunk:
                    preds = self.segment([torch.from_numpy(c[0].transpose(2, 0, 1).copy()) for c in chunk])
                    for pred, (_, ids) in zip(preds, chunk):
                        conf += confusion_matrix(pred, ids, NUM_CLASSES)
                n += len(chunk)
                bar.update(min(bs, len(pairs) - start))
        return SegmentationScores.from_confusion(conf), n

    # ----- files --------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Atomically write weights + metadata (architecture, classes, training record)."""
        from safetensors.torch import save

        path = Path(path)
        if path.parent and not path.parent.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        meta = {"format": FORMAT, "version": str(VERSION), "config": json.dumps(self.cfg.to_dict()),
                "classes": json.dumps(list(CLASS_NAMES)), "info": json.dumps(self.info)}
        atomic_write_bytes(path, save(tensors, metadata=meta))
        self.path = path
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "auto", batch_size: int = 16) -> "Segmenter":
        """Rebuild from a file written by :meth:`save`; errors name the file."""
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path}: no such segmenter file (train one with "
                                  "pix2pix evaluate --train-segmenter --data DIR --segmenter FILE)")
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as e:  # not safetensors, truncated, ...
            raise CheckpointError(f"{path}: not a readable segmenter file ({type(e).__name__}: {e})") from None
        if meta.get("format") != FORMAT:
            raise CheckpointError(f"{path}: not a pix2pix segmenter (no '{FORMAT}' marker in its metadata)")
        if int(meta.get("version", 0)) > VERSION:
            raise CheckpointError(f"{path}: written by a newer pix2pix (segmenter version {meta['version']})")
        if json.loads(meta.get("classes", "[]")) != list(CLASS_NAMES):
            raise CheckpointError(f"{path}: trained for other classes than the 19 Cityscapes classes")
        model = SegmentationUNet(SegmenterConfig(**json.loads(meta["config"])))
        try:
            model.load_state_dict(tensors)
        except RuntimeError as e:
            raise CheckpointError(f"{path}: weights do not fit the network in its metadata "
                                  f"({str(e).splitlines()[0]})") from None
        seg = cls(model, json.loads(meta.get("info", "{}")), resolve_device(device), batch_size)
        seg.path = path
        return seg


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
            x = photos[idx].float() / 127.5 - 1.0  # (B, 3, S, S)
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
