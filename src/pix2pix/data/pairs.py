"""Paired datasets: find the pairs on disk, decode each image once, keep them as uint8 tensors.

Two layouts, per split (``train``, ``val``, ``test``)::

    ROOT/train/0001.jpg            side-by-side: A is the left half, B the right half
    ROOT/train/A/0001.png  ROOT/train/B/0001.png      separate folders, matched by file stem
    ROOT/A/train/0001.png  ROOT/B/train/0001.png      (the same, folders the other way round)

``PairedImages.load`` returns the *source* (model input) and *target* sides after applying the
direction, as ``(N, C, H, W)`` uint8 tensors at a common storage size:

- ``resize_and_crop`` / ``resize``: the data's own size if every pair shares it and it is no larger
  than ``load_size`` (the device then resizes up per batch); otherwise each image is resized to
  ``load_size`` x ``load_size`` once, at decode time. Memory stays bounded either way.
- ``crop`` / ``none``: images are stored as they are and must all share one size.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ..config import sides_of, source_and_target
from ..errors import DataError
from .cache import DecodeOptions, PairCache
from .decode import decode_into, shared_rows
from .images import IMAGE_EXTENSIONS, BadImage, is_image_file, open_image, oriented_size, to_array

log = logging.getLogger("pix2pix")


@dataclass(frozen=True)
class PairFile:
    """One pair on disk: ``b`` is None for a side-by-side file (both halves in ``a``)."""

    name: str
    a: Path
    b: Path | None = None


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p))


def _by_stem(folder: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for p in _images_in(folder):
        if p.stem in out:
            raise DataError(f"{folder}: two files share the name {p.stem!r} ({out[p.stem].name}, {p.name}); "
                            "A and B files are matched by name, so each name must be unique")
        out[p.stem] = p
    return out


def match_folders(a_dir: Path, b_dir: Path) -> list[PairFile]:
    """Pair ``a_dir`` and ``b_dir`` files by stem; a file without its partner is an error."""
    a, b = _by_stem(a_dir), _by_stem(b_dir)
    for stem, path in a.items():
        if stem not in b:
            raise DataError(f"{path}: no partner in {b_dir} (expected a file named {stem}.<ext>)")
    for stem, path in b.items():
        if stem not in a:
            raise DataError(f"{path}: no partner in {a_dir} (expected a file named {stem}.<ext>)")
    return [PairFile(stem, a[stem], b[stem]) for stem in sorted(a, key=natural_key)]


def natural_key(s: str) -> tuple:
    """Sort '2' before '10' so file lists read as people number them."""
    import re

    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s))


def pairs_in_folder(folder: Path) -> list[PairFile]:
    """The pairs of one split folder: A/ and B/ inside it, or side-by-side AB images."""
    folder = Path(folder)
    if (folder / "A").is_dir() and (folder / "B").is_dir():
        pairs = match_folders(folder / "A", folder / "B")
        if not pairs:
            raise DataError(f"{folder / 'A'}: no image files ({', '.join(IMAGE_EXTENSIONS)})")
        return pairs
    files = _images_in(folder)
    if not files:
        raise DataError(f"{folder}: no image files ({', '.join(IMAGE_EXTENSIONS)}) and no A/ and B/ folders")
    return [PairFile(p.stem, p) for p in sorted(files, key=lambda p: natural_key(p.stem))]


def find_pairs(root: str | os.PathLike, split: str) -> list[PairFile] | None:
    """The pairs of ``split`` under ``root``, or None if the split does not exist.

    ``root`` may also be a split folder itself (images, or A/ and B/ directly inside) when it has
    no train/val/test sub-folders, so ``--data my_pairs/`` works for a flat folder of AB images.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder not found")
    a_dir, b_dir = root / "A" / split, root / "B" / split
    if a_dir.is_dir() and b_dir.is_dir():
        pairs = match_folders(a_dir, b_dir)
        if not pairs:
            raise DataError(f"{a_dir}: no image files ({', '.join(IMAGE_EXTENSIONS)})")
        return pairs
    if (root / split).is_dir():
        return pairs_in_folder(root / split)
    has_splits = any((root / s).is_dir() for s in ("train", "val", "test")) or any(
        (root / side / s).is_dir() for side in ("A", "B") for s in ("train", "val", "test"))
    if split == "train" and not has_splits:
        return pairs_in_folder(root)
    return None


def pair_size(pair: PairFile) -> tuple[int, int]:
    """(width, height) of each side of the pair; checks that the two sides agree."""
    if pair.b is None:
        w, h = oriented_size(pair.a)
        if w < 2:
            raise BadImage(f"{pair.a}: {w}x{h} image is too narrow to hold an A|B pair side by side")
        return w // 2, h
    sa, sb = oriented_size(pair.a), oriented_size(pair.b)
    if sa != sb:
        raise DataError(
            f"{pair.a} is {sa[0]}x{sa[1]} but its partner {pair.b} is {sb[0]}x{sb[1]}; "
            "the two images of a pair must have the same size"
        )
    return sa


