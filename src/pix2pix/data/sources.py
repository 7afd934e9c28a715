"""The paper's datasets: where they come from, and installing one safely.

    pix2pix download facades --root datasets            # -> datasets/facades/{train,val,test}
    pix2pix download facades --root datasets --from ~/Downloads/facades.tar.gz   # offline

    from pix2pix.data.sources import install_dataset
    install_dataset("facades", "datasets")

Installing is: download (``DEST.part`` with HTTP Range resume, see :mod:`.download`) -> SHA-256
check -> extraction through tarfile's ``data`` filter (:mod:`.archive`) into ``ROOT/.NAME.extract-*``
-> every link checked to stay inside the folder being installed -> that folder renamed to ``ROOT/NAME`` only when complete. A run killed at any point leaves either
nothing under ``ROOT/NAME`` or the whole dataset; the next run resumes the download and deletes
stale extraction folders.

Checksums: the authors' server publishes none, and it could not be reached from the machine this
registry was written on, so ``sha256`` is ``None`` for every dataset. The download then logs the
SHA-256 it computed, to compare with a trusted copy; ``--sha256 HEX`` (or ``sha256=``) checks a
value you have. Record a value here (``sha256="..."``) once it is known; it is then enforced.

Servers: ``PIX2PIX_DATASETS_URL`` replaces the authors' base URL (a mirror, or a local server in
the tests), and ``url=`` / ``--url`` the whole address of one archive. Neither skips a check.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..config import PRESETS
from ..errors import ConfigError, DataError, DownloadError, OutputError
from .archive import check_links, extract_tar
from .download import ServerUnreachable, fetch, sha256_file

log = logging.getLogger("pix2pix")

BASE_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets"
BASE_URL_ENV = "PIX2PIX_DATASETS_URL"
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class DatasetSource:
    """One downloadable dataset. All of the paper's sets are side-by-side AB JPEGs (A left, B right)."""

    name: str
    a: str  # what the left half shows
    b: str  # what the right half shows
    sha256: str | None = None  # of the .tar.gz; None: not recorded (see the module docstring)
    layout: str = "side_by_side"
    note: str = ""

    @property
    def preset(self) -> str:
        """The ``--preset`` with the paper's settings for this dataset (same name)."""
        return self.name

    @property
    def direction(self) -> str:
        """The paper's direction for this dataset (the preset's, else the default AtoB)."""
        return PRESETS[self.preset].get("direction", "AtoB")

    @property
    def archive_name(self) -> str:
        return f"{self.name}.tar.gz"

    def url(self, base: str | None = None) -> str:
        base = base or os.environ.get(BASE_URL_ENV) or BASE_URL
        return f"{base.rstrip('/')}/{self.archive_name}"


SOURCES: dict[str, DatasetSource] = {s.name: s for s in (
    DatasetSource("facades", a="facade photo", b="architectural label map"),
    DatasetSource("cityscapes", a="street photo", b="colour label map",
                  note="Cityscapes images are under the Cityscapes licence (cityscapes-dataset.com); "
                       "`pix2pix prepare cityscapes` builds the same layout from the official archives"),
    DatasetSource("maps", a="aerial photo", b="map"),
    DatasetSource("edges2shoes", a="edge map", b="shoe photo"),
    DatasetSource("edges2handbags", a="edge map", b="handbag photo"),
    DatasetSource("night2day", a="night photo", b="day photo"),
)}


def get_source(name: str) -> DatasetSource:
    if name not in SOURCES:
        raise ConfigError(f"unknown dataset {name!r}; known datasets: {', '.join(SOURCES)}")
    return SOURCES[name]


def is_installed(folder: Path) -> bool:
    return folder.is_dir() and any((folder / s).is_dir() for s in SPLITS)


