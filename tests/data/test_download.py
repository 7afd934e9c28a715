"""pix2pix download: a local HTTP server (started and stopped here) serves archives.

Checked: resume of an interrupted download with HTTP Range, a server that ignores Range, the SHA-256
check, offline behaviour, --from, and archives that try to write outside the target folder.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import socket
import tarfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import noise_image, serving, write_ab
from pix2pix.cli import main
from pix2pix.data.pairs import PairedImages
from pix2pix.data.sources import BASE_URL_ENV, SOURCES, install_dataset
from pix2pix.errors import DownloadError, OutputError


# ----- a tiny HTTP server with Range support ----------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 (http.server's naming)
        srv: ArchiveServer = self.server  # type: ignore[assignment]
        rng = self.headers.get("Range")
        srv.requests.append({"path": self.path, "range": rng})
        data = srv.files.get(self.path)
        if data is None:
            self.send_error(404, "Not Found")
            return
        start = 0
        m = re.fullmatch(r"bytes=(\d+)-", rng or "")
        if m and srv.honour_range:
            start = int(m.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/gzip")
        self.end_headers()
        if srv.cut_after is not None:  # send part of the body, then drop the connection
            self.wfile.write(body[: srv.cut_after])
            self.wfile.flush()
            srv.cut_after = None
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):  # keep the test output quiet
        pass


class ArchiveServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.requests: list[dict] = []
        self.honour_range = True
        self.cut_after: int | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def server():
    with serving(ArchiveServer()) as srv:
        yield srv


# ----- archives ---------------------------------------------------------------------------------
def dataset_archive(tmp_path: Path, name: str = "facades") -> bytes:
    """A .tar.gz like the authors': NAME/train/N.jpg and NAME/val/N.jpg side-by-side pairs."""
    src = tmp_path / "archive-src"
    for split, n in (("train", 3), ("val", 1)):
        for i in range(n):
            write_ab(src / name / split / f"{i + 1}.jpg", noise_image(16, 16, i), noise_image(16, 16, 10 + i))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(src / name, arcname=name)
    return buf.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


# ----- downloads --------------------------------------------------------------------------------
def test_interrupted_download_resumes_with_range(tmp_path, server, monkeypatch):
    data = dataset_archive(tmp_path)
    server.files["/facades.tar.gz"] = data
    server.cut_after = len(data) // 3
    monkeypatch.setenv(BASE_URL_ENV, server.base)
    root = tmp_path / "datasets"

    with pytest.raises(DownloadError, match=r"stopped after \d+ of \d+ bytes .*kept: run the same command again"):
        install_dataset("facades", root, sha256=sha(data), progress=False)
    part = root / "facades.tar.gz.part"
    assert part.stat().st_size == len(data) // 3 and not (root / "facades").exists()

    target = install_dataset("facades", root, sha256=sha(data), progress=False)
    assert server.requests[-1]["range"] == f"bytes={len(data) // 3}-"  # asked only for the rest
    assert target == root / "facades"
    d = PairedImages.load(target, "train", preprocess="none")
    assert len(d) == 3 and d.source.shape == (3, 3, 16, 16)
    assert sorted(p.name for p in root.iterdir()) == ["facades"]  # no archive, .part or temporary folder left


def test_server_ignoring_range_restarts_the_download(tmp_path, server):
    data = dataset_archive(tmp_path)
    server.files["/x/facades.tar.gz"] = data
    server.honour_range = False
    root = tmp_path / "datasets"
    root.mkdir()
    (root / "facades.tar.gz.part").write_bytes(b"stale bytes from some other file" * 10)
    install_dataset("facades", root, url=f"{server.base}/x/facades.tar.gz", sha256=sha(data), progress=False)
    assert server.requests[-1]["range"] is not None  # we asked to resume; the server sent everything
    assert (root / "facades" / "train" / "1.jpg").is_file()


