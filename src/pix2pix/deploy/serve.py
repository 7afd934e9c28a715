"""HTTP service: post an image, get the translated PNG back; one web page to try it in a browser.

    pix2pix serve --checkpoint runs/facades              # http://127.0.0.1:8000/
    curl -F file=@labels.png http://127.0.0.1:8000/translate -o photo.png
    curl --data-binary @labels.png -H 'Content-Type: image/png' http://127.0.0.1:8000/translate -o photo.png

    from pix2pix import load
    from pix2pix.deploy.serve import create_app, running
    app = create_app(load("runs/facades"))               # a FastAPI (ASGI) app
    with running(app) as url: ...                        # in a background thread, on a free port

Routes: ``GET /`` (the page), ``POST /translate``, ``GET /health``, ``GET /info``. Every error is
JSON ``{"error": "..."}``: 400 empty body, malformed form, missing ``file`` field, truncated image,
unparsable request; 408 body too slow; 413 body over ``max_bytes`` (counted while reading, so a
large body is never buffered) or image over ``max_pixels`` (checked from the header, before
decoding); 415 not an image or an unsupported Content-Type; 503 with ``Retry-After`` when the work
in flight is at its limit (:mod:`.limits`: requests, decoded pixels, connections, time limits).

The model runs in one worker thread, never on the event loop: requests that arrive while it is busy
wait in a queue and go through the next forward pass together (up to ``max_batch``), with
``--paper-sampling`` too: it normalises each image by its own statistics, so one user's output never
depends on another user's image.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from typing import Any, Iterator

from PIL import Image, ImageOps, UnidentifiedImageError

from ..data.convert import array_to_image
from ..data.images import to_array
from ..errors import ConfigError, missing_extra
from .translator import Translator

try:
    import uvicorn
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException as StarletteHTTPException

    try:
        import python_multipart  # noqa: F401  (form parsing; named multipart before 0.0.13)
    except ImportError:
        import multipart  # noqa: F401

    from .limits import Admission, BadRequest, ClientGone, ServerLimits, read_body
except ImportError as e:
    raise missing_extra("pix2pix serve", "serve", e) from None

log = logging.getLogger("pix2pix")

DEFAULT_MAX_BYTES = 20 * 2**20  # 20 MiB request body
DEFAULT_MAX_PIXELS = 4096 * 4096  # about 16.8 megapixels
LOOPBACK = ("127.0.0.1", "localhost", "::1")


# ----- request -> image -> PNG (the body is read by limits.read_body) ---------------------------
async def uploaded_file(request: Request, body: bytes) -> tuple[bytes, str]:
    """(image bytes, file name) from a multipart form (field ``file``) or a raw image body."""
    if not body:
        raise BadRequest(400, "empty request body: send an image as the multipart form field 'file' "
                              "(curl -F file=@image.png ...)")
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        async def replay() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            form = await Request(request.scope, replay).form(max_files=1, max_fields=16)
        except Exception as e:  # MultiPartException / HTTPException from the parser
            detail = getattr(e, "detail", None) or getattr(e, "message", None) or str(e)
            raise BadRequest(400, f"malformed multipart form ({detail})") from None
        try:
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise BadRequest(400, "no file in the form field 'file' (curl -F file=@image.png ...)")
            return await upload.read(), upload.filename or "image"
        finally:
            await form.close()
    if ctype.split(";")[0].strip() in ("", "application/octet-stream") or ctype.startswith("image/"):
        return body, "image"
    raise BadRequest(415, f"unsupported Content-Type {ctype!r}: send multipart/form-data with the image in "
                          "the field 'file', or the image itself as image/*")


def decode_image(data: bytes, max_pixels: int, channels: int = 3) -> Image.Image:
    """Bytes -> decoded RGB (3) or L (1) PIL image (EXIF orientation applied), or :class:`BadRequest`.

    The mode conversion happens here, in the request's thread, so an image the model cannot take
    is this request's 415 and never a failure inside a batch shared with other requests. The
    server calls the two halves apart, to reserve the image's pixels between them.
    """
    return decode_upload(open_upload(data, max_pixels), channels)


def open_upload(data: bytes, max_pixels: int) -> Image.Image:
    """The uploaded image opened from its header only (size checked), or :class:`BadRequest`."""
    if not data:
        raise BadRequest(400, "the uploaded file is empty (0 bytes)")
    try:
        im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise BadRequest(415, "not an image: its format is not one Pillow can decode "
                              "(send PNG, JPEG, BMP, WebP or TIFF)") from None
    except Image.DecompressionBombError as e:
        raise BadRequest(413, f"image refused as a possible decompression bomb ({e})") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise BadRequest(400, f"cannot read the image header ({e})") from None
    w, h = im.size
    if w * h > max_pixels:
        raise BadRequest(413, f"the image is {w}x{h} = {w * h} pixels, more than this server's limit of "
                              f"{max_pixels} (--max-pixels)")
    return im


def decode_upload(im: Image.Image, channels: int) -> Image.Image:
    """Decode an image from :func:`open_upload` to RGB / L, or :class:`BadRequest`."""
    try:
        im.load()
    except Image.DecompressionBombError as e:
        raise BadRequest(413, f"image refused as a possible decompression bomb ({e})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise BadRequest(400, f"truncated or corrupt image data ({e})") from None
    try:
        arr = to_array(ImageOps.exif_transpose(im), channels)
    except (ValueError, OSError) as e:
        raise BadRequest(415, f"cannot use a {im.mode} image with this {channels}-channel model ({e})") from None
    return array_to_image(arr)


def encode_png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _download_name(upload_name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", upload_name.rsplit("/", 1)[-1].rsplit(".", 1)[0])[:64] or "image"
    return f"{stem}-pix2pix.png"


# ----- the model worker -------------------------------------------------------------------------
class Batcher:
    """One worker thread runs the model; requests queued while it works share the next batch."""

    def __init__(self, translator: Translator, max_batch: int = 8):
        self.translator = translator
        self.max_batch = max(1, max_batch)
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="pix2pix-model")
        self.queue: asyncio.Queue | None = None
        self.task: asyncio.Task | None = None
        self.stats = {"requests": 0, "batches": 0, "largest_batch": 0}

    async def start(self) -> None:
        self.queue = asyncio.Queue()
        self.task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        self.executor.shutdown(wait=False)

    async def translate(self, image: Image.Image) -> Image.Image:
        if self.queue is None:
            raise RuntimeError("Batcher.start() was not called (run the app with its lifespan)")
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((image, future))
        return await future

    async def _run(self) -> None:
        assert self.queue is not None
        while True:
            batch = [await self.queue.get()]
            while len(batch) < self.max_batch and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            batch = [(im, fut) for im, fut in batch if not fut.done()]  # skip clients that went away
            if not batch:
                continue
            if not await self._answer(batch) and len(batch) > 1:
                for item in batch:  # find whose image failed: each alone, so only that request fails
                    await self._answer([item])
            self.stats["requests"] += len(batch)
            self.stats["batches"] += 1
            self.stats["largest_batch"] = max(self.stats["largest_batch"], len(batch))

    async def _answer(self, batch: list) -> bool:
        """Translate a batch in the worker thread and answer its requests; False if it failed."""
        loop = asyncio.get_running_loop()
        try:
            outputs = await loop.run_in_executor(self.executor, self.translator.translate_images,
                                                 [im for im, _ in batch])
        except Exception as e:  # answered as a 500 by the app; the loop goes on
            if len(batch) == 1 and not batch[0][1].done():
                batch[0][1].set_exception(e)
            return False
        for (_, fut), out in zip(batch, outputs):
            if not fut.done():
                fut.set_result(out)
        return True


# ----- the app ----------------------------------------------------------------------------------
def info(translator: Translator, max_bytes: int, max_pixels: int, batcher: Batcher,
         admission: Admission) -> dict[str, Any]:
    """What ``GET /info`` says: the model (no file paths), input size, device, limits, batching, load."""
    import dataclasses

    cfg = translator.config
    return {
        "model": dataclasses.asdict(cfg.model), "direction": cfg.data.direction,
        "input_size": translator.image_size, "multiple": translator.multiple,
        "input_channels": cfg.model.input_nc, "output_channels": cfg.model.output_nc,
        "device": str(translator.device), "backend": translator.kind,
        "mode": "paper_sampling" if translator.paper_sampling else "eval",
        "dtype": translator.meta.get("dtype", "float32"), "source": translator.meta.get("source", {}),
        "limits": {"max_bytes": max_bytes, "max_pixels": max_pixels, **dataclasses.asdict(admission.limits)},
        "batching": {"max_batch": batcher.max_batch, **batcher.stats}, "load": admission.snapshot(),
    }


def page() -> str:
    return resources.files("pix2pix.deploy").joinpath("static/index.html").read_text(encoding="utf-8")


def create_app(translator: Translator, *, max_bytes: int = DEFAULT_MAX_BYTES,
               max_pixels: int = DEFAULT_MAX_PIXELS, max_batch: int = 8, limits: ServerLimits | None = None) -> FastAPI:
    """The service around ``translator``. The worker starts and stops with the app's lifespan;
    ``limits`` bound the work in flight and the time given to clients (:class:`ServerLimits`)."""
    if max_bytes < 1 or max_pixels < 1:
        raise ConfigError("--max-bytes and --max-pixels must be positive")
    limits = limits or ServerLimits()
    admission = Admission(limits)
    batcher = Batcher(translator, max_batch)  # paper sampling is per image too: batches never mix results

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    app = FastAPI(title="pix2pix", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.batcher, app.state.limits, app.state.admission = batcher, limits, admission
    html = page()

    @app.exception_handler(BadRequest)
    async def bad_request(request: Request, e: BadRequest) -> JSONResponse:
        return JSONResponse({"error": e.message}, status_code=e.status, headers=e.headers)

    @app.exception_handler(ClientGone)
    async def client_gone(request: Request, e: ClientGone) -> Response:
        client = f"{request.client.host}:{request.client.port}" if request.client else "a client"
        log.info("%s went away during its upload to %s (%s)", client, request.url.path, e)
        return Response(status_code=400)  # nobody is left to read it

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(e.detail)}, status_code=e.status_code, headers=getattr(e, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": f"invalid request: {e.errors()}"}, status_code=422)

    @app.exception_handler(Exception)
    async def internal(request: Request, e: Exception) -> JSONResponse:
        log.exception("internal error while serving %s", request.url.path)
        return JSONResponse({"error": f"internal error ({type(e).__name__}); see the server log"}, status_code=500)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(html)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/info")
    async def model_info() -> dict[str, Any]:
        return info(translator, max_bytes, max_pixels, batcher, admission)

    upload_schema = {"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                           "properties": {"file": {"type": "string", "format": "binary"}}}},
        "image/*": {"schema": {"type": "string", "format": "binary"}}}}}

    @app.post("/translate", response_class=Response, openapi_extra=upload_schema,
              responses={200: {"content": {"image/png": {}}, "description": "the translated image, same size"}})
    async def translate(request: Request) -> Response:
        start = time.perf_counter()
        with admission.request() as ticket:  # 503 at once past --max-in-flight
            body = await read_body(request, max_bytes, limits.body_timeout, admission)
            data, name = await uploaded_file(request, body)
            del body
            header = await run_in_threadpool(open_upload, data, max_pixels)
            ticket.reserve(*header.size)  # 503 past --max-pixels-in-flight, before decoding
            image = await run_in_threadpool(decode_upload, header, translator.input_channels)
            del data, header
            result = await batcher.translate(image)
            png = await run_in_threadpool(encode_png, result)
        return Response(png, media_type="image/png", headers={
            "Content-Disposition": f'inline; filename="{_download_name(name)}"',
            "X-Elapsed-Ms": f"{(time.perf_counter() - start) * 1000:.1f}"})

    return app


# ----- running it -------------------------------------------------------------------------------
def bind(host: str = "127.0.0.1", port: int = 8000) -> socket.socket:
    """A listening socket, or a :class:`ConfigError` saying why not (port in use, bad host)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as e:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port} ({e.strerror or e})") from None
    return sock