def install_dataset(name: str, root: str | os.PathLike = "datasets", *, archive: str | os.PathLike | None = None,
                    url: str | None = None, sha256: str | None = None, keep_archive: bool = False,
                    progress: bool = True) -> Path:
    """Download (or take ``archive``), verify and extract dataset ``name`` into ``ROOT/NAME``; returns it.

    ``sha256`` overrides the registry's value. A downloaded archive is deleted after a successful
    extraction unless ``keep_archive``; a user's ``archive`` is never deleted or changed.
    """
    source = get_source(name)
    root = Path(root)
    target = root / name
    if is_installed(target):
        log.info("%s is already installed in %s; nothing to do", name, target)
        return target
    if target.exists():
        raise DataError(f"{target} exists but holds no {'/, '.join(SPLITS)}/ folder; move it away and run again")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create the dataset folder {root}: {e.strerror or e}") from None
    for stale in root.glob(f".{name}.extract-*"):  # left by a run killed while extracting
        shutil.rmtree(stale, ignore_errors=True)

    expected = _normalise_sha256(sha256) if sha256 else source.sha256
    if archive is not None:
        path, ours = Path(archive), False
        if not path.is_file():
            raise DataError(f"{path}: no such archive file")
    else:
        path, ours = root / source.archive_name, True
        address = url or source.url()
        if not path.is_file():
            try:
                fetch(address, path, progress=progress)
            except ServerUnreachable as e:
                raise DownloadError(
                    f"{e}. Fetch {address} some other way and install it with: pix2pix download {name} "
                    f"--root {root} --from FILE (or extract it yourself so that {target}/train/ exists)") from None

    digest = sha256_file(path, progress=progress)
    if expected is None:
        log.warning("no SHA-256 is recorded for %s; %s has SHA-256 %s (compare it with a trusted copy, or pass "
                    "--sha256 to check it)", name, path, digest)
    elif digest != expected:
        if ours:
            path.unlink()  # resuming a wrong file cannot help: the next run downloads afresh
        raise DownloadError(
            f"{path}: SHA-256 mismatch (expected {expected}, got {digest}); the file is damaged or not the "
            + ("published archive; it was deleted, run the same command again to download it afresh"
               if ours else "published archive; nothing was installed"))

    try:
        _extract_into_place(path, target, source)
    except (DownloadError, DataError) as e:  # unsafe, unreadable or not a dataset (a full disk keeps it)
        if ours:  # else the next run would find this file and never download a good one
            path.unlink()
            raise type(e)(f"{e}; the downloaded file was deleted") from None
        raise
    if ours and not keep_archive:
        path.unlink()
    splits = ", ".join(f"{s} {_count(target / s)}" for s in SPLITS if (target / s).is_dir())
    log.info("installed %s in %s (%s images); train with: pix2pix train --data %s --preset %s --out runs/%s",
             name, target, splits, target, source.preset, name)
    return target


def _normalise_sha256(value: str) -> str:
    v = value.strip().lower()
    if len(v) != 64 or any(c not in "0123456789abcdef" for c in v):
        raise ConfigError(f"--sha256 must be 64 hexadecimal digits, got {value!r}")
    return v


def _extract_into_place(archive: Path, target: Path, source: DatasetSource) -> None:
    """Extract into a fresh hidden folder beside ``target``; rename into place only when complete."""
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{source.name}.extract-", dir=target.parent))
    except OSError as e:
        raise OutputError(f"cannot create a folder in {target.parent}: {e.strerror or e}") from None
    try:
        extract_tar(archive, tmp)
        top = _dataset_folder(tmp)
        check_links(top, archive, tmp)  # the one check the data filter cannot make: links stay inside ROOT/NAME
        if not is_installed(top):
            found = ", ".join(sorted(p.name for p in top.iterdir())[:8]) or "nothing"
            raise DataError(f"{archive}: does not hold a paired dataset: no {'/, '.join(SPLITS)}/ folder at its top "
                            f"(found: {found})")
        os.rename(top, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _dataset_folder(tmp: Path) -> Path:
    """The archive's single top-level folder (``facades/``), or the extraction folder itself."""
    entries = [p for p in tmp.iterdir() if not p.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        return entries[0]
    return tmp


def _count(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file())


def describe_sources() -> str:
    """A table of the registry for ``pix2pix download --list`` (each dataset's preset has its name)."""
    rows = [f"{'name':<15} {'direction':<10} {'A (left)':<13} {'B (right)':<24} sha256"]
    for s in SOURCES.values():
        rows.append(f"{s.name:<15} {s.direction:<10} {s.a:<13} {s.b:<24} {s.sha256 or 'not recorded'}")
    return "\n".join(rows) + f"\nserver: {os.environ.get(BASE_URL_ENV) or BASE_URL} (set {BASE_URL_ENV} for a mirror)"


__all__ = ["DatasetSource", "SOURCES", "get_source", "install_dataset", "describe_sources"]
