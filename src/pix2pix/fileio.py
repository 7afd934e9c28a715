"""Atomic file writes (readers see the old file or the complete new one, never a partial file), and
checking a place is writable before the work that fills it (:func:`check_writable`, :func:`writing`)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from PIL import Image

from .errors import OutputError


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the file normal permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_folder(path.parent)


def check_writable(path: str | os.PathLike, *, folder: bool = False, what: str = "output",
                   min_free: int = 1 << 20) -> Path:
    """Make sure ``path`` (a file to be written, or with ``folder`` a folder to write into) can be
    written, before the work whose result goes there: creates the (parent) folder and writes and
    removes a probe file beside it. A missing place that cannot be made, a read-only or full disk,
    a missing permission or a file in the way is one :class:`OutputError` naming ``path``."""
    path = Path(path)
    parent = path if folder else path.parent
    if not folder and path.is_dir():
        raise OutputError(f"{what} {path} is a folder; give a file name")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".pix2pix-write-test.", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise OutputError(f"cannot write the {what} {path}: {e.strerror or e}") from None
    try:
        free = shutil.disk_usage(parent).free
    except OSError:
        free = None
    if free is not None and free < min_free:
        raise OutputError(f"cannot write the {what} {path}: only {free} bytes free on its disk")
    return path


@contextlib.contextmanager
def writing(path: str | os.PathLike, what: str = "") -> Iterator[None]:
    """A failed write of ``path`` (disk full, read-only, ...) as one :class:`OutputError` naming it;
    ``what`` adds what the user should know (e.g. which results were already written)."""
    try:
        yield
    except OSError as e:
        raise OutputError(f"could not write {path}: {e.strerror or e}{'; ' + what if what else ''}") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def fsync_folder(folder: str | os.PathLike) -> None:
    """fsync a folder, so a rename inside it survives a crash (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale_temporaries(folder: str | os.PathLike) -> int:
    """Delete ``.NAME.*.tmp`` files a killed process left behind; returns how many."""
    n = 0
    for p in Path(folder).glob(".*.tmp"):
        try:
            p.unlink()
            n += 1
        except OSError:
            pass
    return n


def save_image(image: Image.Image, path: str | os.PathLike, format: str | None = None, **options: Any) -> Path:
    """Save a PIL image atomically; the format follows the extension (PNG if unknown). ``options``
    go to Pillow's encoder (e.g. ``quality=100`` for JPEG)."""
    path = Path(path)
    buf = io.BytesIO()
    fmt = format or Image.registered_extensions().get(path.suffix.lower(), "PNG")
    image.save(buf, format=fmt, **options)
    atomic_write_bytes(path, buf.getvalue())
    return path


def save_json(obj: Any, path: str | os.PathLike) -> Path:
    atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())
    return Path(path)


def user_cache_dir() -> Path:
    """The user's cache folder for pix2pix: ``$PIX2PIX_CACHE`` if set, else the platform's cache
    directory (``$XDG_CACHE_HOME`` or ``~/.cache`` on Linux, ``~/Library/Caches`` on macOS,
    ``%LOCALAPPDATA%`` on Windows) + ``/pix2pix``. Not created here."""
    import sys

    if os.environ.get("PIX2PIX_CACHE"):
        return Path(os.environ["PIX2PIX_CACHE"]).expanduser()
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    elif sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "pix2pix"