def read_pair(pair: PairFile, a_channels: int, b_channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Decode both sides of a pair to uint8 (H, W, C) arrays."""
    if pair.b is None:
        im = open_image(pair.a)
        w, h = im.size
        if w < 2:
            raise BadImage(f"{pair.a}: {w}x{h} image is too narrow to hold an A|B pair side by side")
        w2 = w // 2
        return to_array(im.crop((0, 0, w2, h)), a_channels), to_array(im.crop((w2, 0, 2 * w2, h)), b_channels)
    a, b = to_array(open_image(pair.a), a_channels), to_array(open_image(pair.b), b_channels)
    if a.shape[:2] != b.shape[:2]:
        raise DataError(
            f"{pair.a} is {a.shape[1]}x{a.shape[0]} but its partner {pair.b} is {b.shape[1]}x{b.shape[0]}; "
            "the two images of a pair must have the same size"
        )
    return a, b


def _parallel_map(fn: Callable, items: Sequence, desc: str, progress: bool) -> list:
    workers = min(32, (os.cpu_count() or 1) + 4)
    results: list = [None] * len(items)
    from tqdm.auto import tqdm

    with ThreadPoolExecutor(workers) as pool, tqdm(
        total=len(items), desc=desc, unit="img", disable=not progress, leave=False
    ) as bar:
        for i, r in enumerate(pool.map(_capture(fn), items)):
            results[i] = r
            bar.update(1)
    return results


def _capture(fn: Callable) -> Callable:
    """Return exceptions of type BadImage as values so one bad file does not abort the pool."""

    def run(item):
        try:
            return fn(item)
        except BadImage as e:
            return e

    return run


@dataclass
class PairedImages:
    """Decoded pairs of one split: ``source`` feeds the generator, ``target`` is what it should make.

    ``source``: (N, input_nc, H, W) uint8; ``target``: (N, output_nc, H, W) uint8 (CPU or device).
    """

    source: torch.Tensor
    target: torch.Tensor
    names: list[str]
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return self.source.shape[0]

    @property
    def size(self) -> tuple[int, int]:
        """Stored (height, width)."""
        return tuple(self.source.shape[-2:])  # type: ignore[return-value]

    def to(self, device: torch.device | str) -> "PairedImages":
        return PairedImages(self.source.to(device), self.target.to(device), self.names, self.skipped)

    def subset(self, index: Sequence[int]) -> "PairedImages":
        idx = torch.as_tensor(list(index), dtype=torch.long)
        return PairedImages(self.source[idx], self.target[idx], [self.names[i] for i in idx.tolist()])

    @classmethod
    def load(
        cls,
        root: str | os.PathLike,
        split: str = "train",
        *,
        direction: str = "AtoB",
        input_nc: int = 3,
        output_nc: int = 3,
        preprocess: str = "resize_and_crop",
        load_size: int = 286,
        crop_size: int = 256,
        max_items: int | None = None,
        strict: bool = False,
        progress: bool = False,
        cache: bool = False,
        cache_dir: str | os.PathLike | None = None,
    ) -> "PairedImages | None":
        """Find and decode the pairs of ``split``; None when the split does not exist.

        With ``cache``, the decoded split is kept in ``cache_dir`` (default: the user's cache
        folder, see ``data/cache.py``) and later calls map that file instead of decoding.

        Unreadable files are skipped with a warning (their messages are kept in ``skipped``), or
        raise :class:`DataError` when ``strict``. Structural problems (a file without its partner,
        a pair whose sides differ in size, an empty folder) always raise.
        """
        pairs = find_pairs(root, split)
        if pairs is None:
            return None
        if max_items is not None:
            pairs = pairs[:max_items]
        where = Path(root) / split
        a_nc, b_nc = sides_of(direction, input_nc, output_nc)
        fit = preprocess in ("resize_and_crop", "resize")
        options = DecodeOptions(a_nc, b_nc, "fit" if fit else "native", load_size if fit else None, max_items)
        files = [f for p in pairs for f in (p.a, p.b) if f is not None]
        store = PairCache.at(cache_dir) if cache else None
        hit = store.open(where, files, options) if store is not None else None
        if hit is not None:
            if hit.skipped and strict:
                raise DataError(hit.skipped[0])
            if preprocess == "crop":
                _check_crop(pairs[0], (hit.rows.shape[3], hit.rows.shape[2]), crop_size)
            return cls.from_rows(hit.rows, a_nc, hit.names, hit.skipped, direction, where)

        sizes = _parallel_map(pair_size, pairs, f"scan {split}", progress)
        pairs, sizes, skipped = _drop_bad(pairs, sizes, strict)
        if not pairs:
            raise DataError(f"{where}: none of the {len(skipped)} files could be read; first problem: {skipped[0]}")
        stored = _storage_size(pairs, sizes, preprocess, load_size, crop_size)  # (width, height)
        shape = (len(pairs), a_nc + b_nc, stored[1], stored[0])
        _check_memory(where, shape[0], shape[1] * shape[2] * shape[3], stored)
        writer = store.create(where, files, options, shape) if store is not None else None
        rows = writer.rows if writer is not None else shared_rows(shape)
        try:
            failed = decode_into(rows, pairs, a_nc, stored, desc=f"decode {split}", progress=progress)
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        bad = [failed[i] for i in sorted(failed)]
        if bad and strict:
            if writer is not None:
                writer.abort()
            raise DataError(bad[0])
        skipped += bad
        keep = [i for i in range(len(pairs)) if i not in failed]
        if not keep:
            if writer is not None:
                writer.abort()
            raise DataError(f"{where}: none of the files could be decoded; first problem: {skipped[0]}")
        names = [pairs[i].name for i in keep]
        resized = any(s != stored for s in sizes)
        if writer is not None:
            rows = writer.commit(keep, names, skipped, resized).rows
        elif len(keep) < len(pairs):
            rows = rows[keep]
        return cls.from_rows(rows, a_nc, names, skipped, direction, where)

    @classmethod
    def from_rows(cls, rows: np.ndarray, a_channels: int, names: list[str], skipped: list[str], direction: str,
                  where: Path) -> "PairedImages":
        """(N, a + b channels, H, W) uint8 rows (side A, then B) as source and target (views, no copy)."""
        for message in skipped:
            log.warning("skipped %s", message)
        if skipped:
            log.warning("%s: skipped %d of %d pairs that could not be read (use --strict to stop instead)",
                        where, len(skipped), len(skipped) + len(names))
        t = torch.from_numpy(rows)
        source, target = source_and_target(direction, t[:, :a_channels], t[:, a_channels:])
        return cls(source, target, names, list(skipped))


def cached_sides(root: str | os.PathLike, split: str, pairs: Sequence[PairFile], a_channels: int, b_channels: int,
                 cache_dir: str | os.PathLike | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{name: (side A, side B) uint8 (H, W, C)} from a cached copy of the whole split at the images'
    own size (what ``show`` and ``evaluate`` read instead of decoding); empty if there is none."""
    files = [f for p in pairs for f in (p.a, p.b) if f is not None]
    hit = PairCache.at(cache_dir).find_native(Path(root) / split, files, a_channels, b_channels)
    if hit is None:
        return {}
    return {name: (hit.a[i].transpose(1, 2, 0), hit.b[i].transpose(1, 2, 0)) for i, name in enumerate(hit.names)}


def _check_memory(where: Path, n: int, bytes_per_pair: int, size: tuple[int, int]) -> None:
    """The decoded pairs are held in memory: refuse, before allocating, more than the machine has."""
    try:
        have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return
    if n * bytes_per_pair > have:
        raise DataError(f"{where}: {n} pairs stored at {size[0]}x{size[1]} need {n * bytes_per_pair / 2**30:.1f} GiB "
                        f"decoded, more than the {have / 2**30:.1f} GiB of memory here; lower --load-size (or "
                        "--crop-size with --preprocess crop / none), or use --max-items")


def _drop_bad(pairs: list[PairFile], results: list, strict: bool):
    good_pairs, sizes, skipped = [], [], []
    for pair, r in zip(pairs, results):
        if isinstance(r, BadImage):
            if strict:
                raise DataError(str(r))
            skipped.append(str(r))
        else:
            good_pairs.append(pair)
            sizes.append(r)
    return good_pairs, sizes, skipped


def _storage_size(pairs, sizes, preprocess: str, load_size: int, crop_size: int) -> tuple[int, int]:
    """(width, height) every image is stored at; see the module docstring for the rule."""
    first = sizes[0]
    odd = next((p for p, s in zip(pairs, sizes) if s != first), None)
    if preprocess in ("resize_and_crop", "resize"):
        if odd is None and first[0] <= load_size and first[1] <= load_size:
            return first
        return (load_size, load_size)
    if odd is not None:
        s = sizes[pairs.index(odd)]
        raise DataError(
            f"{odd.a} is {s[0]}x{s[1]} but {pairs[0].a} is {first[0]}x{first[1]}; with --preprocess "
            f"{preprocess} all images must share one size (use --preprocess resize_and_crop to resize them)"
        )
    if preprocess == "crop":
        _check_crop(pairs[0], first, crop_size)
    return first


def _check_crop(pair: PairFile, size: tuple[int, int], crop_size: int) -> None:
    if size[0] < crop_size or size[1] < crop_size:
        raise DataError(f"{pair.a}: images are {size[0]}x{size[1]}, smaller than --crop-size {crop_size}")
