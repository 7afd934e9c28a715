"""Who may write a run folder: one training process at a time, and never over another run's files.

    with RunFolder("runs/x").exclusive():      # RUN/.lock held (rank 0 only) until the block ends
        RunFolder("runs/x").check_new_run(overwrite=False)

The lock is ``fcntl.flock`` on ``RUN/.lock``: the kernel releases it when the holding process ends in
any way (SIGKILL and crashes included), so a lock can never be stale; the file itself stays and
means nothing once nobody holds it. The holder writes its pid and host into it, for the message the
second process stops with. Where ``fcntl`` does not exist (Windows) nothing is locked. On network
file systems ``flock`` is as reliable as the server's locking (Linux NFS maps it to POSIX locks).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import socket
from pathlib import Path
from typing import Iterator, Sequence

from ..errors import CheckpointError, ConfigError, OutputError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("pix2pix")
LOCK_FILE = ".lock"


class RunFolderInUse(CheckpointError):
    """Another process is training in this run folder."""


@contextlib.contextmanager
def hold_lock(folder: Path, create: bool = True) -> Iterator[None]:
    """Hold an exclusive OS lock on ``folder/.lock`` for the block, or raise :class:`RunFolderInUse`
    at once naming ``folder`` and the holder. ``create``: make ``folder`` if missing (else a missing
    folder is left to the caller's own error)."""
    if fcntl is None or (not create and not folder.is_dir()):
        yield
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise CheckpointError(f"run folder {folder} is not writable: {e.strerror or e}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise CheckpointError(f"cannot lock run folder {folder}: {e.strerror or e}") from None
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise RunFolderInUse(f"run folder {folder} is in use by {holder}; wait for that run to end (or stop "
                                 "it), or choose another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pix2pix train, pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def present(paths: Sequence[Path]) -> list[Path]:
    """Those of ``paths`` that exist (folders only when they hold something)."""
    return [p for p in paths if p.is_file() or (p.is_dir() and any(p.iterdir()))]


def refuse_or_clear(folder: Path, marks: Sequence[Path], owned: Sequence[Path], overwrite: bool) -> None:
    """A new run in ``folder``: refuse when any of ``marks`` (the files that make it another run's)
    is there, unless ``overwrite``, which removes ``owned`` (every file of the run layout) and
    nothing else the folder holds."""
    found = present(marks)
    if not found:
        return
    names = ", ".join(p.name + ("/" if p.is_dir() else "") for p in found)
    if not overwrite:
        raise ConfigError(f"{folder} already holds a run ({names}); continue it with --resume {folder}, replace it "
                          "with --overwrite, or choose another --out")
    try:
        for p in owned:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            elif p.exists() or p.is_symlink():
                p.unlink()
    except OSError as e:
        raise OutputError(f"--overwrite: could not remove {e.filename or folder}: {e.strerror or e}") from None
    log.warning("--overwrite: removed the earlier run's files from %s (%s)", folder, names)
