"""Metrics: exact values on hand-made label maps, the Cityscapes colour rule under JPEG noise, and
PSNR / SSIM / L1 against formulas written out independently here."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image

from pix2pix.evaluate.cityscapes import (
    CLASS_NAMES,
    IGNORE,
    LABELS,
    NUM_CLASSES,
    PALETTE,
    PALETTE_TRAIN_IDS,
    colours_to_train_ids,
    train_ids_to_colours,
)
from pix2pix.evaluate.metrics import SegmentationScores, confusion_matrix, l1, psnr, ssim

ROAD, BUILDING, CAR = 0, 2, 13


def scores(pred, target, k=NUM_CLASSES) -> SegmentationScores:
    return SegmentationScores.from_confusion(confusion_matrix(np.asarray(pred), np.asarray(target), k))


# ----- segmentation scores ----------------------------------------------------------------------
def test_identical_maps_score_one():
    rng = np.random.default_rng(0)
    target = rng.integers(0, NUM_CLASSES, size=(40, 50))
    s = scores(target, target)
    assert s.pixel_accuracy == s.class_accuracy == s.class_iou == 1.0


def test_known_fraction_of_swapped_pixels():
    # 100 pixels: 60 road, 40 building; 10 road pixels predicted as building.
    target = np.array([ROAD] * 60 + [BUILDING] * 40).reshape(10, 10)
    pred = target.copy()
    pred.flat[:10] = BUILDING
    s = scores(pred, target)
    assert s.pixel_accuracy == pytest.approx(0.90, abs=1e-12)
    assert s.per_class_accuracy[ROAD] == pytest.approx(50 / 60) and s.per_class_accuracy[BUILDING] == 1.0
    assert s.class_accuracy == pytest.approx((50 / 60 + 1.0) / 2, abs=1e-12)
    # IoU = TP / (TP + FP + FN): road 50 / (50 + 0 + 10), building 40 / (40 + 10 + 0)
    assert s.per_class_iou[ROAD] == pytest.approx(50 / 60) and s.per_class_iou[BUILDING] == pytest.approx(40 / 50)
    assert s.class_iou == pytest.approx((50 / 60 + 40 / 50) / 2, abs=1e-12)
    assert s.pixels[ROAD] == 60 and s.scored_pixels == 100


def test_void_targets_are_not_scored_and_void_predictions_are_misses():
    target = np.array([[ROAD, ROAD, IGNORE, IGNORE], [CAR, CAR, CAR, CAR]])
    pred = np.array([[ROAD, IGNORE, CAR, ROAD], [CAR, CAR, IGNORE, CAR]])
    s = scores(pred, target)
    assert s.scored_pixels == 6  # the two void target pixels are left out, whatever was predicted there
    assert s.pixel_accuracy == pytest.approx(4 / 6)  # each void prediction is a miss
    assert s.per_class_accuracy[ROAD] == 0.5 and s.per_class_accuracy[CAR] == 0.75
    assert s.per_class_iou[ROAD] == 0.5 and s.per_class_iou[CAR] == 0.75  # misses into void: no FP anywhere


def test_absent_classes_do_not_count_but_false_positives_do():
    target = np.full((4, 4), ROAD)
    pred = target.copy()
    pred[0, :] = CAR  # car never occurs in the target
    s = scores(pred, target)
    assert math.isnan(s.per_class_accuracy[CAR]) and s.per_class_iou[CAR] == 0.0
    assert math.isnan(s.per_class_iou[BUILDING])  # neither in target nor prediction: left out
    assert s.class_accuracy == pytest.approx(12 / 16)  # road only
    assert s.class_iou == pytest.approx((12 / 16 + 0.0) / 2)  # road and car


def test_agrees_with_the_papers_formula_when_every_class_occurs():
    rng = np.random.default_rng(1)
    target = rng.integers(0, NUM_CLASSES, size=(64, 64))
    pred = np.where(rng.random((64, 64)) < 0.7, target, rng.integers(0, NUM_CLASSES, size=(64, 64)))
    n = NUM_CLASSES  # the reference's fast_hist / get_scores, written out again
    hist = np.bincount(n * target.ravel() + pred.ravel(), minlength=n * n).reshape(n, n).astype(float)
    diag = np.diag(hist)
    s = scores(pred, target)
    assert s.pixel_accuracy == pytest.approx(diag.sum() / hist.sum(), abs=1e-12)
    assert s.class_accuracy == pytest.approx(np.mean(diag / hist.sum(1)), abs=1e-12)
    assert s.class_iou == pytest.approx(np.mean(diag / (hist.sum(1) + hist.sum(0) - diag)), abs=1e-12)


# ----- the Cityscapes table and the colour rule -------------------------------------------------
def test_cityscapes_table():
    assert len(CLASS_NAMES) == 19 and CLASS_NAMES[:3] == ("road", "sidewalk", "building")
    assert CLASS_NAMES[-1] == "bicycle" and "parking" not in CLASS_NAMES and "caravan" not in CLASS_NAMES
    assert len(LABELS) == 35 and len(PALETTE) == 29  # 29 distinct colours
    colour = {lb.name: lb.color for lb in LABELS}
    expect = {"pole": 5, "car": 13, "unlabeled": IGNORE, "parking": IGNORE, "trailer": IGNORE, "sky": 10}
    for name, tid in expect.items():  # pole/polegroup and car/license plate share a colour
        assert colours_to_train_ids(np.array([[colour[name]]], np.uint8))[0, 0] == tid, name
    ids = np.arange(NUM_CLASSES, dtype=np.uint8)[None]
    assert np.array_equal(colours_to_train_ids(train_ids_to_colours(ids)), ids)


def test_colour_rule_under_jpeg_noise():
    """A map of 16x16 blocks of every palette colour, stored as the paper's data is (JPEG, 4:2:0):
    block interiors come back exactly; only pixels next to a border can go wrong."""
    rng = np.random.default_rng(0)
    cells = rng.permutation(np.resize(np.arange(len(PALETTE)), 256)).reshape(16, 16)
    index = np.kron(cells, np.ones((16, 16), int))
    truth = PALETTE_TRAIN_IDS[index]
    buf = io.BytesIO()
    Image.fromarray(PALETTE[index]).save(buf, "JPEG", quality=90, subsampling=2)
    decoded = np.asarray(Image.open(buf).convert("RGB"))
    assert np.abs(decoded.astype(int) - PALETTE[index]).max() > 40  # the noise is real
    ids = colours_to_train_ids(decoded)
    yy, xx = np.mgrid[0:256, 0:256] % 16
    inner = (yy >= 3) & (yy < 13) & (xx >= 3) & (xx < 13)
    assert (ids == truth)[inner].all()
    assert (ids == truth).mean() > 0.9


# ----- image similarity -------------------------------------------------------------------------
def test_psnr_and_l1_known_values():
    a = np.full((8, 8, 3), 100, np.uint8)
    b = a + 5
    assert psnr(a, b) == pytest.approx(10 * math.log10(255 ** 2 / 25))
    assert psnr(a, a) == math.inf
    assert l1(a, a + 51) == pytest.approx(0.4)


def reference_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """Wang et al. 2004, eq. 13 with an 11x11 Gaussian window (sigma 1.5), one window at a time."""
    g = np.exp(-((np.arange(11) - 5.0) ** 2) / (2 * 1.5 ** 2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    per_channel = []
    for c in range(x.shape[2]):
        vals = []
        for i in range(x.shape[0] - 10):
            for j in range(x.shape[1] - 10):
                px, py = x[i:i + 11, j:j + 11, c].astype(float), y[i:i + 11, j:j + 11, c].astype(float)
                mx, my = (w * px).sum(), (w * py).sum()
                vx, vy = (w * (px - mx) ** 2).sum(), (w * (py - my) ** 2).sum()
                cov = (w * (px - mx) * (py - my)).sum()
                vals.append((2 * mx * my + c1) * (2 * cov + c2) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2)))
        per_channel.append(np.mean(vals))
    return float(np.mean(per_channel))


def test_ssim_matches_the_papers_definition():
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, size=(20, 23, 3)).astype(np.uint8)
    noisy = np.clip(x + rng.normal(0, 25, x.shape), 0, 255).astype(np.uint8)
    smooth = np.asarray(Image.fromarray(x).resize((11, 10)).resize((23, 20)))
    assert ssim(x, x) == pytest.approx(1.0, abs=1e-12)
    for y in (noisy, smooth, 255 - x):
        assert ssim(x, y) == pytest.approx(reference_ssim(x, y), abs=1e-9)
    assert ssim(x, noisy) > ssim(x, 255 - x)
    assert math.isnan(ssim(x[:8, :8], x[:8, :8]))  # smaller than the window


# ----- the batched versions evaluate uses -------------------------------------------------------
def test_batched_scores_equal_the_per_image_definitions():
    import torch

    from pix2pix.evaluate.metrics import batch_image_scores

    rng = np.random.default_rng(5)
    target = rng.integers(0, 256, size=(3, 24, 30, 3), dtype=np.uint8)
    pred = np.clip(target.astype(int) + rng.integers(-40, 41, size=target.shape), 0, 255).astype(np.uint8)
    pred[1] = target[1]  # identical: PSNR inf
    t = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2).contiguous()  # noqa: E731
    got = batch_image_scores(t(pred), t(target))
    for i in range(3):
        assert got["psnr"][i].item() == pytest.approx(psnr(pred[i], target[i]), abs=1e-9)
        assert got["ssim"][i].item() == pytest.approx(ssim(pred[i], target[i]), abs=2e-6)  # float32
        assert got["l1"][i].item() == pytest.approx(l1(pred[i], target[i]), abs=1e-12)
    assert math.isinf(got["psnr"][1].item())
    assert torch.isnan(batch_image_scores(t(pred[:, :8, :8]), t(target[:, :8, :8]))["ssim"]).all()


def test_batched_colour_rule_and_confusion_equal_the_per_image_ones():
    import torch

    from pix2pix.evaluate.cityscapes import batch_train_ids
    from pix2pix.evaluate.metrics import confusion_counts

    rng = np.random.default_rng(6)
    maps = rng.integers(0, 256, size=(2, 16, 20, 3), dtype=np.uint8)
    maps[0, 0, 0] = (np.asarray(CLASS_COLORS_OF["road"], int) + CLASS_COLORS_OF["sidewalk"]) // 2  # near a tie
    maps[0, 0, 1] = PALETTE[3]
    ids = batch_train_ids(torch.from_numpy(maps).permute(0, 3, 1, 2).contiguous())
    want = np.stack([colours_to_train_ids(m) for m in maps])
    assert ids.dtype == torch.uint8 and (ids.numpy() == want).all()
    # the colour table persists between batches: a batch of half known, half new colours
    more = np.concatenate([maps[:1], rng.integers(0, 256, size=(1, 16, 20, 3), dtype=np.uint8)])
    again = batch_train_ids(torch.from_numpy(more).permute(0, 3, 1, 2).contiguous())
    assert (again.numpy() == np.stack([colours_to_train_ids(m) for m in more])).all()
    other = np.roll(want, 3, axis=2)
    assert (confusion_counts(ids, torch.from_numpy(other), NUM_CLASSES).numpy()
            == sum(confusion_matrix(want[i], other[i], NUM_CLASSES) for i in range(2))).all()


CLASS_COLORS_OF = {lb.name: lb.color for lb in LABELS}
