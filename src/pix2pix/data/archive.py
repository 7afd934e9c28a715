"""Safe extraction of a tar archive (``.tar``, ``.tar.gz``, ``.tar.bz2``, ``.tar.xz``).

    top = extract_tar("facades.tar.gz", "datasets/.facades.extract-1234")   # an empty folder we made

A dataset archive comes from a server we do not control. Each member goes through the standard
library's ``data`` extraction filter (``tarfile`` in Python 3.11.4+ / 3.12+, the versions this
package supports), which refuses absolute links, members and links that would land outside the
extraction folder, devices, FIFOs and other special files, and drops ownership and unsafe
permissions; leading ``/`` of member names are removed, as ``tar`` does.

One thing the filter cannot know: the archive's top folder (``facades/``) is what gets installed
as ``ROOT/NAME``, while the filter only knows the temporary extraction folder around it. A link
``facades/train/key.png -> ../../.ssh/id_rsa`` stays inside the extraction folder, so the filter
lets it through, but once installed it points at ``ROOT/.ssh/id_rsa``. So after the last member,
every link in the folder that will be installed is resolved, link by link (never trusting
``realpath``'s give-up at long paths), and must stay inside that folder.

The caller extracts into a fresh temporary folder and deletes it if this raises, so a refused
archive leaves nothing behind (see :func:`pix2pix.data.sources.install_dataset`).
"""

from __future__ import annotations

import errno
import os
import re
import tarfile
import zlib
from pathlib import Path

from ..errors import DownloadError, OutputError

# errors of the disk or the user's permissions, not of the archive: the archive is kept for a rerun
DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EACCES, errno.EPERM, errno.EMFILE,
               errno.ENFILE}
MAX_LINK_HOPS = 40  # as the kernel's own limit for following symbolic links


class UnsafeArchive(DownloadError):
    """An archive member could write or point outside the folder being installed, or is a special file."""


def _parts(name: str) -> list[str]:
    return [p for p in re.split(r"[\\/]+", name) if p not in ("", ".")]


def link_stays_inside(link: Path, top: Path) -> bool:
    """Whether the symbolic link ``link`` (inside ``top``) resolves to a path inside ``top``, following
    every link on the way (a chain of links may only escape together)."""
    stack: list[str] = []  # resolved components below top
    todo = _parts(os.path.relpath(link, top))
    hops = 0
    while todo:
        part = todo.pop(0)
        if part == "..":
            if not stack:
                return False
            stack.pop()
            continue
        here = os.path.join(top, *stack, part)
        try:
            is_link = os.path.islink(here)
        except OSError:  # a name too long to look at: refuse rather than guess
            return False
        if not is_link:
            stack.append(part)
            continue
        hops += 1
        target = os.readlink(here)
        if hops > MAX_LINK_HOPS or target.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", target):
            return False
        todo = _parts(target) + todo
    return True


def check_links(top: Path, archive: Path, folder: Path) -> None:
    """Refuse the archive if any link under ``top`` (the folder to be installed, inside the extraction
    ``folder``) resolves outside ``top`` (see the module docstring)."""
    for here, dirs, files in os.walk(top):
        for entry in dirs + files:
            path = Path(here) / entry
            if path.is_symlink() and not link_stays_inside(path, top):
                rel = path.relative_to(folder).as_posix()  # the member's name
                raise UnsafeArchive(f"{archive}: link {rel!r} -> {os.readlink(path)!r} points outside the "
                                    "dataset folder that would be installed; refusing to extract "
                                    "this archive")


def extract_tar(archive: str | os.PathLike, folder: str | os.PathLike) -> int:
    """Extract every member of ``archive`` into the existing folder ``folder`` through the ``data``
    filter. Returns the number of members; the caller checks the installed folder with
    :func:`check_links` once it knows which one it is.

    Raises :class:`UnsafeArchive` for a member the filter refuses, :class:`DownloadError` for a file
    that is not a readable tar archive or a member that cannot be extracted (a file and a folder of
    the same name, ...), both naming the member, and :class:`OutputError` when the disk refuses a
    write (full, read-only, permissions): then the archive itself is fine. The caller removes ``folder``.
    """
    archive, folder_s = Path(archive), os.fspath(folder)
    n, member = 0, None
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:  # one pass: filter, then write, member by member
                tar.extract(member, folder_s, set_attrs=False, filter="data")
                n += 1
    except tarfile.FilterError as e:
        raise UnsafeArchive(f"{archive}: member {e}; refusing to extract this archive") from None  # e names it
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        what = getattr(e, "strerror", None) or str(e) or type(e).__name__
        where = f"member {member.name!r}" if member is not None else "its first member"
        if isinstance(e, OSError) and e.errno in DISK_ERRORS:  # not the archive's fault: keep it
            raise OutputError(f"could not extract {archive} into {folder_s} ({where}): {what}") from None
        if isinstance(e, OSError) and e.errno is not None:  # ENOTDIR, EEXIST, EISDIR, ENAMETOOLONG ...
            raise DownloadError(f"{archive}: {where} cannot be extracted ({what}; e.g. a file and a folder of "
                                "the same name); the archive is malformed") from None
        after = f" after member {member.name!r}" if member is not None else ""
        raise DownloadError(f"{archive}: not a readable tar archive ({what}{after}); it may be damaged or "
                            "incomplete") from None
    if n == 0:
        raise DownloadError(f"{archive}: the archive is empty")
    return n
