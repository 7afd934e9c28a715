"""Reading one image file into an 8-bit array, with every format decision in one place.

Conversions (documented in docs/data.md):

- The file's content decides the format, not its extension (a PNG named ``.jpg`` is read as PNG).
- EXIF orientation is applied, so a rotated phone JPEG comes out upright.
- 16-bit images (``I;16``, ``I``) are scaled to 8 bits by ``value / 257`` (65535 -> 255), rounded.
  32-bit float images (``F``) are assumed to be in [0, 1] and scaled by 255.
- Alpha is ignored: RGBA, LA and palette images with transparency keep their colour channels as
  stored. CMYK, YCbCr, LAB and HSV are converted to RGB by Pillow.
- The result is RGB (3 channels) or grayscale (1 channel, ITU-R 601 luma), as the model asks.
"""

from __future__ import annotations

import contextlib
import os
import zlib
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
# Refuse images above this many pixels before decoding them (decompression bombs). This is Pillow's
# own refusal threshold (2 x its default Image.MAX_IMAGE_PIXELS, about 13377 x 13377), so the limit
# is the same whether Pillow or this check sees the header first, and stays in force when a
# program raises or disables Pillow's limit.
MAX_PIXELS = 2 * 89_478_485


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


class BadImage(DataError):
    """A single file cannot be used as an image; may be skipped instead of stopping (see strict)."""


def open_header(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open lazily (header only) and refuse empty files, non-images and oversized images."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as e:
        raise BadImage(f"{path}: cannot read file ({e.strerror or e})") from None
    if size == 0:
        raise BadImage(f"{path}: file is empty (0 bytes)")
    try:
        im = Image.open(path)
    except UnidentifiedImageError:
        raise BadImage(f"{path}: not an image Pillow can decode (unknown or corrupt format)") from None
    except Image.DecompressionBombError as e:  # Pillow's own check, made while reading the header
        raise BadImage(f"{path}: image has more than {max_pixels} pixels; refused before decoding "
                       f"(possible decompression bomb; Pillow: {e})") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise BadImage(f"{path}: cannot read image header ({e})") from None
    w, h = im.size
    if w * h > max_pixels:
        im.close()
        raise BadImage(f"{path}: {w}x{h} image has more than {max_pixels} pixels; refused before decoding "
                       "(possible decompression bomb)")
    return im


@contextlib.contextmanager
def decoding(path: str | os.PathLike) -> Iterator[None]:
    """Every Pillow call that may decode pixel data goes inside this: its failures become one
    :class:`BadImage` naming the file (a PNG's EXIF, for one, is read by decoding the whole image)."""
    try:
        yield
    except Image.DecompressionBombError as e:
        raise BadImage(f"{path}: refused as a possible decompression bomb ({e})") from None
    except (OSError, SyntaxError, ValueError, EOFError, zlib.error) as e:
        raise BadImage(f"{path}: truncated or corrupt image data ({e})") from None


def oriented_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) after EXIF orientation (from the header, except for PNGs whose EXIF Pillow
    finds only by decoding)."""
    with open_header(path) as im, decoding(path):
        w, h = im.size
        orientation = im.getexif().get(0x0112, 1)
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def open_image(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open, check size, decode fully and apply EXIF orientation. Raises :class:`BadImage`."""
    im = open_header(path, max_pixels)
    try:
        with decoding(path):
            im.load()
            if im.getexif().get(0x0112, 1) == 1 and getattr(im, "fp", None) is None:
                return im  # upright, file closed by load(): no need for exif_transpose's full copy
            with im:
                return ImageOps.exif_transpose(im)  # a new, loaded image
    except BadImage:
        im.close()
        raise


def to_array(im: Image.Image, channels: int) -> np.ndarray:
    """Convert a decoded PIL image to uint8 (H, W, channels), channels 1 or 3."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        a = np.asarray(im, dtype=np.float64)
        a = np.clip(np.rint(a / 257.0), 0, 255).astype(np.uint8)
        im = Image.fromarray(a, mode="L")
    elif im.mode == "F":
        a = np.asarray(im, dtype=np.float64)
        im = Image.fromarray(np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8), mode="L")
    elif im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    target = "RGB" if channels == 3 else "L"
    if im.mode != target:
        im = im.convert(target)
    arr = np.asarray(im, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return arr


def read_image(path: str | os.PathLike, channels: int = 3, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read ``path`` as uint8 (H, W, channels). Raises :class:`BadImage` naming the file."""
    return to_array(open_image(path, max_pixels), channels)


def resize_array(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bicubic resize of uint8 (H, W, C) to ``size`` = (width, height), as the reference does with Pillow."""
    if (arr.shape[1], arr.shape[0]) == size:
        return arr
    c = arr.shape[2]
    im = Image.fromarray(arr[:, :, 0] if c == 1 else arr)
    out = np.asarray(im.resize(size, Image.BICUBIC), dtype=np.uint8)
    return out[:, :, None] if out.ndim == 2 else out
