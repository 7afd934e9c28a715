"""Reading paired data: both layouts, every format, conversions, and the errors users will hit."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import noise_image, write_ab
from pix2pix.data.images import read_image
from pix2pix.data.pairs import PairedImages, find_pairs
from pix2pix.errors import DataError


def load(root, split="train", **kw):
    kw.setdefault("preprocess", "none")
    return PairedImages.load(root, split, **kw)


def test_side_by_side_and_folder_layouts_give_the_same_tensors(tmp_path):
    a, b = noise_image(16, 16, 1), noise_image(16, 16, 2)
    write_ab(tmp_path / "ab" / "train" / "x.png", a, b)
    for sub in ("train/A", "train/B"):
        (tmp_path / "f1" / sub).mkdir(parents=True)
    Image.fromarray(a).save(tmp_path / "f1" / "train" / "A" / "x.png")
    Image.fromarray(b).save(tmp_path / "f1" / "train" / "B" / "x.png")
    for sub in ("A/train", "B/train"):
        (tmp_path / "f2" / sub).mkdir(parents=True)
    Image.fromarray(a).save(tmp_path / "f2" / "A" / "train" / "x.bmp")
    Image.fromarray(b).save(tmp_path / "f2" / "B" / "train" / "x.png")

    expected_a = torch.from_numpy(a).permute(2, 0, 1)
    expected_b = torch.from_numpy(b).permute(2, 0, 1)
    for layout in ("ab", "f1", "f2"):
        d = load(tmp_path / layout)
        assert d.names == ["x"]
        assert torch.equal(d.source[0], expected_a), layout
        assert torch.equal(d.target[0], expected_b), layout


def test_direction_btoa_swaps_source_and_target(tmp_path):
    a, b = noise_image(8, 8, 1), noise_image(8, 8, 2)
    write_ab(tmp_path / "train" / "p.png", a, b)
    d = load(tmp_path, direction="BtoA")
    assert torch.equal(d.source[0], torch.from_numpy(b).permute(2, 0, 1))
    assert torch.equal(d.target[0], torch.from_numpy(a).permute(2, 0, 1))


@pytest.mark.parametrize("ext,lossless", [(".png", True), (".bmp", True), (".tif", True), (".tiff", True),
                                          (".webp", False), (".jpg", False), (".jpeg", False)])
def test_every_format_is_read(tmp_path, ext, lossless):
    # smooth content so lossy codecs stay close to it
    x = np.linspace(0, 255, 32, dtype=np.float64)
    img = np.stack([np.add.outer(x, x) / 2, np.add.outer(x, 255 - x) / 2, np.full((32, 32), 128.0)], -1)
    img = img.astype(np.uint8)
    path = tmp_path / f"im{ext}"
    Image.fromarray(img).save(path, **({"quality": 95} if not lossless else {}))
    got = read_image(path)
    assert got.shape == (32, 32, 3) and got.dtype == np.uint8
    err = np.abs(got.astype(int) - img.astype(int))
    assert err.max() == 0 if lossless else err.mean() < 4


def test_format_follows_content_not_extension(tmp_path):
    img = noise_image(8, 8)
    Image.fromarray(img).save(tmp_path / "really_png.jpg", format="PNG")
    assert np.array_equal(read_image(tmp_path / "really_png.jpg"), img)


def test_sixteen_bit_is_scaled_to_eight_bits(tmp_path):
    values = np.array([[0, 257 * 100, 65535, 128]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    got = read_image(tmp_path / "deep.png", channels=1)[..., 0]
    assert got.tolist() == [[0, 100, 255, 0]]  # 128 / 257 rounds to 0


def test_grayscale_rgba_and_palette_conversions(tmp_path):
    gray = np.array([[0, 50], [200, 255]], np.uint8)
    Image.fromarray(gray, "L").save(tmp_path / "g.png")
    assert np.array_equal(read_image(tmp_path / "g.png"), np.repeat(gray[..., None], 3, axis=2))

    rgba = noise_image(4, 4, channels=4)
    rgba[..., 3] = 0  # fully transparent: colours are kept as stored
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    assert np.array_equal(read_image(tmp_path / "a.png"), rgba[..., :3])

    pal = Image.new("P", (2, 1))
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    pal.putpixel((0, 0), 0)
    pal.putpixel((1, 0), 1)
    pal.info["transparency"] = 1
    pal.save(tmp_path / "p.png", transparency=1)
    assert read_image(tmp_path / "p.png").tolist() == [[[255, 0, 0], [0, 0, 255]]]

    rgb = noise_image(4, 4)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    luma = read_image(tmp_path / "c.png", channels=1)
    assert luma.shape == (4, 4, 1)
    expected = np.asarray(Image.fromarray(rgb).convert("L"))
    assert np.array_equal(luma[..., 0], expected)


def test_single_channel_model_keeps_one_channel(tmp_path):
    write_ab(tmp_path / "train" / "p.png", noise_image(8, 8, 1), noise_image(8, 8, 2))
    d = load(tmp_path, input_nc=1, output_nc=3)
    assert d.source.shape == (1, 1, 8, 8) and d.target.shape == (1, 3, 8, 8)


def test_exif_orientation_is_applied(tmp_path):
    img = np.zeros((4, 8, 3), np.uint8)
    img[:, :4] = 255  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(img).save(tmp_path / "r.jpg", exif=exif, quality=100)
    got = read_image(tmp_path / "r.jpg")
    assert got.shape == (8, 4, 3)  # upright: taller than wide
    assert got[:4].mean() > 200 and got[4:].mean() < 50  # white half now on top


def test_storage_size_rule(tmp_path):
    write_ab(tmp_path / "same" / "train" / "1.png", noise_image(32, 32), noise_image(32, 32))
    d = PairedImages.load(tmp_path / "same", preprocess="resize_and_crop", load_size=36, crop_size=32)
    assert d.size == (32, 32)  # small enough: stored as is, resized up on the device
    write_ab(tmp_path / "mixed" / "train" / "1.png", noise_image(32, 32), noise_image(32, 32))
    write_ab(tmp_path / "mixed" / "train" / "2.png", noise_image(20, 24), noise_image(20, 24))
    d = PairedImages.load(tmp_path / "mixed", preprocess="resize_and_crop", load_size=36, crop_size=32)
    assert d.size == (36, 36)  # sizes differ: each resized once to load_size
    with pytest.raises(DataError, match=r"2\.png is 24x20 but .*1\.png is 32x32.*--preprocess crop"):
        PairedImages.load(tmp_path / "mixed", preprocess="crop", load_size=36, crop_size=16)


# ----- errors -----------------------------------------------------------------------------------
def test_missing_folder_empty_split_and_missing_partner(tmp_path):
    with pytest.raises(DataError, match="nowhere: dataset folder not found"):
        find_pairs(tmp_path / "nowhere", "train")
    (tmp_path / "empty" / "train").mkdir(parents=True)
    with pytest.raises(DataError, match=r"empty/train: no image files"):
        load(tmp_path / "empty")
    for side in ("A", "B"):
        (tmp_path / "f" / "train" / side).mkdir(parents=True)
    Image.fromarray(noise_image(8, 8)).save(tmp_path / "f" / "train" / "A" / "lonely.png")
    with pytest.raises(DataError, match=r"A/lonely\.png: no partner in .*B \(expected a file named lonely"):
        load(tmp_path / "f")


def test_pair_with_different_sizes_is_an_error(tmp_path):
    for side in ("A", "B"):
        (tmp_path / "train" / side).mkdir(parents=True)
    Image.fromarray(noise_image(8, 8)).save(tmp_path / "train" / "A" / "x.png")
    Image.fromarray(noise_image(8, 10)).save(tmp_path / "train" / "B" / "x.png")
    with pytest.raises(DataError, match=r"A/x\.png is 8x8 but its partner .*B/x\.png is 10x8"):
        load(tmp_path)


def test_undecodable_image_is_skipped_with_a_warning_or_an_error_when_strict(tmp_path, caplog):
    write_ab(tmp_path / "train" / "good.png", noise_image(64, 64), noise_image(64, 64))
    (tmp_path / "train" / "broken.jpg").write_bytes(b"this is not a jpeg")
    data = Image.open(write_ab(tmp_path / "tmp" / "t.jpg", noise_image(64, 64), noise_image(64, 64)))
    raw = (tmp_path / "tmp" / "t.jpg").read_bytes()
    (tmp_path / "train" / "truncated.jpg").write_bytes(raw[: len(raw) // 2])
    data.close()
    with caplog.at_level(logging.WARNING, logger="pix2pix"):
        d = load(tmp_path)
    assert d.names == ["good"]
    assert len(d.skipped) == 2
    assert any("broken.jpg: not an image" in m for m in d.skipped)
    assert any("truncated.jpg: truncated or corrupt" in m for m in d.skipped)
    assert "skipped 2 of 3 pairs" in caplog.text
    with pytest.raises(DataError, match=r"broken\.jpg: not an image"):
        load(tmp_path, strict=True)


def test_a_split_of_only_bad_files_is_an_error(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "zero.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"none of the 1 files could be read; first problem: .*zero\.png: file is empty"):
        load(tmp_path)


def test_missing_val_split_returns_none(tmp_path):
    write_ab(tmp_path / "train" / "1.png", noise_image(8, 8), noise_image(8, 8))
    assert load(tmp_path, "val") is None
