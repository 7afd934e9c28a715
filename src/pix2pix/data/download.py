"""HTTP(S) download that survives interruptions, and SHA-256 of files.

    fetch("http://host/facades.tar.gz", Path("datasets/facades.tar.gz"))

Bytes go to ``DEST.part``; only a complete download is renamed to ``DEST``. When ``DEST.part``
exists, the request asks for the rest with an HTTP ``Range`` header:

- ``206 Partial Content`` starting where the part ends: the new bytes are appended;
- ``200 OK`` (a server that ignores ``Range``) or a 206 starting elsewhere: the part is discarded
  and the file is downloaded from the start;
- ``416 Range Not Satisfiable``: the part is already complete if its size is the file's size
  (``Content-Range: bytes */SIZE``), else it is discarded and the download starts over.

A connection that drops, times out or ends early leaves the part in place and raises
:class:`~pix2pix.errors.DownloadError` saying so; running the same command again resumes. A
server that cannot be reached, or answers with an HTTP error, raises :class:`ServerUnreachable`,
so the caller can say how to install the file by hand. Whether the bytes are the right ones is
checked by the caller against a SHA-256 (:func:`sha256_file`), never by trusting the server.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import DownloadError, OutputError

log = logging.getLogger("pix2pix")
CHUNK = 1 << 20
TIMEOUT = 30.0  # seconds without a byte before a connection counts as dropped


class ServerUnreachable(DownloadError):
    """The server could not be reached (offline, DNS failure, refused) or would not deliver the file
    (an HTTP error): nothing was downloaded."""


def part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def _one_line(e: BaseException) -> str:
    reason = getattr(e, "reason", None) or getattr(e, "strerror", None) or str(e) or type(e).__name__
    return " ".join(str(reason).split())


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """(first byte, total size) from ``bytes 100-199/200`` or ``bytes */200``; None where unknown."""
    m = re.fullmatch(r"\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)\s*", value or "")
    if not m:
        return None, None
    start = int(m.group(1)) if m.group(1) is not None else None
    total = int(m.group(2)) if m.group(2) != "*" else None
    return start, total


def _open(url: str, offset: int, timeout: float):
    from .._version import __version__

    headers = {"User-Agent": f"pix2pix/{__version__}", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def fetch(url: str, dest: str | os.PathLike, *, progress: bool = True, timeout: float = TIMEOUT) -> Path:
    """Download ``url`` to ``dest`` (resuming ``dest.part``); returns ``dest``. See the module docstring."""
    dest = Path(dest)
    part = part_path(dest)
    for attempt in range(2):  # the second attempt only after discarding a part the server cannot continue
        offset = part.stat().st_size if part.exists() else 0
        try:
            resp = _open(url, offset, timeout)
        except urllib.error.HTTPError as e:
            if e.code == 416 and offset:
                _, total = _content_range(e.headers.get("Content-Range"))
                if total == offset:  # the part was already complete
                    os.replace(part, dest)
                    return dest
                log.info("%s: the server cannot continue the partial download; starting again", url)
                part.unlink()
                continue
            raise ServerUnreachable(f"{url}: the server answered {e.code} {_one_line(e)}") from None
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
            raise ServerUnreachable(f"cannot reach {url} ({_one_line(e)})") from None
        with resp:
            status = getattr(resp, "status", 200)
            start, total = _content_range(resp.headers.get("Content-Range"))
            if offset and status == 206 and start == offset:
                mode = "ab"
                log.info("resuming the download of %s at %.1f MB", url, offset / 1e6)
            elif status == 206:  # a range we did not ask for: start over
                if attempt == 0 and part.exists():
                    part.unlink()
                    continue
                raise DownloadError(f"{url}: the server sent a partial answer that does not fit the request")
            else:
                if offset:
                    log.info("%s: the server does not support resuming; downloading from the start", url)
                offset, mode = 0, "wb"
                length = resp.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
            _copy(resp, part, mode, offset, total, url, progress)
        os.replace(part, dest)
        return dest
    raise DownloadError(f"{url}: the server could not continue the partial download {part}; delete it and try again")


def _copy(resp, part: Path, mode: str, offset: int, total: int | None, url: str, progress: bool) -> None:
    from tqdm.auto import tqdm

    got = offset
    try:
        f = open(part, mode)
    except OSError as e:
        raise OutputError(f"cannot write {part}: {e.strerror or e}") from None
    with f, tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                 desc=part.name.removesuffix(".part"), disable=not progress, leave=False) as bar:
        while True:
            try:
                chunk = resp.read(CHUNK)
            except (http.client.HTTPException, OSError) as e:  # IncompleteRead, reset, timeout
                f.flush()
                raise DownloadError(_interrupted(url, part, f.tell(), total, _one_line(e))) from None
            if not chunk:
                break
            try:
                f.write(chunk)
            except OSError as e:
                raise OutputError(f"could not write {part}: {e.strerror or e}; free some space and run the same "
                                  "command again to resume") from None
            got += len(chunk)
            bar.update(len(chunk))
        f.flush()
        os.fsync(f.fileno())
    if total is not None and got < total:
        raise DownloadError(_interrupted(url, part, got, total, "the connection closed early"))


def _interrupted(url: str, part: Path, got: int, total: int | None, why: str) -> str:
    of = f" of {total}" if total is not None else ""
    return (f"the download of {url} stopped after {got}{of} bytes ({why}); the partial file {part} is kept: "
            "run the same command again to resume")


def sha256_file(path: str | os.PathLike, progress: bool = False) -> str:
    """Hex SHA-256 of a file, read in 1 MB chunks."""
    from tqdm.auto import tqdm

    path = Path(path)
    h = hashlib.sha256()
    with open(path, "rb") as f, tqdm(total=path.stat().st_size, unit="B", unit_scale=True, unit_divisor=1024,
                                     desc=f"checking {path.name}", disable=not progress, leave=False) as bar:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            bar.update(len(chunk))
    return h.hexdigest()
