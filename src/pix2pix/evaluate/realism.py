"""Realism scores on feature vectors: the Frechet distance and the kernel (KID) distance between
the features of generated images and those of real ones.

    scores = realism(fake_features, real_features)    # (N, D) each, row i of both from pair i
    scores["frechet"], scores["kid"], scores["halves"]["real_vs_real"]["frechet"]

Two feature spaces use them (docs/evaluation.md):

- **FID / KID**, on the 2048-d pool features of the TF-FID Inception (``inception.py``), computed
  with torchmetrics (``FrechetInceptionDistance`` / ``KernelInceptionDistance``, the optional
  ``[metrics]`` extra) by :func:`inception_scores`;
- **the segmenter's feature space** (``Segmenter.segment_with_features``), which needs no download
  and no extra: :func:`realism` with our own arithmetic below, checked against NumPy / SciPy and
  against torchmetrics in the tests.

The arithmetic, in float64:

- Frechet distance ``|mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^(1/2))`` with the sample
  covariances (divisor n - 1). ``tr((S_a S_b)^(1/2))`` is the sum of the singular values of
  ``A B' / sqrt((n-1)(m-1))`` (A, B the centred features), an (n, m) problem, when there are no more
  images than dimensions (500 val photos, 2048 or 992 dimensions); otherwise the sum of the square
  roots of the eigenvalues of the symmetric ``S_a^(1/2) S_b S_a^(1/2)``. Both are exact.
- KID: the unbiased estimate of the squared MMD with the kernel ``k(x, y) = (x.y / D + 1)^3``. With
  more than ``subset_size`` (1000) images per side, the mean and standard deviation over
  ``subsets`` (100) random subsets of ``subset_size`` (torch-fidelity's protocol); with fewer, the
  protocol's subsets would each be the whole set, so it is computed once on all images (std None).

``realism`` also reports the **real-vs-real floor**: the images are split into two halves by
position (even / odd), and the distance of the generated images of one half to the real images of
the other half is set beside the distance between the two halves of the real images. Both compare
the same numbers of images (the Frechet distance is biased upwards for small sets, so only
equal-sized comparisons are fair), and neither pairs an image with its own source.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
import torch.nn as nn

from ..errors import ConfigError

SUBSETS, SUBSET_SIZE = 100, 1000  # KID, as torch-fidelity


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to the rows of ``a`` (n, D) and ``b`` (m, D)."""
    n, m, d = a.shape[0], b.shape[0], a.shape[1]
    if n < 2 or m < 2:
        return math.nan
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = a - mu_a, b - mu_b  # S_a = ca' ca / (n - 1), S_b = cb' cb / (m - 1)
    if min(n, m) <= d:
        # the non-zero eigenvalues of S_a S_b are the squared singular values of ca cb' / sqrt((n-1)(m-1)):
        # exact, and an (n, m) problem instead of a (D, D) one
        tr_sqrt = torch.linalg.svdvals(ca @ cb.T).sum() / math.sqrt((n - 1) * (m - 1))
    else:
        s_a, s_b = ca.T @ ca / (n - 1), cb.T @ cb / (m - 1)
        w, v = torch.linalg.eigh(s_a)
        r = (v * w.clamp(min=0).sqrt()) @ v.T  # S_a^(1/2)
        inner = r @ s_b @ r
        tr_sqrt = torch.linalg.eigvalsh((inner + inner.T) / 2).clamp(min=0).sqrt().sum()
    traces = ca.pow(2).sum() / (n - 1) + cb.pow(2).sum() / (m - 1)
    return float((mu_a - mu_b).pow(2).sum() + traces - 2 * tr_sqrt)


def mmd2_unbiased(a: torch.Tensor, b: torch.Tensor) -> float:
    """Unbiased squared MMD of the rows of ``a`` (n, D) and ``b`` (m, D), cubic polynomial kernel."""
    a, b = a.double(), b.double()
    n, m, d = a.shape[0], b.shape[0], a.shape[1]
    k_aa, k_bb, k_ab = ((x @ y.T / d + 1) ** 3 for x, y in ((a, a), (b, b), (a, b)))
    return float((k_aa.sum() - k_aa.trace()) / (n * (n - 1)) + (k_bb.sum() - k_bb.trace()) / (m * (m - 1))
                 - 2 * k_ab.sum() / (n * m))


def kid(a: torch.Tensor, b: torch.Tensor, subsets: int = SUBSETS, subset_size: int = SUBSET_SIZE,
        seed: int = 0) -> dict[str, Any]:
    """KID as described above: ``{"mean", "std", "subsets", "subset_size"}`` (std None on the whole set)."""
    n = min(a.shape[0], b.shape[0])
    if n < 2:
        return {"mean": math.nan, "std": None, "subsets": 0, "subset_size": n}
    if n <= subset_size:
        return {"mean": mmd2_unbiased(a, b), "std": None, "subsets": 1, "subset_size": n}
    gen = torch.Generator().manual_seed(seed)
    values = torch.tensor([mmd2_unbiased(a[torch.randperm(a.shape[0], generator=gen)[:subset_size].to(a.device)],
                                         b[torch.randperm(b.shape[0], generator=gen)[:subset_size].to(b.device)])
                           for _ in range(subsets)], dtype=torch.float64)
    return {"mean": float(values.mean()), "std": float(values.std(unbiased=False)), "subsets": subsets,
            "subset_size": subset_size}


