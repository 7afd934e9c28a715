"""The server under load and against broken clients, over real sockets on loopback: work in flight is
bounded (503 + Retry-After at once), slow headers and bodies are timed out, a client that goes away is
one log line, and a request h11 cannot parse gets a JSON 400. (Memory under a burst of large uploads,
and latency under load, are measured by benchmarks/serve_load.py.)"""

from __future__ import annotations

import io
import json
import logging
import socket
import threading
import time

import pytest
import torch
from PIL import Image

from conftest import noise_image
from pix2pix import Translator, load

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install -e '.[serve]')")
httpx = pytest.importorskip("httpx", reason="httpx (the test extra) is needed")

from pix2pix.deploy.serve import ServerLimits, create_app, running  # noqa: E402


@pytest.fixture(scope="module")
def translator(trained_run) -> Translator:
    return load(trained_run, device="cpu")


class HeldGenerator(torch.nn.Module):
    """Holds every forward pass until released, so requests pile up in flight."""

    def __init__(self):
        super().__init__()
        self.inside, self.release = threading.Event(), threading.Event()

    def forward(self, x):
        self.inside.set()
        assert self.release.wait(30)
        return torch.tanh(x)


def png(size: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(noise_image(size, size, seed=size)).save(buf, format="PNG")
    return buf.getvalue()


def post(url: str, data: bytes, out: list) -> threading.Thread:
    def run():
        out.append(httpx.post(f"{url}/translate", files={"file": ("a.png", data, "image/png")}, timeout=60))
    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.parametrize("limit", ["requests", "pixels"])
def test_work_past_the_limits_is_answered_503_at_once_and_health_still_answers(translator, limit):
    held = HeldGenerator()
    limits = ServerLimits(max_in_flight=1) if limit == "requests" else ServerLimits(max_pixels_in_flight=64 * 64 + 10)
    app = create_app(Translator(held, translator.config), limits=limits)
    first: list = []
    with running(app) as url:
        thread = post(url, png(64), first)
        try:
            assert held.inside.wait(30), "the first request never reached the model"
            start = time.monotonic()
            r = httpx.post(f"{url}/translate", files={"file": ("b.png", png(64), "image/png")}, timeout=10)
            assert time.monotonic() - start < 2  # at once, not queued
            assert r.status_code == 503 and r.headers["retry-after"] == "1"
            assert r.headers["content-type"] == "application/json"
            flag = "--max-in-flight" if limit == "requests" else "--max-pixels-in-flight"
            assert flag in r.json()["error"]
            assert httpx.get(f"{url}/health", timeout=2).json() == {"status": "ok"}
            load_now = httpx.get(f"{url}/info", timeout=2).json()["load"]
            assert load_now["in_flight"] == 1 and load_now[f"refused_{limit}"] == 1
        finally:
            held.release.set()
            thread.join(60)
        assert first[0].status_code == 200
        assert httpx.get(f"{url}/info", timeout=2).json()["load"] | {"admitted": 0} == {
            "in_flight": 0, "pixels_in_flight": 0, "admitted": 0, "refused_requests": int(limit == "requests"),
            "refused_pixels": int(limit == "pixels"), "disconnected": 0, "timed_out": 0}


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    s = socket.create_connection((host, int(port)), timeout=10)
    return s


def read_all(s: socket.socket) -> bytes:
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    return data


def test_slow_headers_and_idle_connections_are_closed(translator):
    app = create_app(translator, limits=ServerLimits(header_timeout=0.5, keep_alive=0.5))
    with running(app) as url:
        silent, slow = connect(url), connect(url)
        slow.sendall(b"POST /translate HTTP/1.1\r\nHost: x\r\n")  # and never the rest
        start = time.monotonic()
        assert read_all(silent) == b"" and read_all(slow) == b""  # closed by the server
        assert time.monotonic() - start < 5
        kept = connect(url)
        kept.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = read_all(kept)  # the answer, then the connection closes when idle (keep-alive)
        assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b'{"status":"ok"}')


def test_a_slow_body_gets_408(translator):
    app = create_app(translator, limits=ServerLimits(body_timeout=0.5))
    with running(app) as url:
        s = connect(url)
        s.sendall(b"POST /translate HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\n"
                  + b"\x89PNG" * 4)
        answer = read_all(s)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408") and b"--body-timeout" in body and b"received 16 bytes" in body


def test_a_client_that_goes_away_mid_upload_is_one_log_line(translator, caplog, capfd):
    app = create_app(translator)
    with caplog.at_level(logging.INFO, logger="pix2pix"), running(app) as url:
        s = connect(url)
        s.sendall(b"POST /translate HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 100000\r\n\r\n"
                  + b"\0" * 1000)
        s.close()
        deadline = time.monotonic() + 10
        while "went away" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
        assert httpx.get(f"{url}/info", timeout=2).json()["load"]["disconnected"] == 1
    lines = [r.getMessage() for r in caplog.records if r.name == "pix2pix"]
    assert [m for m in lines if "went away during its upload to /translate (1000 of 100000 bytes received)" in m]
    assert not [m for m in lines if "internal error" in m]
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize("header", [b"Content-Length: abc", b"Content-Length: -5", b"Content-Length: 1, 2"])
def test_a_malformed_content_length_gets_a_json_400(translator, header):
    with running(create_app(translator)) as url:
        s = connect(url)
        s.sendall(b"POST /translate HTTP/1.1\r\nHost: x\r\n" + header + b"\r\n\r\n")
        answer = read_all(s)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and b"content-type: application/json" in head.lower()
    assert "invalid HTTP request" in json.loads(body)["error"]
