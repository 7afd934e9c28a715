"""Pretrained generators by name: pix2pix download --model through the datasets' resumable fetch
(a local HTTP server here), converted once into the cache, then usable by name; SHA-256 recorded
on first use; offline, one line with the address and --from FILE."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import torch

from conftest import serving
from pix2pix import load
from pix2pix.cli import main
from pix2pix.deploy.registry import BASE_URL_ENV, MODELS, cached_path, models_dir
from pix2pix.errors import CheckpointError, DownloadError

pytestmark = pytest.mark.usefixtures("one_thread")


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        data = self.server.files.get(self.path)  # type: ignore[attr-defined]
        self.server.requests.append(self.path)  # type: ignore[attr-defined]
        if data is None:
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.files, srv.requests = {}, []
    with serving(srv):
        yield srv


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PIX2PIX_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def fixture_bytes(reference_files) -> bytes:
    return (reference_files / "unet_64_batch_ngf8" / "latest_net_G.pth").read_bytes()


def test_download_converts_once_and_the_name_works_anywhere(reference_files, server, cache, monkeypatch, tmp_path):
    server.files["/facades_label2photo.pth"] = fixture_bytes(reference_files)
    monkeypatch.setenv(BASE_URL_ENV, f"http://127.0.0.1:{server.server_address[1]}")
    assert main(["download", "--model", "facades_label2photo"]) == 0
    assert cached_path("facades_label2photo").is_file() and not (models_dir() / "facades_label2photo.pth").exists()
    record = json.loads((models_dir() / "sha256.json").read_text())["facades_label2photo"]
    import hashlib

    assert record["sha256"] == hashlib.sha256(server.files["/facades_label2photo.pth"]).hexdigest()
    t = load("facades_label2photo", device="cpu")
    assert t.config.data.direction == "BtoA" and t.config.model.dropout_placement == "reference"
    d = reference_files / "unet_64_batch_ngf8"
    x, y = torch.from_numpy(np.load(d / "input.npy")), torch.from_numpy(np.load(d / "output_eval.npy"))
    with torch.no_grad():
        assert float((t.generator(x) - y).abs().max()) <= 1e-5
    assert t.meta["source"]["pretrained"] == "facades_label2photo"
    assert main(["download", "--model", "facades_label2photo"]) == 0  # already installed: no request
    assert server.requests == ["/facades_label2photo.pth"]


def test_a_changed_file_does_not_match_the_recorded_hash(reference_files, server, cache, monkeypatch, tmp_path):
    monkeypatch.setenv(BASE_URL_ENV, f"http://127.0.0.1:{server.server_address[1]}")
    server.files["/sat2map.pth"] = fixture_bytes(reference_files)
    assert main(["download", "--model", "sat2map"]) == 0
    cached_path("sat2map").unlink()  # fetch again: the server now has another file under that name
    other = tmp_path / "other.pth"
    torch.save(torch.load(reference_files / "resnet_6blocks_batch_ngf8" / "latest_net_G.pth", weights_only=True), other)
    server.files["/sat2map.pth"] = other.read_bytes()
    with pytest.raises(DownloadError, match="differs from .* recorded for sat2map"):
        from pix2pix.deploy.registry import install_model

        install_model("sat2map", progress=False)
    assert not cached_path("sat2map").exists() and not (models_dir() / "sat2map.pth").exists()


def test_offline_one_line_with_the_address_and_from_file(reference_files, cache, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv(BASE_URL_ENV, "http://127.0.0.1:9")  # nothing listens on the discard port
    assert main(["download", "--model", "map2sat"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "http://127.0.0.1:9/map2sat.pth" in err
    assert "pix2pix download --model map2sat --from FILE" in err
    with pytest.raises(CheckpointError, match="not downloaded yet; run: pix2pix download --model map2sat"):
        load("map2sat", device="cpu")
    fetched = tmp_path / "map2sat.pth"
    fetched.write_bytes(fixture_bytes(reference_files))
    assert main(["download", "--model", "map2sat", "--from", str(fetched)]) == 0
    assert fetched.exists() and load("map2sat", device="cpu").config.data.direction == "BtoA"


def test_a_file_that_is_no_generator_is_refused_and_not_cached(cache, tmp_path):
    from pix2pix.deploy.registry import install_model

    bad = tmp_path / "edges2shoes.pth"
    torch.save({"weight": torch.zeros(2)}, bad)
    with pytest.raises(CheckpointError, match="neither a pix2pix checkpoint"):
        install_model("edges2shoes", from_file=bad, progress=False)
    assert not cached_path("edges2shoes").exists()


def test_the_list_names_every_model(cache, capsys):
    assert main(["download", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in MODELS) and "facades" in out