def test_complete_part_is_used_when_the_server_says_range_not_satisfiable(tmp_path, server):
    data = dataset_archive(tmp_path)
    server.files["/facades.tar.gz"] = data
    root = tmp_path / "datasets"
    root.mkdir()
    (root / "facades.tar.gz.part").write_bytes(data)  # killed after the last byte, before the rename
    install_dataset("facades", root, url=f"{server.base}/facades.tar.gz", sha256=sha(data), progress=False)
    assert [r["range"] for r in server.requests] == [f"bytes={len(data)}-"]
    assert (root / "facades" / "val" / "1.jpg").is_file()


def test_corrupted_download_is_rejected_by_the_checksum(tmp_path, server, monkeypatch):
    data = dataset_archive(tmp_path)
    bad = bytearray(data)
    bad[len(bad) // 2] ^= 0xFF
    server.files["/facades.tar.gz"] = bytes(bad)
    monkeypatch.setenv(BASE_URL_ENV, server.base)
    # the value recorded in the registry is enforced (here one we put there for the test)
    monkeypatch.setitem(SOURCES, "facades", SOURCES["facades"].__class__(**{**SOURCES["facades"].__dict__,
                                                                           "sha256": sha(data)}))
    root = tmp_path / "datasets"
    with pytest.raises(DownloadError, match=rf"SHA-256 mismatch \(expected {sha(data)}, got {sha(bytes(bad))}\).*"
                                            "deleted, run the same command again"):
        install_dataset("facades", root, progress=False)
    assert files_under(root) == set()  # nothing installed, the bad file deleted

    server.files["/facades.tar.gz"] = data  # the server is fixed: the next run succeeds
    install_dataset("facades", root, progress=False)
    assert (root / "facades" / "train" / "3.jpg").is_file()


def test_unrecorded_checksum_is_computed_and_shown(tmp_path, server, caplog):
    data = dataset_archive(tmp_path)
    server.files["/facades.tar.gz"] = data
    assert SOURCES["facades"].sha256 is None
    with caplog.at_level(logging.INFO, logger="pix2pix"):
        install_dataset("facades", tmp_path / "d", url=f"{server.base}/facades.tar.gz", keep_archive=True,
                        progress=False)
    assert "no SHA-256 is recorded for facades; " in caplog.text and sha(data) in caplog.text
    assert (tmp_path / "d" / "facades.tar.gz").read_bytes() == data  # --keep-archive
    assert "train with: pix2pix train --data" in caplog.text


def test_offline_download_fails_with_one_line(tmp_path, capsys, monkeypatch):
    with socket.socket() as s:  # a port on which nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(BASE_URL_ENV, f"http://127.0.0.1:{port}/datasets")
    assert main(["download", "maps", "--root", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: cannot reach http://127.0.0.1")
    assert f"pix2pix download maps --root {tmp_path / 'd'} --from FILE" in err
    assert not (tmp_path / "d" / "maps").exists()


def test_http_error_is_one_line_too(tmp_path, server, capsys):
    assert main(["download", "facades", "--root", str(tmp_path / "d"), "--url", f"{server.base}/missing.tar.gz"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the server answered 404" in err and "--from FILE" in err


def test_from_archive_installs_through_the_same_checks(tmp_path, capsys):
    data = dataset_archive(tmp_path)
    archive = tmp_path / "fetched.tar.gz"
    archive.write_bytes(data)
    root = tmp_path / "datasets"
    assert main(["download", "facades", "--root", str(root), "--from", str(archive), "--sha256", sha(data)]) == 0
    assert (root / "facades" / "train" / "2.jpg").is_file()
    assert archive.read_bytes() == data  # the user's file is left as it was
    assert main(["download", "facades", "--root", str(root), "--from", str(archive)]) == 0  # already there
    assert "already installed" in capsys.readouterr().err
    assert main(["download", "maps", "--root", str(root), "--from", str(archive), "--sha256", "0" * 64]) == 2
    err = capsys.readouterr().err
    assert "SHA-256 mismatch" in err and "nothing was installed" in err and archive.exists()
    (tmp_path / "junk.tar.gz").write_bytes(b"not an archive at all")
    assert main(["download", "maps", "--root", str(root), "--from", str(tmp_path / "junk.tar.gz")]) == 2
    assert "not a readable tar archive" in capsys.readouterr().err
    assert sorted(p.name for p in root.iterdir()) == ["facades"]


# ----- malicious archives -----------------------------------------------------------------------
def _tar(members) -> bytes:
    """members: (name, kind, payload) with kind file / dir / symlink / hardlink / fifo / chardev."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.GNU_FORMAT) as tar:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
                         "fifo": tarfile.FIFOTYPE, "chardev": tarfile.CHRTYPE}[kind]
            if kind in ("symlink", "hardlink"):
                info.linkname = payload
            tar.addfile(info)
    return buf.getvalue()


GOOD = [("facades", "dir", None), ("facades/train", "dir", None), ("facades/train/1.jpg", "file", b"x")]
# refused by tarfile's data filter (outside the extraction folder, absolute links, special files) or by
# our one extra check (a link that leaves the folder installed as ROOT/NAME: the "top-*" cases)
MALICIOUS = {
    "dotdot": GOOD + [("facades/../../evil.txt", "file", b"pwned")],
    "dotdot-first": [("../evil.txt", "file", b"pwned")] + GOOD,
    "symlink-escape": GOOD + [("facades/link", "symlink", "../../.."), ("facades/link/evil.txt", "file", b"pwned")],
    "symlink-absolute": GOOD + [("facades/etc", "symlink", "/etc")],
    "symlink-one-more-up": GOOD + [("facades/train/key.png", "symlink", "../../../outside.txt")],
    "hardlink-outside": GOOD + [("facades/h", "hardlink", "../../outside.txt")],
    "fifo": GOOD + [("facades/pipe", "fifo", None)],
    "device": GOOD + [("facades/null", "chardev", None)],
    "top-symlink-to-root": GOOD + [("facades/train/key.png", "symlink", "../../.ssh/id_rsa")],
    "top-symlink-chain": GOOD + [("facades/d", "symlink", "e/../.."), ("facades/e", "symlink", ".")],
    "top-symlink-chain-to-root": GOOD + [("facades/d", "symlink", "e/.."), ("facades/e", "symlink", ".")],
    "top-hidden-folder": GOOD + [(".x", "dir", None), ("facades/train/2.jpg", "symlink", "../../.x")],
}


@pytest.mark.parametrize("case", sorted(MALICIOUS))
def test_malicious_archives_are_refused_and_nothing_is_written_outside(tmp_path, case):
    (tmp_path / "outside.txt").write_text("precious")
    archive = tmp_path / "evil.tar.gz"
    archive.write_bytes(_tar(MALICIOUS[case]))
    root = tmp_path / "a" / "b" / "datasets"  # deep, so '../..' lands inside tmp_path where we can see it
    (root / ".ssh").mkdir(parents=True)
    (root / ".ssh" / "id_rsa").write_text("secret key")  # what ROOT/facades/train/../../.ssh would reach
    before = files_under(tmp_path)
    with pytest.raises(DownloadError, match=r"member '.*'|link '.*'.*refusing to extract this archive"):
        install_dataset("facades", root, archive=archive, progress=False)
    assert files_under(tmp_path) == before  # nothing installed, nothing written anywhere
    assert (tmp_path / "outside.txt").read_text() == "precious"


def test_a_link_that_leaves_the_installed_folder_is_refused_naming_it(tmp_path):
    """The data filter sees only the extraction folder; ROOT/NAME is one level below it."""
    archive = tmp_path / "evil.tar.gz"
    archive.write_bytes(_tar(MALICIOUS["top-symlink-to-root"]))
    with pytest.raises(DownloadError, match=r"link 'facades/train/key.png' -> '../../.ssh/id_rsa' points outside "
                                            "the dataset folder"):
        install_dataset("facades", tmp_path / "d", archive=archive, progress=False)
    assert not (tmp_path / "d" / "facades").exists()


def test_an_archive_without_a_dataset_is_refused(tmp_path):
    archive = tmp_path / "other.tar.gz"
    archive.write_bytes(_tar([("README", "file", b"hello"), ("src/x.py", "file", b"")]))
    with pytest.raises(Exception, match=r"does not hold a paired dataset.*found: README, src"):
        install_dataset("facades", tmp_path / "d", archive=archive, progress=False)
    assert files_under(tmp_path / "d") == set()


def test_links_inside_the_archive_are_kept(tmp_path):
    archive = tmp_path / "ok.tar.gz"
    links = [("facades/val", "symlink", "train"), ("facades/t2", "hardlink", "facades/train/1.jpg"),
             ("facades/up", "symlink", "train"), ("facades/up/2.jpg", "file", b"y"),  # written through a link
             ("/facades/test/3.jpg", "file", b"z")]  # a leading / is dropped, as tar does
    archive.write_bytes(_tar(GOOD + links))
    target = install_dataset("facades", tmp_path / "d", archive=archive, progress=False)
    assert os.readlink(target / "val") == "train" and (target / "val" / "1.jpg").read_bytes() == b"x"
    assert (target / "t2").read_bytes() == b"x" and (target / "train" / "2.jpg").read_bytes() == b"y"
    assert (target / "test" / "3.jpg").read_bytes() == b"z"


def test_a_member_that_cannot_be_extracted_is_named_and_a_downloaded_archive_deleted(tmp_path, server):
    """A file and a folder of the same name: the archive's fault, not the disk's."""
    broken = _tar([("facades", "dir", None), ("facades/train", "file", b"x"), ("facades/train/1.jpg", "file", b"y")])
    server.files["/facades.tar.gz"] = broken
    root = tmp_path / "d"
    with pytest.raises(DownloadError, match=r"member 'facades/train/1.jpg' cannot be extracted.*malformed; the "
                                            "downloaded file was deleted"):
        install_dataset("facades", root, url=f"{server.base}/facades.tar.gz", progress=False)
    assert files_under(root) == set()  # the next run downloads afresh instead of failing the same way
    mine = tmp_path / "mine.tar.gz"
    mine.write_bytes(broken)
    with pytest.raises(DownloadError, match="member 'facades/train/1.jpg' cannot be extracted"):
        install_dataset("facades", root, archive=mine, progress=False)
    assert mine.read_bytes() == broken  # --from: the user's file is never deleted


def test_a_downloaded_archive_that_is_refused_is_deleted_but_a_full_disk_keeps_it(tmp_path, server, monkeypatch):
    server.files["/facades.tar.gz"] = _tar(MALICIOUS["symlink-escape"])
    url, root = f"{server.base}/facades.tar.gz", tmp_path / "d"
    with pytest.raises(DownloadError, match="member 'facades/link' would link to .*outside the destination.*the "
                                            "downloaded file was deleted"):
        install_dataset("facades", root, url=url, progress=False)
    assert files_under(root) == set()  # nothing kept: the next run downloads afresh

    server.files["/facades.tar.gz"] = data = dataset_archive(tmp_path)
    real_extract = tarfile.TarFile.extract

    def disk_full(self, member, *a, **k):
        if member.name.endswith("2.jpg"):
            raise OSError(28, "No space left on device")
        return real_extract(self, member, *a, **k)

    monkeypatch.setattr(tarfile.TarFile, "extract", disk_full)
    with pytest.raises(OutputError, match="could not extract .*No space left on device"):
        install_dataset("facades", root, url=url, sha256=sha(data), progress=False)
    assert files_under(root) == {"facades.tar.gz"}  # the verified archive stays; no half-extracted folder
    monkeypatch.undo()
    requests = len(server.requests)
    install_dataset("facades", root, url=url, sha256=sha(data), progress=False)
    assert len(server.requests) == requests  # space freed: installed from the archive already here
    assert sorted(p.name for p in root.iterdir()) == ["facades"]