def _server(app: FastAPI, log_level: str) -> uvicorn.Server:
    limits: ServerLimits = getattr(app.state, "limits", None) or ServerLimits()
    return uvicorn.Server(uvicorn.Config(app, log_level=log_level, lifespan="on", timeout_graceful_shutdown=5,
                                         **limits.uvicorn_options()))


def serve(translator: Translator, *, host: str = "127.0.0.1", port: int = 8000,
          max_bytes: int = DEFAULT_MAX_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS, max_batch: int = 8,
          limits: ServerLimits | None = None, log_level: str = "info") -> None:
    """Serve until interrupted. Binds to 127.0.0.1 unless ``host`` says otherwise."""
    app = create_app(translator, max_bytes=max_bytes, max_pixels=max_pixels, max_batch=max_batch, limits=limits)
    sock = bind(host, port)
    if host not in LOOPBACK:
        log.warning("listening on %s: other machines can reach this server, and it has no authentication", host)
    shown = f"[{host}]" if ":" in host else host
    log.info("serving the %s model on http://%s:%d/ (Ctrl-C to stop)", translator.kind, shown, sock.getsockname()[1])
    _server(app, log_level).run(sockets=[sock])


@contextlib.contextmanager
def running(app: FastAPI, host: str = "127.0.0.1", port: int = 0, timeout: float = 30.0) -> Iterator[str]:
    """Run ``app`` in a background thread and yield its base URL (port 0: a free port); stops on exit."""
    sock = bind(host, port)
    server = _server(app, "warning")
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="pix2pix-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    try:
        yield f"http://{f'[{host}]' if ':' in host else host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
