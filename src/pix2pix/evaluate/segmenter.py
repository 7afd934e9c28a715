"""The segmenter behind the FCN-score: a compact U-Net trained on real photos, saved, reused to
judge generated ones.

    seg = Segmenter.load("seg.safetensors")
    ids = seg.segment(photos)          # (N, 3, H, W) uint8 -> (N, H, W) uint8 trainIds 0..18

The paper scores generated Cityscapes photos with an FCN-8s trained on Cityscapes. We train our own
network on the real training photos of the paired dataset (``segmenter_training.py``), with class
targets from its colour label maps by the rule in :mod:`pix2pix.evaluate.cityscapes` (void pixels
ignored). Its score on the real validation photos is the ceiling (the paper's "ground truth" row);
see docs/evaluation.md for the protocol and caveats.

The network (:class:`SegmentationUNet`), with width w and depth d (defaults 32 and 4) on a
(B, 3, H, W) photo in [-1, 1]::

    stem     Conv 3x3 stride 2 -> BN -> ReLU -> Conv 3x3 -> BN -> ReLU (3 -> w)        H -> H/2
    encoder  d x [maxpool 2 -> DoubleConv(c -> 2c)]                        H/2 -> H / 2**(d+1)
    decoder  d x [bilinear up 2 -> concat skip -> DoubleConv(3c -> c)]              -> H/2
    head     Conv 1x1 -> logits, bilinear up 2 -> (B, num_classes, H, W)

DoubleConv = (Conv 3x3 -> BatchNorm -> ReLU) x 2; H and W must be multiples of 2**(depth+1).
The stride-2 stem (as in FCN and ResNet stems) runs the U-Net at half resolution: about 4x less
compute than a full-resolution U-Net of the same width (w 32, d 4: 7.9 M parameters, about 0.17 s
per 256x256 training image on 2 CPU cores), which is what makes training it on a CPU practical.
Bilinear upsampling instead of transposed convolutions avoids checkerboard artefacts.

The file is a safetensors file (weights only, safe to load) whose metadata holds the architecture,
the class names and how it was trained, so it rebuilds itself.
"""

from __future__ import annotations

import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from ..config import source_and_target
from ..data.augment import resize
from ..data.convert import array_to_tensor, to_unit_range
from ..data.images import BadImage
from ..data.pairs import PairFile, find_pairs, read_pair
from ..devices import resolve_device
from ..errors import CheckpointError
from ..fileio import atomic_write_bytes
from .cityscapes import CLASS_NAMES, NUM_CLASSES, colours_to_train_ids
from .metrics import SegmentationScores, confusion_matrix

log = logging.getLogger("pix2pix")
FORMAT = "pix2pix-segmenter"
VERSION = 1


# ----- the network ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SegmenterConfig:
    """Architecture and input size; travels inside the saved file so it can rebuild the network."""

    num_classes: int = 19
    width: int = 32
    depth: int = 4
    size: int = 256  # photos are resized to size x size before segmentation

    def __post_init__(self) -> None:
        if self.num_classes < 2 or self.width < 1 or self.depth < 1:
            raise ValueError("num_classes >= 2, width >= 1 and depth >= 1 are required")
        if self.size % self.multiple:
            raise ValueError(f"size {self.size} must be a multiple of 2**(depth+1) = {self.multiple}")

    @property
    def multiple(self) -> int:
        return 2 ** (self.depth + 1)

    def to_dict(self) -> dict:
        return asdict(self)


