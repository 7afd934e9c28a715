"""The decoded-pair cache: a split decoded once, kept as one file, mapped by every later start.

    cache = PairCache.at(None)                      # the user's cache folder / "decoded"
    hit = cache.open(pairs, options)                # MappedPairs, or None (then decode and build)

One file per (split folder, decoding options, file list)::

    CACHE/decoded/<folder>-<options>-<files>.pairs
        (N, a_channels + b_channels, H, W) uint8, row i = side A then side B of pair i
        a JSON trailer: format, version, the key's SHA-256, shape, names, skipped files, CRC-32s
        8 bytes trailer length, 8 bytes magic

The key is every file's path, size and modification time plus the decoding options (channels of
each side, the storage rule and, when images are resized while decoding, the size), so a changed,
added or removed file gives another key and is decoded again. The rows are stored by side (A, B),
not by the model's direction, so AtoB and BtoA share one file. A file that does not match its key,
has the wrong size or fails a CRC is never used: it is decoded again with a one-line warning.
Files are written to a temporary name in the cache folder, fsynced and renamed (as ``fileio``
does), and never inside the dataset folder, which may be read-only or shared. Older files for the
same folder and options are removed when a new one is written, so the cache holds one copy per split.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..fileio import fsync_folder, user_cache_dir

log = logging.getLogger("pix2pix")

FORMAT, VERSION = "pix2pix-decoded-pairs", 1
MAGIC = b"P2PPAIRS"
CHUNK = 64 << 20  # bytes per CRC-32 (checked in parallel)


@dataclass(frozen=True)
class DecodeOptions:
    """What decides the decoded bytes besides the files: channels of side A and B, and the storage
    rule: ``fit`` (own size if all pairs share one no larger than ``load_size``, else resized to
    it) or ``native`` (as stored; ``preprocess`` crop and none)."""

    a_channels: int
    b_channels: int
    rule: str
    load_size: int | None = None
    max_items: int | None = None

    def key(self) -> dict[str, Any]:
        return {"a_channels": self.a_channels, "b_channels": self.b_channels, "rule": self.rule,
                "load_size": self.load_size, "max_items": self.max_items}


@dataclass
class MappedPairs:
    """A split as the cache holds it: ``rows`` (N, a+b channels, H, W) uint8 (memory-mapped)."""

    rows: np.ndarray
    a_channels: int
    names: list[str]
    skipped: list[str]
    resized: bool
    path: Path

    @property
    def a(self) -> np.ndarray:
        return self.rows[:, :self.a_channels]

    @property
    def b(self) -> np.ndarray:
        return self.rows[:, self.a_channels:]


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode("utf-8", "surrogateescape")).hexdigest()


def file_records(files: Sequence[Path]) -> list[list] | None:
    """(path, size, mtime in ns) of every file; None if one cannot be read (decoding reports it)."""
    out = []
    for f in files:
        try:
            st = os.stat(f)
        except OSError:
            return None
        out.append([os.fsdecode(os.path.abspath(f)), st.st_size, st.st_mtime_ns])
    return out


class PairCache:
    """One cache folder of decoded splits (see the module docstring)."""

    SUFFIX = ".pairs"

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    @classmethod
    def at(cls, folder: str | os.PathLike | None) -> "PairCache":
        """``folder`` (``--cache-dir``), or the user's cache folder / "decoded"."""
        return cls(Path(folder).expanduser() if folder else user_cache_dir() / "decoded")

    @staticmethod
    def _parts(split_dir: Path, records: list[list]) -> tuple[str, str]:
        """The file-name digests of the split folder and of its file list."""
        return _digest(os.fsdecode(os.path.abspath(split_dir)))[:16], _digest(records)[:20]

    def _name(self, split_dir: Path, options: DecodeOptions, records: list[list]) -> Path:
        where, files = self._parts(split_dir, records)
        return self.folder / f"{where}-{_digest(options.key())[:12]}-{files}{self.SUFFIX}"

    @staticmethod
    def _key_hash(options: DecodeOptions, records: list[list]) -> str:
        return _digest({"format": FORMAT, "version": VERSION, "options": options.key(), "files": records})

    # ----- reading ------------------------------------------------------------------------------
    def open(self, split_dir: Path, files: Sequence[Path], options: DecodeOptions) -> MappedPairs | None:
        """The mapped split for these files and options, or None (not cached, or not trustworthy:
        then a warning, the file is removed, and the caller decodes and rebuilds it)."""
        records = file_records(files)
        if records is None or not self.folder.is_dir():
            return None
        path = self._name(split_dir, options, records)
        if not path.is_file():
            return None
        return self._map(path, self._key_hash(options, records), verify=True)

    def find_native(self, split_dir: Path, files: Sequence[Path], a_channels: int,
                    b_channels: int) -> MappedPairs | None:
        """Any cached copy of the whole split at the images' own size with these channels (what
        ``show`` and ``evaluate`` read), whatever the training options that built it."""
        records = file_records(files)
        if records is None or not self.folder.is_dir():
            return None
        where, names = self._parts(split_dir, records)
        for path in sorted(self.folder.glob(f"{where}-*-{names}{self.SUFFIX}")):
            trailer = _read_trailer(path)
            try:
                opts = DecodeOptions(**trailer["options"]) if trailer else None
            except TypeError:
                opts = None
            if opts is None or trailer.get("resized") or (opts.a_channels, opts.b_channels) != (a_channels, b_channels):
                continue
            mapped = self._map(path, self._key_hash(opts, records), verify=True)
            if mapped is not None:
                return mapped
        return None

    def _map(self, path: Path, key_hash: str, verify: bool) -> MappedPairs | None:
        problem, trailer = _check(path, key_hash)
        rows = None
        if problem is None:
            rows = np.memmap(path, dtype=np.uint8, mode="c", shape=tuple(trailer["shape"]), offset=0)
            if verify:
                problem = _check_crcs(rows, trailer["crc32"])
        if problem is not None:
            log.warning("decoded-pair cache %s %s; decoding the images again", path, problem)
            _remove(path)
            return None
        return MappedPairs(rows, trailer["a_channels"], trailer["names"], trailer["skipped"], trailer["resized"], path)

    # ----- writing ------------------------------------------------------------------------------
    def create(self, split_dir: Path, files: Sequence[Path], options: DecodeOptions,
               shape: tuple[int, int, int, int]) -> "CacheWriter | None":
        """A writable memory map of a new cache file to decode into, or None (with a warning) when
        the cache folder cannot take it (not writable, not enough space)."""
        records = file_records(files)
        if records is None:
            return None
        path = self._name(split_dir, options, records)
        nbytes = int(np.prod(shape))
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._remove_abandoned()
            usage = shutil.disk_usage(self.folder)
            if usage.free - nbytes < max(1 << 30, usage.total // 20):  # leave the disk 1 GiB and 5 % free
                raise OSError(f"{nbytes / 2**30:.1f} GiB needed, {usage.free / 2**30:.1f} GiB free")
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                if nbytes and hasattr(os, "posix_fallocate"):
                    os.posix_fallocate(fd, 0, nbytes)  # a full disk fails here, not as SIGBUS mid-decode
                else:
                    os.ftruncate(fd, nbytes)
            finally:
                os.close(fd)
            rows = np.memmap(tmp, dtype=np.uint8, mode="r+", shape=shape) if nbytes else np.empty(shape, np.uint8)
        except OSError as e:
            _remove(tmp)
            log.warning("cannot write the decoded-pair cache in %s (%s); decoding without it (--cache-dir DIR "
                        "moves it, --no-cache turns it off)", self.folder, e.strerror or e)
            return None
        return CacheWriter(self, path, tmp, rows, options, self._key_hash(options, records))


    def _remove_abandoned(self, hours: float = 6.0) -> None:
        """Temporary files of builds killed midway (not touched for ``hours``: another process on a
        shared folder may still be writing a younger one)."""
        import time

        for tmp in self.folder.glob(f".*{self.SUFFIX}.*.tmp"):
            try:
                if time.time() - tmp.stat().st_mtime > hours * 3600:
                    tmp.unlink()
            except OSError:
                pass


class CacheWriter:
    """A cache file being built: decode into ``rows``, then :meth:`commit` (or :meth:`abort`)."""

    def __init__(self, cache: PairCache, path: Path, tmp: Path, rows: np.ndarray, options: DecodeOptions,
                 key_hash: str):
        self.cache, self.path, self.tmp, self.rows = cache, path, tmp, rows
        self.options, self.key_hash = options, key_hash

    def commit(self, keep: Sequence[int], names: list[str], skipped: list[str], resized: bool) -> MappedPairs:
        """Drop the rows of unreadable pairs, append the trailer, fsync and rename into place; the
        mapped result. A failure to write leaves the decoded rows in memory and warns."""
        rows = self.rows
        for j, i in enumerate(keep):  # compaction in place: rows only move forward
            if i != j:
                rows[j] = rows[i]
        n = len(keep)
        shape = (n, *rows.shape[1:])
        view = rows[:n]
        trailer = {"format": FORMAT, "version": VERSION, "key": self.key_hash, "options": self.options.key(),
                   "shape": list(shape), "a_channels": self.options.a_channels, "names": names,
                   "skipped": skipped, "resized": resized, "chunk": CHUNK, "crc32": _crcs(view)}
        try:
            if isinstance(rows, np.memmap):
                rows.flush()
            blob = json.dumps(trailer).encode("utf-8", "surrogateescape")
            nbytes = int(np.prod(shape))
            with open(self.tmp, "r+b") as f:
                f.truncate(nbytes)
                f.seek(nbytes)
                f.write(blob + len(blob).to_bytes(8, "little") + MAGIC)
                f.flush()
                os.fsync(f.fileno())
            os.replace(self.tmp, self.path)
            fsync_folder(self.path.parent)
        except OSError as e:
            self.abort()
            log.warning("could not write the decoded-pair cache %s (%s); decoding again next time",
                        self.path, e.strerror or e)
            return MappedPairs(np.array(view), self.options.a_channels, names, skipped, resized, self.path)
        self._remove_older()
        self.rows = None  # the writable map goes; the file is mapped again read-only
        mapped = self.cache._map(self.path, self.key_hash, verify=False)
        assert mapped is not None  # just written and checked by size and key
        return mapped

    def abort(self) -> None:
        _remove(self.tmp)

    def _remove_older(self) -> None:
        """Other files of the same folder and options (an earlier version of the split)."""
        where, options, _ = self.path.name.split("-", 2)
        for other in self.path.parent.glob(f"{where}-{options}-*{PairCache.SUFFIX}"):
            if other != self.path:
                _remove(other)


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def _read_trailer(path: Path) -> dict | None:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            if size < 16:
                return None
            f.seek(size - 16)
            tail = f.read(16)
            length = int.from_bytes(tail[:8], "little")
            if tail[8:] != MAGIC or length > size - 16:
                return None
            f.seek(size - 16 - length)
            trailer = json.loads(f.read(length).decode("utf-8", "surrogateescape"))
    except (OSError, ValueError):
        return None
    if not isinstance(trailer, dict) or trailer.get("format") != FORMAT or trailer.get("version") != VERSION:
        return None
    trailer["_size"] = size
    trailer["_length"] = length
    return trailer


def _check(path: Path, key_hash: str) -> tuple[str | None, dict]:
    """(None, trailer) for a file that belongs to this key and has the size its trailer says."""
    trailer = _read_trailer(path)
    if trailer is None:
        return "is not a pix2pix cache file (no readable trailer)", {}
    if trailer.get("key") != key_hash:
        return "belongs to other files or options (its key differs)", {}
    try:
        shape = [int(s) for s in trailer["shape"]]
        expected = int(np.prod(shape)) + trailer["_length"] + 16
        crcs = len(trailer["crc32"])
        names = len(trailer["names"])
    except (KeyError, TypeError, ValueError):
        return "has a damaged trailer", {}
    if trailer["_size"] != expected or names != shape[0] or crcs != -(-int(np.prod(shape)) // CHUNK):
        return f"has the wrong size ({trailer['_size']} bytes, expected {expected})", {}
    return None, trailer


def _crcs(rows: np.ndarray) -> list[int]:
    flat = rows.reshape(-1)
    chunks = [flat[i:i + CHUNK] for i in range(0, flat.size, CHUNK)]
    with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:  # zlib releases the GIL
        return list(pool.map(lambda c: zlib.crc32(memoryview(c)), chunks))


def _check_crcs(rows: np.ndarray, expected: list[int]) -> str | None:
    got = _crcs(rows)
    bad = [i for i, (g, e) in enumerate(zip(got, expected)) if g != e]
    if bad:
        return f"is damaged (checksum mismatch in {len(bad)} of {len(expected)} blocks)"
    return None
