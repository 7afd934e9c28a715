"""pix2pix prepare cityscapes, on a tiny fake gtFine / leftImg8bit tree generated here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pix2pix.cli import main
from pix2pix.data.pairs import PairedImages
from pix2pix.data.prepare import prepare_cityscapes
from pix2pix.errors import DataError

FRAMES = {"train": [("aachen", "000000_000019"), ("aachen", "000001_000019"), ("bremen", "000000_000019")],
          "val": [("lindau", "000000_000019")]}


def flat(colour, h=48, w=96) -> np.ndarray:
    """A Cityscapes-shaped (2:1) image: left half ``colour``, right half its inverse."""
    img = np.zeros((h, w, 3), np.uint8)
    img[:, : w // 2] = colour
    img[:, w // 2:] = 255 - np.array(colour, np.uint8)
    return img


def fake_cityscapes(root: Path, frames=FRAMES) -> tuple[Path, Path]:
    gt, left = root / "gtFine", root / "leftImg8bit"
    for split, items in frames.items():
        for i, (city, frame) in enumerate(items):
            key = f"{city}_{frame}"
            for folder, suffix, colour in ((left, "_leftImg8bit.png", (200, 40 * i, 10)),
                                           (gt, "_gtFine_color.png", (128, 64, 128))):
                (folder / split / city).mkdir(parents=True, exist_ok=True)
                Image.fromarray(flat(colour)).save(folder / split / city / f"{key}{suffix}")
            # the other gtFine files, which must be ignored
            Image.fromarray(np.zeros((48, 96), np.uint8)).save(gt / split / city / f"{key}_gtFine_labelIds.png")
    return gt, left


def test_builds_the_papers_side_by_side_layout(tmp_path):
    gt, left = fake_cityscapes(tmp_path)
    out = tmp_path / "datasets" / "cityscapes"
    assert main(["prepare", "cityscapes", "--gtfine", str(gt), "--leftimg", str(left), "--out", str(out),
                 "--size", "32"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["train", "val"]  # no temporary folder left
    assert sorted(p.name for p in (out / "train").iterdir()) == [
        "aachen_000000_000019.jpg", "aachen_000001_000019.jpg", "bremen_000000_000019.jpg"]
    with Image.open(out / "train" / "aachen_000001_000019.jpg") as im:
        assert im.format == "JPEG" and im.size == (64, 32)
        ab = np.asarray(im.convert("RGB")).astype(int)
    # photo (A) on the left, resized from 96x48 to 32x32: its own left half is its colour
    assert np.abs(ab[:, 2:14] - [200, 40, 10]).max() <= 3
    # colour label map (B) on the right
    assert np.abs(ab[:, 34:46] - [128, 64, 128]).max() <= 3
    d = PairedImages.load(out, "val", preprocess="none", direction="BtoA")  # labels -> photo, as the preset
    assert d.names == ["lindau_000000_000019"] and d.source.shape == (1, 3, 32, 32)


def test_missing_partner_is_named(tmp_path):
    gt, left = fake_cityscapes(tmp_path)
    (gt / "train" / "bremen" / "bremen_000000_000019_gtFine_color.png").unlink()
    with pytest.raises(DataError, match=r"bremen_000000_000019_leftImg8bit\.png: no label map for this photo "
                                        r"\(expected .*gtFine/train/bremen/bremen_000000_000019_gtFine_color\.png\)"):
        prepare_cityscapes(gt, left, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()  # every check happens before anything is written
    gt2, left2 = fake_cityscapes(tmp_path / "second")
    (left2 / "train" / "aachen" / "aachen_000001_000019_leftImg8bit.png").unlink()
    with pytest.raises(DataError, match=r"aachen_000001_000019_gtFine_color\.png: no photo for this label map"):
        prepare_cityscapes(gt2, left2, tmp_path / "out", progress=False)


def test_wrong_folders_get_clear_errors(tmp_path, capsys):
    gt, left = fake_cityscapes(tmp_path)
    with pytest.raises(DataError, match="did you swap --gtfine and --leftimg"):
        prepare_cityscapes(left, gt, tmp_path / "out", progress=False)
    with pytest.raises(DataError, match=rf"--gtfine {tmp_path}: no train/ folder .*did you mean {gt}\?"):
        prepare_cityscapes(tmp_path, left, tmp_path / "out", progress=False)
    with pytest.raises(DataError, match="--leftimg .*nowhere: no such folder"):
        prepare_cityscapes(gt, tmp_path / "nowhere", tmp_path / "out", progress=False)
    assert main(["prepare", "cityscapes", "--gtfine", str(gt), "--leftimg", str(left), "--out",
                 str(tmp_path / "out"), "--splits", "test"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --gtfine") and "no test/ folder" in err and err.count("\n") == 1


def test_existing_output_is_not_overwritten_and_bad_images_stop(tmp_path):
    gt, left = fake_cityscapes(tmp_path)
    out = tmp_path / "out"
    prepare_cityscapes(gt, left, out, size=16, progress=False)
    with pytest.raises(DataError, match=r"out/train already exists; remove it or choose another --out"):
        prepare_cityscapes(gt, left, out, size=16, progress=False)
    (left / "train" / "aachen" / "aachen_000000_000019_leftImg8bit.png").write_bytes(b"broken")
    with pytest.raises(DataError, match=r"aachen_000000_000019_leftImg8bit\.png: not an image"):
        prepare_cityscapes(gt, left, tmp_path / "out2", progress=False)
    assert [p.name for p in (tmp_path / "out2").iterdir()] == []  # the half-built split was removed
