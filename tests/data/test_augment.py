"""Paired jitter: both sides get the same resize, crop and flip; shapes and ranges per mode."""

from __future__ import annotations

import pytest
import torch

from pix2pix.config import DataConfig
from pix2pix.data.augment import crop_and_flip, eval_transform, paired_jitter
from pix2pix.data.convert import to_uint8, to_unit_range


def noise_batch(n=8, c=3, h=40, w=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, c, h, w), generator=g, dtype=torch.uint8)


@pytest.mark.parametrize("preprocess", ["resize_and_crop", "resize", "crop", "none"])
def test_jitter_keeps_pairs_aligned(preprocess):
    # B is a known pixel-wise function of A (inverted, channels reversed): any misalignment breaks it
    a = noise_batch()
    b = (255 - a).flip(1)
    cfg = DataConfig(load_size=48, crop_size=32, preprocess=preprocess)
    src, tgt = paired_jitter(a, b, cfg, torch.Generator().manual_seed(1))
    torch.testing.assert_close(tgt, (-src).flip(1), atol=1e-5, rtol=0)


def test_jitter_with_different_channel_counts_stays_aligned():
    a = noise_batch(c=1)
    b = torch.cat([a, 255 - a, a], dim=1)
    cfg = DataConfig(load_size=48, crop_size=32)
    src, tgt = paired_jitter(a, b, cfg, torch.Generator().manual_seed(2))
    assert src.shape == (8, 1, 32, 32) and tgt.shape == (8, 3, 32, 32)
    torch.testing.assert_close(tgt[:, :1], src, atol=1e-5, rtol=0)
    torch.testing.assert_close(tgt[:, 1:2], -src, atol=1e-5, rtol=0)


@pytest.mark.parametrize("preprocess,size", [("resize_and_crop", 32), ("resize", 48), ("crop", 32), ("none", 40)])
def test_output_size_and_range(preprocess, size):
    a = noise_batch()
    cfg = DataConfig(load_size=48, crop_size=32, preprocess=preprocess)
    src, tgt = paired_jitter(a, a, cfg, torch.Generator().manual_seed(0))
    assert src.shape == (8, 3, size, size)
    assert src.dtype == torch.float32 and src.min() >= -1 and src.max() <= 1


def test_crops_and_flips_vary_and_flip_can_be_turned_off():
    a = noise_batch(n=1).expand(64, -1, -1, -1).contiguous()
    cfg = DataConfig(load_size=40, crop_size=32, preprocess="crop")
    src, _ = paired_jitter(a, a, cfg, torch.Generator().manual_seed(3))
    distinct = {tuple(x.flatten()[:16].tolist()) for x in src}
    assert len(distinct) > 20  # different crops/flips of the same image
    flipped = 0
    for x in src:  # each output is a crop of the original or of its mirror image
        found = None
        for mirror in (False, True):
            full = a[0].flip(-1) if mirror else a[0]
            full = to_unit_range(full)
            for top in range(9):
                for left in range(9):
                    if torch.equal(full[:, top:top + 32, left:left + 32], x):
                        found = mirror
        assert found is not None
        flipped += found
    assert 10 < flipped < 54
    cfg = DataConfig(load_size=40, crop_size=32, preprocess="none", flip=False)
    src, _ = paired_jitter(a, a, cfg, torch.Generator().manual_seed(3))
    assert torch.equal(src, to_unit_range(a))


def test_same_generator_state_gives_same_batch():
    a = noise_batch()
    cfg = DataConfig(load_size=48, crop_size=32)
    x1, _ = paired_jitter(a, a, cfg, torch.Generator().manual_seed(7))
    x2, _ = paired_jitter(a, a, cfg, torch.Generator().manual_seed(7))
    x3, _ = paired_jitter(a, a, cfg, torch.Generator().manual_seed(8))
    assert torch.equal(x1, x2) and not torch.equal(x1, x3)


def test_crop_and_flip_matches_slicing():
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).reshape(2, 1, 6, 6)
    out = crop_and_flip(x, 3, torch.tensor([1, 2]), torch.tensor([0, 3]), torch.tensor([False, True]))
    assert torch.equal(out[0], x[0, :, 1:4, 0:3])
    assert torch.equal(out[1], x[1, :, 2:5, 3:6].flip(-1))


def test_eval_transform_is_deterministic_centre_crop():
    a = noise_batch()
    cfg = DataConfig(load_size=48, crop_size=32, preprocess="crop")
    src, _ = eval_transform(a, a, cfg)
    assert torch.equal(src, to_unit_range(a[:, :, 4:36, 4:36]))
    cfg = DataConfig(load_size=48, crop_size=32)
    src, _ = eval_transform(a, a, cfg)
    assert src.shape == (8, 3, 32, 32)


def test_uint8_round_trip():
    a = noise_batch()
    assert torch.equal(to_uint8(to_unit_range(a)), a)