class DoubleConv(nn.Module):
    """(Conv 3x3 -> BN -> ReLU) x 2: (B, cin, H, W) -> (B, cout, H, W)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class SegmentationUNet(nn.Module):
    """Photo (B, 3, H, W) in [-1, 1] -> class logits (B, num_classes, H, W)."""

    def __init__(self, cfg: SegmenterConfig):
        super().__init__()
        self.cfg = cfg
        widths = [cfg.width * 2 ** i for i in range(cfg.depth + 1)]  # e.g. 32, 64, 128, 256, 512
        w = widths[0]
        self.stem = nn.Sequential(
            nn.Conv2d(3, w, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
            nn.Conv2d(w, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
        )
        self.down = nn.ModuleList(DoubleConv(widths[i], widths[i + 1]) for i in range(cfg.depth))
        self.up = nn.ModuleList(DoubleConv(widths[i + 1] + widths[i], widths[i]) for i in range(cfg.depth))
        self.head = nn.Conv2d(widths[0], cfg.num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_features(x)[0]

    @property
    def feature_dims(self) -> int:
        """Length of the feature vector of :meth:`forward_with_features` (992 for width 32, depth 4)."""
        return sum(self.cfg.width * 2 ** i for i in range(self.cfg.depth + 1))

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (B, num_classes, H, W), features (B, feature_dims)): the features are the means
        over positions of the stem's and every encoder level's activations (after ReLU), from the
        texture of the first level to the layout of the last, concatenated."""
        skips = [self.stem(x)]  # (B, w, H/2, W/2)
        for block in self.down:
            skips.append(block(F.max_pool2d(skips[-1], 2)))  # (B, 2c, H/2, W/2)
        features = torch.cat([s.mean(dim=(2, 3)) for s in skips], dim=1)
        y = skips.pop()
        for block in reversed(self.up):
            skip = skips.pop()
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = block(torch.cat([y, skip], dim=1))
        logits = self.head(y)  # (B, num_classes, H/2, W/2)
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False), features


# ----- reading photos with their classes --------------------------------------------------------
def read_photo_and_classes(pair: PairFile, direction: str = "AtoB",
                           size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(photo (H, W, 3) uint8, trainIds (H, W) uint8) of one pair; ``direction`` AtoB means the
    photo is side A and the label map side B (the Cityscapes layout). With ``size``, both are
    resized to size x size: the photo bicubic, the class map nearest-neighbour (after the colour
    rule, so classes are never blended)."""
    photo, label = source_and_target(direction, *read_pair(pair, 3, 3))
    ids = colours_to_train_ids(label)
    if size is not None and photo.shape[:2] != (size, size):
        x = array_to_tensor(photo)[None].float()
        photo = resize(x, (size, size)).round()[0].to(torch.uint8).permute(1, 2, 0).numpy()  # as segment() does
        ids = np.asarray(Image.fromarray(ids).resize((size, size), Image.NEAREST))
    return photo, ids


def try_read(fn, *args):
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
        return self.segment_with_features(photos)[0].cpu()

    @torch.no_grad()
    def segment_with_features(self, photos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 photos (N, 3, H, W) -> (trainIds (N, H, W) uint8, features (N, feature_dims)
        float32), both left on the segmenter's device (no copy to the host); resized as
        :meth:`segment` does. The features are those of :meth:`SegmentationUNet.forward_with_features`."""
        self.model.eval()
        ids, feats = [], []
        h, w = photos.shape[-2:]
        s = self.cfg.size
        for chunk in photos.split(self.batch_size):
            x = chunk.to(self.device).float()
            if (h, w) != (s, s):
                x = resize(x, (s, s))
            logits, f = self.model.forward_with_features(to_unit_range(x))
            if (h, w) != (s, s):
                logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
            ids.append(logits.argmax(1).to(torch.uint8))
            feats.append(f.float())
        return torch.cat(ids), torch.cat(feats)

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
                chunk = list(pool.map(lambda p: try_read(read_photo_and_classes, p, direction), pairs[start:start + bs]))
                for message in (str(c) for c in chunk if isinstance(c, BadImage)):
                    log.warning("skipped %s", message)
                chunk = [c for c in chunk if not isinstance(c, BadImage)]
                if chunk:
                    preds = self.segment([array_to_tensor(c[0]) for c in chunk])
                    for pred, (_, ids) in zip(preds, chunk):
                        conf += confusion_matrix(pred, ids, NUM_CLASSES)
                n += len(chunk)
                bar.update(min(bs, len(pairs) - start))
        return SegmentationScores.from_confusion(conf), n

    # ----- files --------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Atomically write weights + metadata (architecture, classes, training record)."""
        from safetensors.torch import save

        from ..fileio import writing

        path = Path(path)
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        meta = {"format": FORMAT, "version": str(VERSION), "config": json.dumps(self.cfg.to_dict()),
                "classes": json.dumps(list(CLASS_NAMES)), "info": json.dumps(self.info)}
        with writing(path, "the previous save is unchanged" if path.exists() else "nothing was saved"):
            path.parent.mkdir(parents=True, exist_ok=True)
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
