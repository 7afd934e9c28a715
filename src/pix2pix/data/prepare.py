"""Build the paper's paired layout from official archives a user downloaded themselves.

    pix2pix prepare cityscapes --gtfine gtFine --leftimg leftImg8bit --out datasets/cityscapes

Cityscapes is licensed, so the paper's ``cityscapes`` set cannot simply be downloaded from us: a
user registers at cityscapes-dataset.com, downloads ``gtFine_trainvaltest.zip`` and
``leftImg8bit_trainvaltest.zip``, unpacks them, and points this at the two folders::

    gtFine/train/aachen/aachen_000000_000019_gtFine_color.png
    leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png

The result has the layout of the authors' ``cityscapes.tar.gz``: ``OUT/train/`` (2975 pairs) and
``OUT/val/`` (500), each pair one JPEG of 512x256 with the photo on the left (A) and the colour
label map on the right (B). As in the reference implementation's
``datasets/prepare_cityscapes_dataset.py``, both images are resized to 256x256 with Pillow's bicubic
filter (so label colours blend at class borders, as in the authors' files) and saved at JPEG
quality 100 without chroma subsampling. Two differences from that script: files are named by
their Cityscapes id (``aachen_000000_000019.jpg``, not ``0.jpg``, ``1.jpg``, ...), so every pair
can be traced back to its frame, and the val split is written to ``val/`` (the script writes it to
``test/``), as in the authors' archive and what ``pix2pix train`` samples from.

Every photo must have its label map and the reverse; a missing partner or a folder that is not
what the option names stops with a message naming the file or folder. Each split is written into
a hidden temporary folder and renamed into place when complete, so an interrupted run leaves no
half-built split behind.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

from PIL import Image

from ..errors import DataError, OutputError
from ..fileio import check_writable, save_image
from .images import BadImage, open_image

log = logging.getLogger("pix2pix")

PHOTO_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_color.png"


def _files(folder: Path, split: str, suffix: str) -> dict[str, Path]:
    """Cityscapes id -> file for ``folder/split/<city>/<id><suffix>``."""
    out: dict[str, Path] = {}
    for city in sorted(p for p in (folder / split).iterdir() if p.is_dir()):
        for f in sorted(city.iterdir()):
            if f.name.endswith(suffix) and f.is_file():
                out[f.name[: -len(suffix)]] = f
    return out


def _check_folder(folder: Path, option: str, suffix: str, splits: Sequence[str]) -> None:
    """The folder exists and has the split sub-folders; else say what was expected."""
    if not folder.is_dir():
        raise DataError(f"{option} {folder}: no such folder")
    missing = [s for s in splits if not (folder / s).is_dir()]
    if missing:
        inner = [p for p in sorted(folder.iterdir()) if p.is_dir() and (p / missing[0]).is_dir()]
        hint = f"; did you mean {inner[0]}?" if inner else ""
        raise DataError(f"{option} {folder}: no {missing[0]}/ folder (expected "
                        f"{folder}/{missing[0]}/<city>/<city>_<seq>_<frame>{suffix}){hint}")


def _nothing_found(folder: Path, option: str, suffix: str, other_suffix: str) -> DataError:
    if next(folder.glob(f"*/*{other_suffix}"), None) is not None:
        return DataError(f"{option} {folder}: holds *{other_suffix} files, which belong to the other folder; "
                         "did you swap --gtfine and --leftimg?")
    return DataError(f"{option} {folder}: no *{suffix} files in its city folders")


def cityscapes_pairs(gtfine: Path, leftimg: Path, split: str) -> list[tuple[str, Path, Path]]:
    """(id, photo, label map) for every frame of ``split``, sorted by id; partners must match."""
    photos, labels = _files(leftimg, split, PHOTO_SUFFIX), _files(gtfine, split, LABEL_SUFFIX)
    if not photos:
        raise _nothing_found(leftimg / split, "--leftimg", PHOTO_SUFFIX, LABEL_SUFFIX)
    if not labels:
        raise _nothing_found(gtfine / split, "--gtfine", LABEL_SUFFIX, PHOTO_SUFFIX)
    for key, path in photos.items():
        if key not in labels:
            partner = gtfine / split / key.split("_")[0] / (key + LABEL_SUFFIX)
            raise DataError(f"{path}: no label map for this photo (expected {partner})")
    for key, path in labels.items():
        if key not in photos:
            partner = leftimg / split / key.split("_")[0] / (key + PHOTO_SUFFIX)
            raise DataError(f"{path}: no photo for this label map (expected {partner})")
    return [(key, photos[key], labels[key]) for key in sorted(photos)]


def _make_pair(photo: Path, label: Path, size: int) -> Image.Image:
    try:
        a = open_image(photo).convert("RGB").resize((size, size), Image.BICUBIC)
        b = open_image(label).convert("RGB").resize((size, size), Image.BICUBIC)
    except BadImage as e:
        raise DataError(str(e)) from None
    ab = Image.new("RGB", (2 * size, size))
    ab.paste(a, (0, 0))
    ab.paste(b, (size, 0))
    return ab


def prepare_cityscapes(gtfine: str | os.PathLike, leftimg: str | os.PathLike, out: str | os.PathLike, *,
                       splits: Sequence[str] = ("train", "val"), size: int = 256,
                       progress: bool = True) -> dict[str, int]:
    """Write ``OUT/<split>/<id>.jpg`` side-by-side pairs (see the module docstring); returns pairs per split."""
    from tqdm.auto import tqdm

    gtfine, leftimg, out = Path(gtfine), Path(leftimg), Path(out)
    _check_folder(gtfine, "--gtfine", LABEL_SUFFIX, splits)
    _check_folder(leftimg, "--leftimg", PHOTO_SUFFIX, splits)
    plan = {split: cityscapes_pairs(gtfine, leftimg, split) for split in splits}  # all checks before writing
    for split in splits:
        if (out / split).exists():
            raise DataError(f"{out / split} already exists; remove it or choose another --out")
    check_writable(out, folder=True, what="output folder")

    counts: dict[str, int] = {}
    for split, pairs in plan.items():
        tmp = Path(tempfile.mkdtemp(prefix=f".{split}.prepare-", dir=out))
        try:
            def write(item: tuple[str, Path, Path]) -> None:
                key, photo, label = item
                save_image(_make_pair(photo, label, size), tmp / f"{key}.jpg", format="JPEG",
                           quality=100, subsampling=0)

            with ThreadPoolExecutor(min(8, (os.cpu_count() or 1) + 2)) as pool, \
                    tqdm(total=len(pairs), desc=f"cityscapes {split}", unit="pair", disable=not progress,
                         leave=False) as bar:
                for _ in pool.map(write, pairs):
                    bar.update(1)
            os.rename(tmp, out / split)
        except OSError as e:
            raise OutputError(f"could not write {out / split}: {e.strerror or e}") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        counts[split] = len(pairs)
    log.info("wrote %s to %s; train with: pix2pix train --data %s --preset cityscapes",
             ", ".join(f"{n} {s} pairs" for s, n in counts.items()), out, out)
    return counts
