"""Safe extraction of a tar archive (``.tar``, ``.tar.gz``, ``.tar.bz2``, ``.tar.xz``).

    extract_tar("facades.tar.gz", "datasets/.facades.extract-1234")   # an empty folder we made

A dataset archive comes from a server we do not control, so every member is checked before it is
written, and the archive is refused (:class:`UnsafeArchive`, naming the member) when it holds:

- an absolute path (``/etc/passwd``, ``C:/x``) or a ``..`` component (``../../.bashrc``);
- a symbolic link whose target is absolute or resolves outside the folder, or a hard link to a
  path outside it or to a link;
- a device, a FIFO or any other special file (only files, folders and links are allowed);
- a member that would be written through a link already extracted (``link/evil`` with
  ``link -> /``), which is how chained-link tricks escape a folder.

After the last member, every link in the folder is resolved once more and must stay inside it.
These checks are ours and run first, so the same archives are refused on every Python version;
where ``tarfile`` has extraction filters (Python 3.12, and 3.8.17+ / 3.9.17+ / 3.10.12+ /
3.11.4+), its ``data`` filter runs as well, as a second line. Ownership, permissions and times
stored in the archive are never applied: files get the user's default permissions.

The caller extracts into a fresh temporary folder and deletes it if this raises, so a refused
archive leaves nothing behind (see :func:`pix2pix.data.sources.install_dataset`).
"""

from __future__ import annotations

import os
import re
import tarfile
import zlib
from pathlib import Path

from ..errors import DownloadError, OutputError

HAS_DATA_FILTER = hasattr(tarfile, "data_filter")
_FILTER_ERRORS: tuple[type[BaseException], ...] = (tarfile.FilterError,) if hasattr(tarfile, "FilterError") else ()


class UnsafeArchive(DownloadError):
    """An archive member could write outside the target folder, or is a device or other special file."""


def _kind(m: tarfile.TarInfo) -> str:
    if m.ischr():
        return "character device"
    if m.isblk():
        return "block device"
    if m.isfifo():
        return "FIFO"
    return f"special member (type {m.type!r})"


def _parts(name: str) -> list[str]:
    """Path components, with backslashes counted as separators (they are on Windows)."""
    return [p for p in re.split(r"[\\/]+", name) if p not in ("", ".")]


def _is_absolute(name: str) -> bool:
    return name.startswith(("/", "\\")) or bool(re.match(r"^[A-Za-z]:", name))


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _no_link_on_path(folder: str, parts: list[str], archive: Path, member: str) -> None:
    """Refuse a member that would be written through a link that is already on disk."""
    here = folder
    for part in parts:
        here = os.path.join(here, part)
        if os.path.islink(here):
            raise UnsafeArchive(f"{archive}: member {member!r} would be written through the link "
                                f"{os.path.relpath(here, folder)!r}; refusing to extract this archive")


def check_member(m: tarfile.TarInfo, folder: str, archive: Path) -> None:
    """Raise :class:`UnsafeArchive` unless ``m`` can be extracted into ``folder`` safely."""
    name = m.name
    if not name or "\x00" in name:
        raise UnsafeArchive(f"{archive}: a member has an empty or invalid name; refusing to extract this archive")
    if _is_absolute(name):
        raise UnsafeArchive(f"{archive}: member {name!r} has an absolute path; refusing to extract this archive")
    parts = _parts(name)
    if ".." in parts:
        raise UnsafeArchive(f"{archive}: member {name!r} has a '..' component (it could write outside the "
                            "target folder); refusing to extract this archive")
    if not (m.isreg() or m.isdir() or m.issym() or m.islnk()):
        raise UnsafeArchive(f"{archive}: member {name!r} is a {_kind(m)}; only files, folders and links are "
                            "allowed; refusing to extract this archive")
    _no_link_on_path(folder, parts, archive, name)
    real_root = os.path.realpath(folder)
    if m.issym():
        target = m.linkname
        if not target or _is_absolute(target):
            raise UnsafeArchive(f"{archive}: link {name!r} points to the absolute path {target!r}; "
                                "refusing to extract this archive")
        parent = os.path.join(folder, *parts[:-1])
        lexical = os.path.normpath(os.path.join(parent, target.replace("\\", "/")))
        resolved = os.path.realpath(os.path.join(parent, target))  # through links already extracted
        if not _inside(lexical, os.path.normpath(folder)) or not _inside(resolved, real_root):
            raise UnsafeArchive(f"{archive}: link {name!r} -> {target!r} points outside the target folder; "
                                "refusing to extract this archive")
    elif m.islnk():
        target = m.linkname
        tparts = _parts(target)
        if not target or _is_absolute(target) or ".." in tparts:
            raise UnsafeArchive(f"{archive}: hard link {name!r} -> {target!r} points outside the target folder; "
                                "refusing to extract this archive")
        _no_link_on_path(folder, tparts, archive, name)
        source = os.path.join(folder, *tparts)
        if not os.path.isfile(source):
            raise UnsafeArchive(f"{archive}: hard link {name!r} -> {target!r} does not point to a file extracted "
                                "before it; refusing to extract this archive")


def _check_links_after(folder: str, archive: Path) -> None:
    """Every link in the extracted tree must resolve inside it (catches links that only escape once a
    later link they go through exists)."""
    real_root = os.path.realpath(folder)
    for here, dirs, files in os.walk(folder):
        for entry in dirs + files:
            path = os.path.join(here, entry)
            if os.path.islink(path) and not _inside(os.path.realpath(path), real_root):
                rel = os.path.relpath(path, folder)
                raise UnsafeArchive(f"{archive}: link {rel!r} -> {os.readlink(path)!r} resolves outside the target "
                                    "folder; refusing to extract this archive")


def extract_tar(archive: str | os.PathLike, folder: str | os.PathLike) -> int:
    """Extract every member of ``archive`` into the existing folder ``folder`` after checking it.

    Returns the number of members. Raises :class:`UnsafeArchive` for a dangerous member,
    :class:`~pix2pix.errors.DownloadError` for a file that is not a readable tar archive and
    :class:`~pix2pix.errors.OutputError` when the disk refuses a write; the caller removes ``folder``.
    """
    archive, folder_s = Path(archive), os.fspath(folder)
    kwargs = {"filter": "data"} if HAS_DATA_FILTER else {}
    n = 0
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:  # one pass: check, then write, member by member
                check_member(member, folder_s, archive)
                tar.extract(member, folder_s, set_attrs=False, **kwargs)
                n += 1
    except UnsafeArchive:
        raise
    except _FILTER_ERRORS as e:  # the data filter refused something our checks let through
        raise UnsafeArchive(f"{archive}: {e}; refusing to extract this archive") from None
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        what = getattr(e, "strerror", None) or str(e) or type(e).__name__
        if isinstance(e, OSError) and e.errno is not None:  # disk full, permissions: not the archive's fault
            raise OutputError(f"could not extract {archive} into {folder_s}: {what}") from None
        raise DownloadError(f"{archive}: not a readable tar archive ({what}); it may be damaged or "
                            "incomplete") from None
    if n == 0:
        raise DownloadError(f"{archive}: the archive is empty")
    _check_links_after(folder_s, archive)
    return n
