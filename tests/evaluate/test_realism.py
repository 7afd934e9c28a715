"""Frechet distance and KID against an independent NumPy / SciPy computation, torchmetrics' FID /
KID on the same features, and the real-vs-real floor of the halves comparison."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pix2pix.evaluate.realism import frechet_distance, halves, kid, mmd2_unbiased, realism

scipy_linalg = pytest.importorskip("scipy.linalg")


def fid_sqrtm(f1: np.ndarray, f2: np.ndarray) -> float:
    """The textbook formula with SciPy's matrix square root (TTUR / pytorch-fid style)."""
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean = scipy_linalg.sqrtm(s1 @ s2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean.real))


def fid_eigvals(f1: np.ndarray, f2: np.ndarray) -> float:
    """tr sqrt(S1 S2) from the eigenvalues of S1 S2 (torch-fidelity's way), robust when n < d."""
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    tr = np.sqrt(np.linalg.eigvals(s1 @ s2).astype(complex)).real.sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr)


def fid_low_rank(f1: np.ndarray, f2: np.ndarray) -> float:
    """For n < d (Inception features of a few images): tr sqrt(S1 S2) from the singular values of
    the (n, m) product of the centred features; NumPy only."""
    c1, c2 = f1 - f1.mean(0), f2 - f2.mean(0)
    n, m = len(f1), len(f2)
    tr = np.linalg.svd(c1 @ c2.T, compute_uv=False).sum() / np.sqrt((n - 1) * (m - 1))
    return float(((f1.mean(0) - f2.mean(0)) ** 2).sum() + (c1 ** 2).sum() / (n - 1) + (c2 ** 2).sum() / (m - 1)
                 - 2 * tr)


def mmd_np(f1: np.ndarray, f2: np.ndarray) -> float:
    d = f1.shape[1]
    k = lambda a, b: (a @ b.T / d + 1.0) ** 3  # noqa: E731
    kxx, kyy, kxy = k(f1, f1), k(f2, f2), k(f1, f2)
    m, n = len(f1), len(f2)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2 * kxy.sum() / (m * n))


@pytest.fixture(scope="module")
def features():
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(48, 48)) / 7
    a = rng.normal(size=(300, 48)) @ mix
    b = (rng.normal(size=(300, 48)) * 1.3 + 0.2) @ mix
    return a, b


def test_frechet_distance_equals_scipy_full_rank_and_rank_deficient(features):
    a, b = features
    ours = frechet_distance(torch.from_numpy(a), torch.from_numpy(b))
    assert ours == pytest.approx(fid_sqrtm(a, b), rel=1e-8)
    assert ours == pytest.approx(fid_eigvals(a, b), rel=1e-8)
    # fewer images than dimensions (as 250 Cityscapes photos in a 992-d space): singular covariances
    few_a, few_b = a[:20], b[20:40]
    ours = frechet_distance(torch.from_numpy(few_a), torch.from_numpy(few_b))
    assert ours == pytest.approx(fid_eigvals(few_a, few_b), rel=1e-6)
    assert fid_low_rank(few_a, few_b) == pytest.approx(fid_eigvals(few_a, few_b), rel=1e-6)
    assert frechet_distance(torch.from_numpy(a), torch.from_numpy(a)) == pytest.approx(0.0, abs=1e-8)
    assert np.isnan(frechet_distance(torch.from_numpy(a[:1]), torch.from_numpy(b)))


def test_kid_equals_numpy_on_the_whole_set_and_on_subsets(features):
    a, b = features
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    whole = kid(ta, tb)
    assert whole["subsets"] == 1 and whole["std"] is None and whole["subset_size"] == 300
    assert whole["mean"] == pytest.approx(mmd_np(a, b), rel=1e-10)
    assert mmd2_unbiased(ta, ta[torch.randperm(300)]) == pytest.approx(mmd_np(a, a), rel=1e-10)
    sub = kid(ta, tb, subsets=5, subset_size=40, seed=3)
    gen = torch.Generator().manual_seed(3)  # the same subsets, replayed
    values = [mmd_np(a[torch.randperm(300, generator=gen)[:40].numpy()], b[torch.randperm(300, generator=gen)[:40].numpy()])
              for _ in range(5)]
    assert sub["mean"] == pytest.approx(np.mean(values), rel=1e-10)
    assert sub["std"] == pytest.approx(np.std(values), rel=1e-8)


def test_torchmetrics_fid_and_kid_equal_the_same_formulas(features):
    pytest.importorskip("torchmetrics", reason="the metrics extra is not installed (pip install -e '.[metrics]')")
    from pix2pix.evaluate.realism import inception_scores, torchmetrics_fid_kid

    a, b = features
    r = torchmetrics_fid_kid(torch.from_numpy(a), torch.from_numpy(b))
    assert r["fid"] == pytest.approx(fid_sqrtm(a, b), rel=1e-8)
    assert r["kid"]["mean"] == pytest.approx(mmd_np(a, b), rel=1e-8) and r["kid"]["std"] is None
    few = torchmetrics_fid_kid(torch.from_numpy(a[:20]), torch.from_numpy(b[:12]))  # n + m < d: the isometric copy
    assert few["fid"] == pytest.approx(fid_low_rank(a[:20], b[:12]), rel=1e-8)
    full = inception_scores(torch.from_numpy(a), torch.from_numpy(b))
    assert full["fid"] == pytest.approx(r["fid"], rel=1e-12)
    even, odd = np.arange(0, 300, 2), np.arange(1, 300, 2)
    assert full["halves"]["real_vs_real"]["fid"] == pytest.approx(fid_sqrtm(b[even], b[odd]), rel=1e-6)
    assert full["halves"]["generated_vs_real"]["fid"] == pytest.approx(fid_sqrtm(a[even], b[odd]), rel=1e-6)
    assert full["halves"]["fid_ratio"] > 1


def test_the_halves_floor_compares_equal_numbers_of_different_images(features):
    a, b = features
    first, second = halves(7)
    assert first.tolist() == [0, 2, 4] and second.tolist() == [1, 3, 5]
    real = torch.from_numpy(b)
    same = realism(real.clone(), real)  # "generated" images that are the real ones: at the floor
    h = same["halves"]
    assert h["images"] == [150, 150]
    assert h["generated_vs_real"]["frechet"] == pytest.approx(h["real_vs_real"]["frechet"], rel=1e-12)
    assert h["frechet_ratio"] == pytest.approx(1.0) and h["real_vs_real"]["frechet"] > 0  # halves differ
    assert same["frechet"] == pytest.approx(0.0, abs=1e-8)  # all images against themselves
    off = realism(torch.from_numpy(a), real)["halves"]
    assert off["frechet_ratio"] > 1.2 and off["generated_vs_real"]["kid"]["mean"] > off["real_vs_real"]["kid"]["mean"]
    even, odd = np.arange(0, 300, 2), np.arange(1, 300, 2)
    assert off["generated_vs_real"]["frechet"] == pytest.approx(fid_sqrtm(a[even], b[odd]), rel=1e-8)
