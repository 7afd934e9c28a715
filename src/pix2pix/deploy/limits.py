"""What keeps ``pix2pix serve`` standing under load: bounded work in flight, time limits, and clean
answers to broken clients.

    limits = ServerLimits(max_in_flight=16, max_pixels_in_flight=2 * 4096 * 4096)
    app = create_app(translator, limits=limits)

- **Work in flight.** At most ``max_in_flight`` translation requests are being read, decoded, queued
  for the model or translated at once, and the images among them hold at most
  ``max_pixels_in_flight`` decoded pixels (reserved from the image header, before decoding; a
  4096x4096 upload costs about 0.9 GB while it is translated). A request past either limit is
  answered ``503`` with ``Retry-After`` at once, never queued without end. ``/health``, ``/info``
  and the page are not counted.
- **Connections.** uvicorn's own ``limit_concurrency`` (``max_connections``; its plain-text 503) and
  ``timeout_keep_alive`` (idle connections between requests), and h11's header size limit
  (``h11_max_incomplete_event_size``).
- **Time.** uvicorn has no limit for the arrival of a request's headers or body, so
  :class:`GuardedH11Protocol` closes a connection whose headers are not complete ``header_timeout``
  seconds after it opened (or after its previous response), and :func:`read_body` answers ``408``
  when the body is not complete within ``body_timeout`` seconds.
- **Broken clients.** A client that goes away mid-upload is one log line (:class:`ClientGone`), not a
  traceback; a request h11 cannot parse (a malformed ``Content-Length``, say) gets a JSON ``400``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import asdict, dataclass
from typing import Any, Iterator

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..errors import ConfigError

log = logging.getLogger("pix2pix")
RETRY_AFTER_S = 1


@dataclass(frozen=True)
class ServerLimits:
    """Bounds on the work, the connections and the time one server gives its clients."""

    max_in_flight: int = 16  # translation requests being read, decoded, queued or translated
    max_pixels_in_flight: int = 2 * 4096 * 4096  # decoded pixels among them
    max_connections: int = 256  # uvicorn limit_concurrency: open connections and tasks
    header_timeout: float = 10.0  # seconds for a request's headers to arrive
    body_timeout: float = 60.0  # seconds for its body to arrive
    keep_alive: float = 5.0  # seconds an idle connection stays open between requests
    max_header_bytes: int = 16 * 1024  # h11: largest request line + headers

    def __post_init__(self) -> None:
        bad = [k for k, v in asdict(self).items() if not v > 0]
        if bad:
            raise ConfigError(f"serve limits must be positive: {', '.join(bad)}")

    def uvicorn_options(self) -> dict[str, Any]:
        return {"limit_concurrency": self.max_connections, "timeout_keep_alive": self.keep_alive,
                "h11_max_incomplete_event_size": self.max_header_bytes, "http": guarded_protocol(self.header_timeout)}


class BadRequest(Exception):
    """A request answered with ``status`` and ``{"error": message}`` (and ``headers``)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


class ClientGone(Exception):
    """The client closed the connection before its request was read: nobody is left to answer."""


def busy(message: str) -> BadRequest:
    return BadRequest(503, f"{message}; try again shortly", {"Retry-After": str(RETRY_AFTER_S)})


class Admission:
    """Counts the translation requests and decoded pixels in flight (on the event loop: no locks)."""

    def __init__(self, limits: ServerLimits):
        self.limits = limits
        self.requests = self.pixels = 0
        self.stats = {"admitted": 0, "refused_requests": 0, "refused_pixels": 0, "disconnected": 0, "timed_out": 0}

    @contextlib.contextmanager
    def request(self) -> Iterator["Ticket"]:
        """One request's stay, from its first byte to its answer; 503 at once when full."""
        if self.requests >= self.limits.max_in_flight:
            self.stats["refused_requests"] += 1
            raise busy(f"this server is already working on {self.requests} requests, its limit (--max-in-flight)")
        self.requests += 1
        self.stats["admitted"] += 1
        ticket = Ticket(self)
        try:
            yield ticket
        finally:
            self.requests -= 1
            self.pixels -= ticket.pixels

    def snapshot(self) -> dict[str, Any]:
        return {"in_flight": self.requests, "pixels_in_flight": self.pixels, **self.stats}


class Ticket:
    def __init__(self, admission: Admission):
        self.admission, self.pixels = admission, 0

    def reserve(self, width: int, height: int) -> None:
        """Hold ``width * height`` decoded pixels until the answer; 503 when the budget is spent."""
        a, n = self.admission, width * height
        if a.pixels and a.pixels + n > a.limits.max_pixels_in_flight:  # one image alone is always let in
            a.stats["refused_pixels"] += 1
            raise busy(f"this server is translating {a.pixels} pixels of images already; with this {width}x{height} "
                       f"image that would pass its limit of {a.limits.max_pixels_in_flight} (--max-pixels-in-flight)")
        a.pixels += n
        self.pixels += n


async def read_body(request: Any, max_bytes: int, timeout: float, admission: Admission | None = None) -> bytes:
    """The request body: 413 as soon as it is known to exceed ``max_bytes``, 408 when it has not
    arrived within ``timeout`` seconds, :class:`ClientGone` when the client went away."""
    too_big = f"the request body is larger than this server's limit of {max_bytes} bytes (--max-bytes)"
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise BadRequest(400, f"invalid Content-Length header {length!r}")
        if int(length) > max_bytes:
            raise BadRequest(413, too_big)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    chunks, size = [], 0
    while True:
        try:
            message = await asyncio.wait_for(request.receive(), max(0.0, deadline - loop.time()))
        except asyncio.TimeoutError:
            if admission is not None:
                admission.stats["timed_out"] += 1
            raise BadRequest(408, f"the request body did not arrive within {timeout:g} s (received {size} bytes; "
                                  "--body-timeout)", {"Connection": "close"}) from None
        if message["type"] == "http.disconnect":
            if admission is not None:
                admission.stats["disconnected"] += 1
            raise ClientGone(f"{size} of {length or 'an unknown number of'} bytes received")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise BadRequest(413, too_big)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def guarded_protocol(header_timeout: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a header time limit and JSON answers to unparsable requests."""

    class GuardedH11Protocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_header_timer()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm_header_timer()  # the next request's headers get the same time

        def connection_lost(self, exc: Exception | None) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
            super().connection_lost(exc)

        def _arm_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
            self._header_timer = self.loop.call_later(header_timeout, self._headers_too_slow)

        def _headers_too_slow(self) -> None:
            waiting = self.conn.their_state is h11.IDLE and (self.cycle is None or self.cycle.response_complete)
            if waiting and not self.transport.is_closing():
                log.info("closed the connection from %s: no complete request headers within %g s",
                         _peer(self.client), header_timeout)
                self.transport.close()

        def send_400_response(self, msg: str) -> None:
            body = json.dumps({"error": "invalid HTTP request: a malformed request line or header (for example "
                                        "Content-Length)"}).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                       (b"connection", b"close")]
            for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"), h11.Data(data=body),
                          h11.EndOfMessage()):
                self.transport.write(self.conn.send(event))
            self.transport.close()

    return GuardedH11Protocol


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "a client"