def halves(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions of the two halves of ``n`` images: even and odd (equal sizes; one left out if n is odd)."""
    idx = torch.arange(n - n % 2)
    return idx[0::2], idx[1::2]


def halves_floor(fake: torch.Tensor, real: torch.Tensor) -> dict[str, Any] | None:
    """The halves comparison: generated photos of the even half against real photos of the odd
    half, beside real against real (the floor); None with fewer than 4 images."""
    a, b = halves(min(fake.shape[0], real.shape[0]))
    if len(a) < 2:
        return None
    gen = {"frechet": frechet_distance(fake[a], real[b]), "kid": kid(fake[a], real[b])}
    floor = {"frechet": frechet_distance(real[a], real[b]), "kid": kid(real[a], real[b])}
    return {"images": [len(a), len(b)], "split": "even / odd positions", "generated_vs_real": gen,
            "real_vs_real": floor,
            "frechet_ratio": gen["frechet"] / floor["frechet"] if floor["frechet"] > 0 else math.nan}


def realism(fake: torch.Tensor, real: torch.Tensor) -> dict[str, Any]:
    """Frechet distance and KID of ``fake`` to ``real`` (rows i of both from pair i), and the
    halves comparison with its real-vs-real floor. Runs on the features' device."""
    out: dict[str, Any] = {"images": [fake.shape[0], real.shape[0]], "dims": fake.shape[1],
                           "frechet": frechet_distance(fake, real), "kid": kid(fake, real)}
    h = halves_floor(fake, real)
    if h is not None:
        out["halves"] = h
    return out


# ----- FID and KID with torchmetrics ------------------------------------------------------------
class Passthrough(nn.Module):
    """A "feature extractor" that returns its input: torchmetrics gets features computed once."""

    def __init__(self, dims: int):
        super().__init__()
        self.num_features = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def metrics_extra():
    """torchmetrics' FID and KID classes, or a one-line ConfigError saying how to install them."""
    try:
        from torchmetrics.image.fid import FrechetInceptionDistance
        from torchmetrics.image.kid import KernelInceptionDistance
    except (ImportError, RuntimeError) as e:  # RuntimeError: a broken torchvision beside torch
        raise ConfigError(f"FID / KID need the metrics extra: pip install 'pix2pix[metrics]' "
                          f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    return FrechetInceptionDistance, KernelInceptionDistance


def isometric_copy(fake: torch.Tensor, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both feature sets in an orthonormal basis of the affine subspace they span (n + m - 1
    dimensions when that is fewer than D), or as they are. The Frechet distance does not change
    under translations and rotations, and nothing varies outside that subspace, so the FID of the
    copy is the FID of the originals, from an (n + m - 1)-sized eigenvalue problem instead of
    torchmetrics' (D, D) one (2048: tens of seconds on a CPU). KID depends on the origin: not for it."""
    n, m, d = fake.shape[0], real.shape[0], fake.shape[1]
    if n + m - 1 >= d:
        return fake, real
    origin = real.mean(0)
    q, _ = torch.linalg.qr(torch.cat([fake, real]).sub(origin).T)  # (D, n + m), orthonormal columns
    return (fake - origin) @ q, (real - origin) @ q


def torchmetrics_fid_kid(fake: torch.Tensor, real: torch.Tensor, seed: int = 0) -> dict[str, Any]:
    """FID and KID of two feature sets with torchmetrics (float64, on the CPU): ``{"fid", "kid"}``,
    FID on :func:`isometric_copy`, KID's subsets as in :func:`kid` (one subset of all images when
    there are at most 1000)."""
    fid_cls, kid_cls = metrics_extra()
    fake, real = fake.detach().double().cpu(), real.detach().double().cpu()
    d = fake.shape[1]
    small_fake, small_real = isometric_copy(fake, real)
    fid = fid_cls(feature=Passthrough(small_fake.shape[1]), normalize=False)
    fid.update(small_real, real=True)
    fid.update(small_fake, real=False)
    n = min(fake.shape[0], real.shape[0])
    size = min(SUBSET_SIZE, n)
    with warnings.catch_warnings():  # "will save all extracted features": 2048 floats per image, as intended
        warnings.simplefilter("ignore", UserWarning)
        kid_metric = kid_cls(feature=Passthrough(d), subsets=SUBSETS if n > SUBSET_SIZE else 1, subset_size=size,
                             normalize=False)
    kid_metric.update(real, real=True)
    kid_metric.update(fake, real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # KID's subsets come from torch's global generator
        kid_mean, kid_std = (float(v) for v in kid_metric.compute())
    return {"fid": float(fid.compute()),
            "kid": {"mean": kid_mean, "std": kid_std if n > SUBSET_SIZE else None,
                    "subsets": SUBSETS if n > SUBSET_SIZE else 1, "subset_size": size}}


def inception_scores(fake: torch.Tensor, real: torch.Tensor) -> dict[str, Any]:
    """FID / KID of all images with torchmetrics, and the halves floor of :func:`halves_floor` (the
    same formulas, which the tests hold to torchmetrics)."""
    out: dict[str, Any] = {"images": [fake.shape[0], real.shape[0]], "dims": fake.shape[1],
                           **torchmetrics_fid_kid(fake, real)}
    h = halves_floor(fake, real)
    if h is not None:
        out["halves"] = {**h, "generated_vs_real": {"fid": h["generated_vs_real"]["frechet"],
                                                    "kid": h["generated_vs_real"]["kid"]},
                         "real_vs_real": {"fid": h["real_vs_real"]["frechet"], "kid": h["real_vs_real"]["kid"]}}
        out["halves"]["fid_ratio"] = out["halves"].pop("frechet_ratio")
    return out
