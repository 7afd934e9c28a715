"""The HTTP service: translation, health and info, every bad request answered 4xx with JSON,
batching, and a model that never blocks the event loop."""

from __future__ import annotations

import asyncio
import copy
import io
import struct
import sys
import threading
import time
import warnings
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import noise_image
from pix2pix import Translator, load
from pix2pix.cli import main
from pix2pix.errors import ConfigError

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install -e '.[serve]')")
pytest.importorskip("httpx", reason="httpx (the test extra) is needed for FastAPI's TestClient")

with warnings.catch_warnings():  # starlette's note about httpx2; httpx is what FastAPI documents
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402

from pix2pix.deploy.serve import Batcher, bind, create_app, running  # noqa: E402

MAX_BYTES, MAX_PIXELS = 200_000, 128 * 128


@pytest.fixture(scope="module")
def translator(trained_run) -> Translator:
    return load(trained_run, device="cpu")


@pytest.fixture(scope="module")
def client(translator):
    with TestClient(create_app(translator, max_bytes=MAX_BYTES, max_pixels=MAX_PIXELS)) as c:
        yield c


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def png_header_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header says width x height (the pixel data would never fit)."""
    data = bytearray(png_bytes(Image.new("L", (1, 1))))
    data[16:24] = struct.pack(">II", width, height)  # IHDR width, height
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))  # IHDR CRC
    return bytes(data)


def test_translate_returns_the_translated_png_at_the_input_size(client, translator):
    image = Image.fromarray(noise_image(50, 70, seed=3))
    r = client.post("/translate", files={"file": ("labels.png", png_bytes(image), "image/png")})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.headers["content-disposition"] == 'inline; filename="labels-pix2pix.png"'
    out = Image.open(io.BytesIO(r.content))
    assert out.format == "PNG" and out.size == (70, 50)
    assert np.array_equal(np.asarray(out), np.asarray(translator(image)))  # the library's own result
    raw = client.post("/translate", content=png_bytes(image), headers={"Content-Type": "image/png"})
    assert raw.status_code == 200 and raw.content == r.content  # a raw image body works too


def test_health_and_info(client):
    assert client.get("/health").json() == {"status": "ok"}
    r = client.get("/info")
    info = r.json()
    assert info["model"]["netG"] == "unet_32" and info["input_size"] == 32 and info["multiple"] == 32
    assert info["device"] == "cpu" and info["backend"] == "checkpoint" and info["mode"] == "eval"
    assert {k: info["limits"][k] for k in ("max_bytes", "max_pixels")} == {"max_bytes": MAX_BYTES,
                                                                          "max_pixels": MAX_PIXELS}
    assert info["limits"]["max_in_flight"] == 16 and info["load"]["in_flight"] == 0
    assert info["source"]["file"] == "latest.pt"
    assert "data_root" not in r.text and "/tmp" not in r.text  # no server paths leak


def _noise_png(size: int) -> bytes:
    return png_bytes(Image.fromarray(noise_image(size, size, seed=1)))


BAD_REQUESTS = {
    "empty body": (dict(), 400, "empty request body"),
    "empty file": (dict(files={"file": ("a.png", b"", "image/png")}), 400, "empty (0 bytes)"),
    "not an image": (dict(files={"file": ("a.png", b"hello, world" * 10, "image/png")}), 415, "not an image"),
    "truncated image": (dict(files={"file": ("a.png", _noise_png(100)[:15000], "image/png")}), 400,
                        "truncated or corrupt image data"),
    "too many pixels": (dict(files={"file": ("a.png", png_bytes(Image.new("RGB", (200, 200))), "image/png")}),
                        413, "200x200 = 40000 pixels, more than this server's limit of 16384 (--max-pixels)"),
    "header claims a huge image": (dict(files={"file": ("a.png", png_header_claiming(5000, 5000), "image/png")}),
                                   413, "--max-pixels"),
    "decompression bomb": (dict(files={"file": ("a.png", png_header_claiming(60000, 60000), "image/png")}),
                           413, "decompression bomb"),
    "body over max bytes": (dict(files={"file": ("a.png", b"\0" * (MAX_BYTES + 1), "image/png")}), 413,
                            f"larger than this server's limit of {MAX_BYTES} bytes (--max-bytes)"),
    "no file field": (dict(files={"image": ("a.png", _noise_png(32), "image/png")}), 400, "field 'file'"),
    "wrong content type": (dict(content=b'{"file": 1}', headers={"Content-Type": "application/json"}), 415,
                           "unsupported Content-Type 'application/json'"),
    "malformed form": (dict(content=b"--x\r\nnonsense", headers={"Content-Type": "multipart/form-data"}), 400,
                       "malformed multipart form"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_requests_get_4xx_with_a_json_error(client, case):
    kwargs, status, message = BAD_REQUESTS[case]
    r = client.post("/translate", **kwargs)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json" and message in r.json()["error"]


def test_body_size_is_checked_while_reading_without_content_length(client):
    sent = []

    def chunks():  # streamed: no Content-Length header, so only counting can stop it
        for _ in range(50):
            sent.append(1)
            yield b"\0" * 10_000

    r = client.post("/translate", content=chunks(), headers={"Content-Type": "image/png"})
    assert r.status_code == 413 and "--max-bytes" in r.json()["error"]


def test_other_errors_are_json_too(client):
    r = client.get("/translate")
    assert r.status_code == 405 and r.json() == {"error": "Method Not Allowed"}
    assert client.get("/nowhere").json() == {"error": "Not Found"}


def test_requests_that_arrive_together_share_a_batch(translator):
    images = [Image.fromarray(noise_image(32 + 8 * i, 40, seed=i)) for i in range(4)]

    async def together(t: Translator):
        batcher = Batcher(t, max_batch=8)
        await batcher.start()
        try:
            return await asyncio.gather(*(batcher.translate(im) for im in images)), batcher.stats
        finally:
            await batcher.stop()

    outputs, stats = asyncio.run(together(translator))
    assert stats == {"requests": 4, "batches": 1, "largest_batch": 4}
    for image, out in zip(images, outputs):  # eval mode: batching does not change anyone's result
        assert np.abs(np.asarray(out, dtype=int) - np.asarray(translator(image), dtype=int)).max() <= 1
    # paper sampling normalises each image by its own statistics, so its requests share batches too
    # (dropout off here, so that only the normalisation could mix one user's image into another's)
    g = copy.deepcopy(translator.generator)
    for m in g.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    paper = Translator(g, translator.config, paper_sampling=True)
    assert create_app(paper).state.batcher.max_batch == 8
    outputs, stats = asyncio.run(together(paper))
    assert stats["largest_batch"] == 4
    for image, out in zip(images, outputs):
        assert np.abs(np.asarray(out, dtype=int) - np.asarray(paper(image), dtype=int)).max() <= 1


class PickyGenerator:
    """Fails on any batch that holds an all-black image (a stand-in for a model error)."""

    paper_sampling = False

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if (x == -1).flatten(1).all(1).any():
            raise ValueError("black image")
        return torch.tanh(x)


def test_a_failing_image_fails_only_its_own_request(translator):
    images = [Image.fromarray(noise_image(32, 32, seed=1)), Image.new("RGB", (32, 32)),
              Image.fromarray(noise_image(32, 32, seed=2))]

    async def together():
        batcher = Batcher(Translator(PickyGenerator(), translator.config), max_batch=8)
        await batcher.start()
        try:
            return await asyncio.gather(*(batcher.translate(im) for im in images), return_exceptions=True)
        finally:
            await batcher.stop()

    ok1, failed, ok2 = asyncio.run(together())
    assert isinstance(failed, ValueError) and isinstance(ok1, Image.Image) and isinstance(ok2, Image.Image)
    app = create_app(Translator(PickyGenerator(), translator.config))
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.post("/translate", files={"file": ("black.png", png_bytes(Image.new("RGB", (8, 8))), "image/png")})
    assert r.status_code == 500 and r.json() == {"error": "internal error (ValueError); see the server log"}


def test_an_image_mode_the_model_cannot_take_is_a_415(translator):
    gray = Translator(PickyGenerator(), config_with_channels(1))
    lab = io.BytesIO()
    Image.new("LAB", (16, 16)).save(lab, format="TIFF")  # Pillow cannot turn LAB into grayscale
    with TestClient(create_app(gray)) as c:
        r = c.post("/translate", files={"file": ("lab.tif", lab.getvalue(), "image/tiff")})
        assert r.status_code == 415 and "cannot use a LAB image with this 1-channel model" in r.json()["error"]
        ok = c.post("/translate", files={"file": ("a.png", _noise_png(20), "image/png")})
        assert ok.status_code == 200 and Image.open(io.BytesIO(ok.content)).mode == "L"


def config_with_channels(n: int):
    from pix2pix.config import TrainConfig

    return TrainConfig.from_flat({"netG": "unet_32", "crop_size": 32, "load_size": 36, "input_nc": n,
                                  "output_nc": n})


class SlowGenerator:
    """Sleeps inside the 'forward pass' and says when it is there."""

    paper_sampling = False

    def __init__(self, seconds: float):
        self.seconds, self.inside = seconds, threading.Event()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.inside.set()
        time.sleep(self.seconds)
        return torch.tanh(x)


def test_the_model_never_blocks_the_event_loop(translator):
    import httpx

    slow = SlowGenerator(2.0)
    app = create_app(Translator(slow, translator.config))
    result = {}
    with running(app) as url:
        def post():
            r = httpx.post(f"{url}/translate", files={"file": ("a.png", _noise_png(32), "image/png")}, timeout=60)
            result["status"], result["done"] = r.status_code, time.monotonic()

        thread = threading.Thread(target=post)
        thread.start()
        assert slow.inside.wait(30), "the request never reached the model"
        start = time.monotonic()
        health = httpx.get(f"{url}/health", timeout=10)
        answered = time.monotonic()
        thread.join(60)
    assert health.status_code == 200 and answered - start < 1.0  # while the model sleeps for 2 s
    assert result["status"] == 200 and result["done"] > answered


def test_it_listens_on_loopback_unless_told_otherwise(client, translator):
    from pix2pix.cli import build_parser

    assert build_parser().parse_args(["serve", "--checkpoint", "x"]).host == "127.0.0.1"
    with running(client.app) as url:
        assert url.startswith("http://127.0.0.1:")


def test_cli_serve_errors_are_one_line(trained_run, capsys, monkeypatch):
    busy = bind("127.0.0.1", 0)
    port = busy.getsockname()[1]
    try:
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}"):
            bind("127.0.0.1", port)
        assert main(["serve", "--checkpoint", str(trained_run), "--port", str(port)]) == 2
        assert f"error: cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
    finally:
        busy.close()
    monkeypatch.setitem(sys.modules, "fastapi", None)  # the serve extra is missing
    monkeypatch.delitem(sys.modules, "pix2pix.deploy.serve")
    assert main(["serve", "--checkpoint", str(trained_run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: pix2pix serve needs the 'serve' extra") and "pip install" in err
    assert len(err.strip().splitlines()) == 1
