"""Every kind of bad input, tried on data loading and on translate (the table in docs/data.md).

Each case is written into a folder next to one good image and gets its documented behaviour:
``used`` (converted and used; the test checks what the model sees) or ``skipped`` (a warning naming
the file, a count in a summary line, and an error naming the file with ``strict``). Nothing leaves a
partial output file, and messages about non-UTF-8 file names can always be printed.
"""

from __future__ import annotations

import io
import logging
import os
import re
import struct
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from PIL import Image, ImageFile

from conftest import noise_image
from pix2pix import Translator, load
from pix2pix.data.images import MAX_PIXELS, resize_array
from pix2pix.data.pairs import PairedImages
from pix2pix.deploy.files import collect_inputs, translate_files
from pix2pix.errors import DataError, OutputError

pytestmark = pytest.mark.usefixtures("one_thread")


S = 32  # side of every ordinary test image (the good pair is S x S per side)


# ----- building files ---------------------------------------------------------------------------
def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def png(arr: np.ndarray) -> bytes:
    return encode(Image.fromarray(arr), "PNG")


def png_header_only(w: int, h: int) -> bytes:
    """A valid PNG signature + IHDR claiming w x h, a tiny IDAT and IEND: a few dozen bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def smooth(h: int, w: int) -> np.ndarray:
    """Blocks of flat colour: survive JPEG well, so lossy cases can be compared closely."""
    out = np.zeros((h, w, 3), np.uint8)
    out[: h // 2, : w // 2] = (250, 250, 250)
    out[: h // 2, w // 2:] = (200, 30, 30)
    out[h // 2:, : w // 2] = (30, 30, 200)
    out[h // 2:, w // 2:] = (10, 10, 10)
    return out


@dataclass
class Built:
    content: bytes
    expected: np.ndarray | None  # RGB uint8 as the model sees it (upright), None for skipped files
    exact: bool = True  # False: lossy (compare the mean absolute difference)


@dataclass
class Case:
    id: str
    filename: bytes  # bytes, so non-UTF-8 names are possible
    build: Callable[[int, int], Built]  # (height, width) -> file; width is 2x for a side-by-side pair
    data: str  # behaviour in training data: "used" or "skipped"
    translate: str  # behaviour in translate
    message: str | None = None  # regex of the skip message (the file name is checked separately)
    size: tuple[int, int] | None = None  # (h, w) of a single image when not S x S


def _plain(h, w):
    arr = noise_image(h, w, seed=h * 1000 + w)
    return Built(png(arr), arr)


def _zero(h, w):
    return Built(b"", None)


def _truncated_jpeg(h, w):
    raw = encode(Image.fromarray(noise_image(h, w, seed=3)), "JPEG", quality=90)
    return Built(raw[: len(raw) // 2], None)


def _truncated_png(h, w):  # Pillow reads a PNG's EXIF by decoding it: the size scan must be guarded too
    raw = png(noise_image(h, w, seed=4))
    return Built(raw[: len(raw) // 2], None)


def _text(h, w):
    return Built(b"this is a text file, not a JPEG\n", None)


def _huge(h, w):
    return Built(png_header_only(100_000, 100_000), None)


def _odd(h, w):
    arr = noise_image(h, w, seed=5)
    return Built(png(arr), arr)


def _cmyk(h, w):
    content = encode(Image.fromarray(smooth(h, w)).convert("CMYK"), "JPEG", quality=95)
    return Built(content, np.asarray(Image.open(io.BytesIO(content)).convert("RGB")))  # Pillow's conversion


def _sixteen_bit(h, w):
    v = noise_image(h, w, seed=7, channels=1)[..., 0]
    deep = v.astype(np.uint16) * 257 + np.where(v < 255, 100, 0).astype(np.uint16)  # still v after / 257
    return Built(encode(Image.fromarray(deep), "PNG"), np.repeat(v[..., None], 3, axis=2))


def _palette(h, w):
    colours = np.array([[255, 0, 0], [0, 0, 255], [0, 200, 0], [7, 7, 7]], np.uint8)
    index = (np.arange(h)[:, None] + np.arange(w)[None, :]) % 4
    im = Image.fromarray(index.astype(np.uint8), "P")
    im.putpalette(colours.flatten().tolist() + [0] * (768 - colours.size))
    return Built(encode(im, "PNG", transparency=1), colours[index])  # transparent entry keeps its colour


def _exif_rotated(h, w):
    upright = smooth(h, w)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    stored = np.ascontiguousarray(np.rot90(upright, k=1))  # stored turned 90 degrees anticlockwise
    content = encode(Image.fromarray(stored), "JPEG", quality=100, exif=exif)
    return Built(content, upright, exact=False)


CASES = [
    Case("zero-byte", b"empty.png", _zero, "skipped", "skipped", r"file is empty \(0 bytes\)"),
    Case("truncated-jpeg", b"cut.jpg", _truncated_jpeg, "skipped", "skipped", r"truncated or corrupt image data"),
    Case("truncated-png", b"cut.png", _truncated_png, "skipped", "skipped", r"truncated or corrupt image data"),
    Case("png-named-jpg", b"really_png.jpg", _plain, "used", "used"),
    Case("text-named-jpg", b"notes.jpg", _text, "skipped", "skipped", r"not an image Pillow can decode"),
    Case("1x1", b"dot.png", _plain, "skipped", "used", r"1x1 image is too narrow to hold an A\|B pair", size=(1, 1)),
    Case("decompression-bomb", b"bomb.png", _huge, "skipped", "skipped",
         rf"more than {MAX_PIXELS} pixels; refused before decoding"),
    Case("odd-size", b"odd.png", _odd, "used", "used", size=(23, 17)),
    Case("cmyk-jpeg", b"cmyk.jpg", _cmyk, "used", "used"),
    Case("16-bit", b"deep.png", _sixteen_bit, "used", "used"),
    Case("palette-transparency", b"palette.png", _palette, "used", "used"),
    Case("exif-rotated", b"rotated.jpg", _exif_rotated, "used", "used", size=(24, 16)),
    Case("non-utf8-name", b"caf\xe9.png", _plain, "used", "used"),
    Case("non-utf8-name-not-an-image", b"bad\xff.jpg", _text, "skipped", "skipped", r"not an image"),
]
IDS = [c.id for c in CASES]


def write(folder: Path, name: bytes, content: bytes) -> None:
    with open(os.path.join(os.fsencode(folder), name), "wb") as f:
        f.write(content)


def stem(case: Case) -> str:
    return os.fsdecode(case.filename).rsplit(".", 1)[0]


def shown(case: Case) -> str:
    """How a message prints the file name: undecodable bytes as \\xNN."""
    return case.filename.decode("utf-8", "backslashreplace")


def single_size(case: Case) -> tuple[int, int]:
    return case.size or (S, S)


def pair_size(case: Case) -> tuple[int, int]:
    """(h, w) of the side-by-side file: odd-size gets an odd width (the last column is dropped)."""
    if case.id == "odd-size":
        return 23, 2 * 17 + 1
    if case.id == "1x1":
        return 1, 1
    return S, 2 * S


def assert_close(got: np.ndarray, want: np.ndarray, exact: bool) -> None:
    assert got.shape == want.shape
    diff = np.abs(got.astype(int) - want.astype(int))
    assert diff.max() == 0 if exact else diff.mean() < 3, diff.mean()


@pytest.fixture
def decoded(monkeypatch) -> list[str]:
    """Names of the files Pillow actually decoded (ImageFile.load calls)."""
    names: list[str] = []
    real = ImageFile.ImageFile.load

    def spy(self):
        names.append(os.path.basename(str(getattr(self, "filename", ""))))
        return real(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    return names


# ----- data loading -----------------------------------------------------------------------------
def load_pairs(root: Path, **kw) -> PairedImages:
    return PairedImages.load(root, "train", preprocess="resize_and_crop", load_size=36, crop_size=32, **kw)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_bad_input_in_training_data(tmp_path, case, caplog, decoded):
    split = tmp_path / "train"
    split.mkdir()
    good_a, good_b = noise_image(S, S, 1), noise_image(S, S, 2)
    write(split, b"good.png", png(np.concatenate([good_a, good_b], axis=1)))
    h, w = pair_size(case)
    built = case.build(h, w)
    write(split, case.filename, built.content)

    start = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="pix2pix"):
        d = load_pairs(tmp_path)
    assert time.monotonic() - start < 10
    if case.data == "used":
        assert sorted(d.names) == sorted(["good", stem(case)]) and not d.skipped
        i = d.names.index(stem(case))
        a_side, b_side = built.expected[:, : w // 2], built.expected[:, w // 2: 2 * (w // 2)]
        if d.size != a_side.shape[:2]:  # mixed sizes: every image resized once to load_size
            a_side, b_side = resize_array(a_side, (36, 36)), resize_array(b_side, (36, 36))
        assert_close(d.source[i].permute(1, 2, 0).numpy(), a_side, built.exact)
        assert_close(d.target[i].permute(1, 2, 0).numpy(), b_side, built.exact)
        assert len(load_pairs(tmp_path, strict=True)) == 2  # nothing to complain about with --strict
        assert "skipped" not in caplog.text
    else:
        assert d.names == ["good"] and len(d.skipped) == 1
        message = d.skipped[0]
        assert shown(case) in message and re.search(case.message, message), message
        message.encode("utf-8")  # printable: undecodable bytes appear as \xNN
        assert f"skipped {message}" in caplog.text and "skipped 1 of 2 pairs" in caplog.text
        with pytest.raises(DataError, match=case.message) as err:
            load_pairs(tmp_path, strict=True)
        assert shown(case) in str(err.value)
    if case.id == "decompression-bomb":
        assert os.fsdecode(case.filename) not in decoded  # refused from the header alone


def test_a_folder_mixing_every_case(tmp_path, caplog):
    split = tmp_path / "train"
    split.mkdir()
    write(split, b"good.png", png(np.concatenate([noise_image(S, S, 1), noise_image(S, S, 2)], axis=1)))
    for case in CASES:
        write(split, case.filename, case.build(*pair_size(case)).content)
    with caplog.at_level(logging.WARNING, logger="pix2pix"):
        d = load_pairs(tmp_path)
    used = sorted(["good"] + [stem(c) for c in CASES if c.data == "used"])
    skipped = [c for c in CASES if c.data == "skipped"]
    assert sorted(d.names) == used
    assert len(d.skipped) == len(skipped)
    for case in skipped:
        assert any(shown(case) in m for m in d.skipped), case.id
    assert f"skipped {len(skipped)} of {len(skipped) + len(used)} pairs" in caplog.text
    assert d.size == (36, 36)  # sizes differ: each image resized once to load_size
    with pytest.raises(DataError):
        load_pairs(tmp_path, strict=True)


# ----- translate --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def translator(trained_run) -> Translator:
    return load(trained_run, device="cpu")


def outputs(folder: Path) -> list[bytes]:
    return sorted(os.listdir(os.fsencode(folder)))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_bad_input_in_translate(tmp_path, translator, case, caplog, decoded):
    src = tmp_path / "in"
    src.mkdir()
    write(src, b"good.png", png(noise_image(S, S, 1)))
    built = case.build(*single_size(case))
    write(src, case.filename, built.content)
    items = collect_inputs([str(src)])
    assert len(items) == 2

    with caplog.at_level(logging.WARNING, logger="pix2pix"):
        report = translate_files(translator, items, tmp_path / "out", side_by_side=True, progress=False)
    name = os.fsencode(stem(case)) + b".png"
    if case.translate == "used":
        assert report.written == 2 and not report.skipped
        assert outputs(tmp_path / "out") == sorted([b"good.png", name])
        with Image.open(os.path.join(os.fsencode(tmp_path / "out"), name)) as im:
            result = np.asarray(im.convert("RGB"))
        h, w = built.expected.shape[:2]
        assert result.shape == (h, 2 * w, 3)  # input | output, at the upright input's size
        assert_close(result[:, :w], built.expected, built.exact)  # the input as the model saw it
    else:
        assert report.written == 1 and len(report.skipped) == 1
        assert outputs(tmp_path / "out") == [b"good.png"]  # nothing partial for the bad file
        message = report.skipped[0]
        assert shown(case) in message and re.search(case.message, message), message
        message.encode("utf-8")
        assert "skipped 1 of 2 inputs" in caplog.text
        with pytest.raises(DataError, match=case.message):
            translate_files(translator, items, tmp_path / "strict", strict=True, progress=False)
        assert all(not n.endswith(b".tmp") for n in outputs(tmp_path / "strict"))
    if case.id == "decompression-bomb":
        assert os.fsdecode(case.filename) not in decoded


def test_translate_never_leaves_a_partial_file_when_a_write_fails(tmp_path, translator, monkeypatch):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        write(src, f"{i}.png".encode(), png(noise_image(S, S, i)))
    import pix2pix.fileio as fileio

    real_replace, calls = os.replace, []

    def disk_full_on_second(a, b):
        calls.append(b)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_replace(a, b)

    monkeypatch.setattr(fileio.os, "replace", disk_full_on_second)
    with pytest.raises(OutputError, match=r"could not write .*1\.png: No space left on device; 1 results"):
        translate_files(translator, collect_inputs([str(src)]), tmp_path / "out", progress=False)
    assert outputs(tmp_path / "out") == [b"0.png"]  # the failed file and its temporary are gone
    with pytest.raises(OutputError, match="cannot write the output folder"):
        translate_files(translator, collect_inputs([str(src)]), tmp_path / "in" / "0.png" / "out", progress=False)


def test_cli_prints_non_utf8_names_escaped(tmp_path, trained_run):
    """A real `pix2pix translate` over the mixed folder: exit 0, one warning per bad file, names as \\xNN."""
    src = tmp_path / "in"
    src.mkdir()
    for case in CASES:
        write(src, case.filename, case.build(*single_size(case)).content)
    src_dir = str(Path(__file__).resolve().parents[2] / "src")  # this checkout, not an installed copy
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src_dir, *sys.path]), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "pix2pix", "translate", "--checkpoint", str(trained_run), "--input", str(src),
           "--output", str(tmp_path / "out"), "--device", "cpu"]
    run = subprocess.run(cmd, capture_output=True, env=env, timeout=120)
    err = run.stderr.decode("utf-8")  # strict: everything printed is valid UTF-8
    assert run.returncode == 0, err
    skipped = [c for c in CASES if c.translate == "skipped"]
    assert err.count("warning: skipped ") == len(skipped) + 1  # one per file, then the count
    assert "bad\\xff.jpg: not an image" in err and "\\udc" not in err and "Traceback" not in err
    assert f"translated {len(CASES) - len(skipped)} images" in err
    assert b"caf\xe9.png" in outputs(tmp_path / "out")
    strict = subprocess.run(cmd[:-2] + ["--strict", "--device", "cpu"], capture_output=True, env=env, timeout=120)
    lines = strict.stderr.decode("utf-8").strip().splitlines()
    assert strict.returncode == 2 and lines[-1].startswith("error: ") and "bad\\xff.jpg" in lines[-1]
    assert "Traceback" not in strict.stderr.decode()
