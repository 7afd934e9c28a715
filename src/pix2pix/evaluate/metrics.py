"""Scores: the paper's segmentation figures (from a confusion matrix) and PSNR / SSIM / L1.

Segmentation, as the paper's evaluation code (``scripts/eval_cityscapes``) computes it::

    conf = confusion_matrix(pred_ids, target_ids, num_classes=19)   # summed over the whole set
    s = SegmentationScores.from_confusion(conf)
    s.pixel_accuracy, s.class_accuracy, s.class_iou                   # fractions in [0, 1]

``conf[t, p]`` counts pixels of target class ``t`` predicted as ``p``; targets outside
``0..num_classes-1`` (void, 255) are not scored, and a prediction outside the classes (a generated
pixel nearest to a void colour) goes to an extra last column, so it counts as a miss.

Image similarity on 8-bit images (H, W, C), the way they are stored on disk: :func:`psnr` (peak
255), :func:`ssim` (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03, mean over
the valid window positions and the channels) and :func:`l1` (mean absolute difference on the
model's [-1, 1] scale, the same units as the ``G_L1`` training loss).

``evaluate`` scores whole batches where they are (on the evaluation device, float64, no copy to
the host per image) with :func:`batch_image_scores` and :func:`confusion_counts`; the per-image
NumPy functions are the definitions, and the tests hold the batched ones to them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F


# ----- segmentation -----------------------------------------------------------------------------
def confusion_matrix(pred: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor,
                     num_classes: int) -> np.ndarray:
    """(num_classes, num_classes + 1) int64 counts; rows = target class, columns = predicted class.

    ``pred`` and ``target`` are integer class maps of the same shape. Target values outside
    ``[0, num_classes)`` are ignored; predicted values outside it are counted in the last column.
    """
    p = torch.as_tensor(np.asarray(pred) if not isinstance(pred, torch.Tensor) else pred)
    t = torch.as_tensor(np.asarray(target) if not isinstance(target, torch.Tensor) else target)
    return confusion_counts(p, t, num_classes).cpu().numpy()


def confusion_counts(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """:func:`confusion_matrix` on tensors of any shape (e.g. a batch (B, H, W)), left on their device."""
    p, t = pred.reshape(-1).long(), target.reshape(-1).long()
    if p.shape != t.shape:
        raise ValueError(f"prediction and target differ in size: {tuple(p.shape)} vs {tuple(t.shape)}")
    k = num_classes
    keep = (t >= 0) & (t < k)
    p = torch.where((p >= 0) & (p < k), p, torch.full_like(p, k))
    index = torch.where(keep, t * (k + 1) + p, torch.full_like(p, k * (k + 1)))  # not scored: a spare bin
    return torch.bincount(index, minlength=k * (k + 1) + 1)[:-1].reshape(k, k + 1)


@dataclass
class SegmentationScores:
    """The three figures of the paper's tables and the per-class numbers behind them.

    ``per_class_accuracy[c]`` = correct pixels of class c / pixels of class c (NaN if the class
    does not occur in the targets); ``per_class_iou[c]`` = TP / (TP + FP + FN) (NaN if the class
    occurs in neither targets nor predictions). The means skip NaNs.
    """

    pixel_accuracy: float
    class_accuracy: float
    class_iou: float
    per_class_accuracy: np.ndarray  # (K,)
    per_class_iou: np.ndarray  # (K,)
    pixels: np.ndarray  # (K,) target pixels per class
    scored_pixels: int

    @classmethod
    def from_confusion(cls, conf: np.ndarray) -> "SegmentationScores":
        conf = np.asarray(conf, dtype=np.float64)
        k = conf.shape[0]
        tp = np.diag(conf[:, :k])
        gt = conf.sum(1)  # every target pixel of the class, the "outside" column included
        predicted = conf[:, :k].sum(0)
        total = gt.sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            acc = np.where(gt > 0, tp / gt, np.nan)
            union = gt + predicted - tp
            iou = np.where(union > 0, tp / union, np.nan)
        return cls(
            pixel_accuracy=float(tp.sum() / total) if total else math.nan,
            class_accuracy=_nanmean(acc),
            class_iou=_nanmean(iou),
            per_class_accuracy=acc,
            per_class_iou=iou,
            pixels=gt.astype(np.int64),
            scored_pixels=int(total),
        )

    def as_dict(self) -> dict[str, float]:
        return {"pixel_accuracy": self.pixel_accuracy, "class_accuracy": self.class_accuracy,
                "class_iou": self.class_iou}

    def per_class(self, names: Sequence[str]) -> list[dict]:
        """One dict per class: train_id, name, accuracy, iou, pixels (NaN written as None)."""
        return [{"train_id": i, "name": n, "accuracy": _none_if_nan(self.per_class_accuracy[i]),
                 "iou": _none_if_nan(self.per_class_iou[i]), "pixels": int(self.pixels[i])}
                for i, n in enumerate(names)]


def _nanmean(x: np.ndarray) -> float:
    x = x[~np.isnan(x)]
    return float(x.mean()) if x.size else math.nan


def _none_if_nan(v: float) -> float | None:
    return None if math.isnan(v) else float(v)


# ----- image similarity -------------------------------------------------------------------------
def _as_float(image: np.ndarray) -> np.ndarray:
    a = np.asarray(image, dtype=np.float64)
    return a[:, :, None] if a.ndim == 2 else a


def _check_pair(pred: np.ndarray, target: np.ndarray) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"prediction and target differ in shape: {pred.shape} vs {target.shape}")


def psnr(pred: np.ndarray, target: np.ndarray, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB of two 8-bit images (H, W[, C]); inf when identical."""
    p, t = _as_float(pred), _as_float(target)
    _check_pair(p, t)
    mse = float(np.mean((p - t) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(data_range ** 2 / mse)


def l1(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean absolute difference of two 8-bit images on the [-1, 1] scale (0 = identical, max 2)."""
    p, t = _as_float(pred), _as_float(target)
    _check_pair(p, t)
    return float(np.mean(np.abs(p - t)) / 127.5)


def gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    """Normalised 1-D Gaussian of ``size`` taps (the 2-D window is its outer product)."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(x ** 2) / (2.0 * sigma ** 2))
    return g / g.sum()


def ssim(pred: np.ndarray, target: np.ndarray, data_range: float = 255.0, window: int = 11,
         sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03) -> float:
    """Structural similarity (Wang et al. 2004) of two 8-bit images (H, W[, C]), in [-1, 1].

    Local means, variances and covariance use an 11x11 Gaussian window (sigma 1.5) at every
    position where it fits inside the image ("valid"); the SSIM map is averaged over positions and
    then over channels. Images smaller than the window give NaN. No automatic downsampling (the
    original MATLAB code downsamples images larger than 256 pixels; at 256x256 the two agree).
    """
    p, t = _as_float(pred), _as_float(target)
    _check_pair(p, t)
    if p.shape[0] < window or p.shape[1] < window:
        return math.nan
    x = torch.from_numpy(np.ascontiguousarray(p.transpose(2, 0, 1)))[:, None]  # (C, 1, H, W)
    y = torch.from_numpy(np.ascontiguousarray(t.transpose(2, 0, 1)))[:, None]
    g = torch.from_numpy(gaussian_window(window, sigma))

    def blur(z: torch.Tensor) -> torch.Tensor:  # separable valid convolution
        z = F.conv2d(z, g.view(1, 1, 1, -1))
        return F.conv2d(z, g.view(1, 1, -1, 1))

    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x ** 2
    var_y = blur(y * y) - mu_y ** 2
    cov = blur(x * y) - mu_x * mu_y
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return float(s.mean(dim=(1, 2, 3)).mean())


def blur_valid(planes: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable "valid" correlation of (N, C, H, W) planes with the 1-D window ``g`` (along W,
    then H): (N, C, H - k + 1, W - k + 1), in float32 as depthwise convolutions (channels-last:
    oneDNN's fast path on CPUs; TF32 off on GPUs, so every product is full float32)."""
    c = planes.shape[1]
    w = g.float()
    x = planes.float().contiguous(memory_format=torch.channels_last)
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        x = F.conv2d(x, w.view(1, 1, 1, -1).expand(c, 1, 1, -1).contiguous(), groups=c)
        return F.conv2d(x, w.view(1, 1, -1, 1).expand(c, 1, -1, 1).contiguous(), groups=c)


def batch_image_scores(pred: torch.Tensor, target: torch.Tensor, window: int = 11, sigma: float = 1.5,
                       k1: float = 0.01, k2: float = 0.03) -> dict[str, torch.Tensor]:
    """PSNR, SSIM and L1 of each image of a batch: uint8 (B, C, H, W) tensors of the same shape ->
    float64 (B,) tensors on their device, as :func:`psnr` / :func:`ssim` / :func:`l1` define them."""
    if pred.shape != target.shape:
        raise ValueError(f"prediction and target differ in shape: {tuple(pred.shape)} vs {tuple(target.shape)}")
    b, c, h, w = pred.shape
    diff = pred.to(torch.int32) - target.to(torch.int32)  # exact sums in int64
    n = c * h * w
    mse = diff.pow(2).sum(dim=(1, 2, 3), dtype=torch.int64).double() / n
    out = {"psnr": torch.where(mse > 0, 10.0 * torch.log10(255.0 ** 2 / mse), torch.full_like(mse, math.inf)),
           "ssim": torch.full_like(mse, math.nan),
           "l1": diff.abs().sum(dim=(1, 2, 3), dtype=torch.int64).double() / (n * 127.5)}
    if h < window or w < window:
        return out
    g = torch.from_numpy(gaussian_window(window, sigma)).to(pred.device)
    if b > 8:  # 8 images at a time: their planes stay in the CPU's cache (25 % faster than 16 here)
        out["ssim"] = torch.cat([_ssim(pred[i:i + 8], target[i:i + 8], g, k1, k2) for i in range(0, b, 8)])
    else:
        out["ssim"] = _ssim(pred, target, g, k1, k2)
    return out


def _ssim(pred: torch.Tensor, target: torch.Tensor, g: torch.Tensor, k1: float, k2: float) -> torch.Tensor:
    b, c = pred.shape[:2]
    # the five local means at once, of values centred on 127.5 (a blur of a constant is that
    # constant, so variances are unchanged and float32 sums stay 4x smaller); all in float32:
    # within 2e-6 of the float64 definition on 8-bit images (tests)
    x, y = pred.float().sub_(127.5), target.float().sub_(127.5)
    means = blur_valid(torch.cat([x, y, x * x, y * y, x * y], dim=1), g)
    # back to planes (NCHW) so that each mean is contiguous for the arithmetic below, done in
    # place: about 25 % less time than on the channels-last views
    mx, my, xx, yy, xy = means.contiguous().view(b, 5, c, *means.shape[2:]).unbind(1)
    c1, c2 = (k1 * 255.0) ** 2, (k2 * 255.0) ** 2
    ux, uy = mx + 127.5, my + 127.5
    luminance = torch.mul(ux, uy).mul_(2).add_(c1)  # 2 ux uy + c1
    structure = torch.mul(mx, my).mul_(-2).add_(xy, alpha=2).add_(c2)  # 2 cov + c2
    den_l = ux.mul_(ux).addcmul_(uy, uy).add_(c1)  # ux^2 + uy^2 + c1
    den_s = xx.add_(yy).addcmul_(mx, mx, value=-1).addcmul_(my, my, value=-1).add_(c2)  # var x + var y + c2
    s = luminance.mul_(structure).div_(den_l.mul_(den_s))
    return s.sum(dim=(2, 3), dtype=torch.float64).div_(s.shape[2] * s.shape[3]).mean(dim=1)


def image_scores(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """PSNR, SSIM and L1 of one prediction against its target (both 8-bit, same shape)."""
    return {"psnr": psnr(pred, target), "ssim": ssim(pred, target), "l1": l1(pred, target)}
