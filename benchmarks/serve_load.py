"""``pix2pix serve`` under load, on loopback only: a burst of large uploads and many small requests.
The figures in docs/deploy.md ("Under load") come from it.

    python benchmarks/serve_load.py --out /tmp/serve_load --json serve_load.json
    python benchmarks/serve_load.py --checkpoint runs/facades --burst 24 --small 200

Each phase starts a fresh ``python -m pix2pix serve`` process (the default limits unless told
otherwise) on 127.0.0.1 and samples its resident memory from /proc (VmRSS every 20 ms, and the
kernel's peak VmHWM, reset once the model is loaded) while the clients run:

- **burst**: ``--burst`` clients (24) each upload at once a small PNG that decodes to
  ``--side`` x ``--side`` (4096 x 4096); every answer must be 200 or 503, the peak must stay under
  ``--rss-limit-gb`` (3), and ``/health``, asked every 100 ms meanwhile, must answer each time.
- **small**: ``--small`` clients (200) each send one 256 x 256 PNG at once; the answers (200 / 503)
  and their latencies are counted, then the same clients honour ``Retry-After`` until each has its
  200 (at most ``--max-tries`` tries), which gives the latency of a request that gets served.

Bounded: every request has a 120 s timeout and a phase stops after ``--time-limit`` seconds.
Without ``--checkpoint`` the paper's generator (unet_256, ngf 64) is trained for one epoch on two
synthetic pairs first (its weights do not matter for speed or memory).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from deploy import synthetic_run  # benchmarks/deploy.py (this folder is on sys.path when run as a script)

SRC = Path(__file__).resolve().parents[1] / "src"


def png(side: int, noise: bool) -> bytes:
    rng = np.random.default_rng(side)
    if noise:
        arr = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
    else:  # a few flat blocks: tiny as a file, side x side once decoded
        arr = np.zeros((side, side, 3), np.uint8)
        arr[: side // 2] = (200, 40, 40)
        arr[:, : side // 3] = (20, 160, 220)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


class Server:
    """``python -m pix2pix serve`` in its own process, with its memory sampled from /proc."""

    def __init__(self, checkpoint: str, extra: list[str]):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), *sys.path])}
        self.proc = subprocess.Popen([sys.executable, "-m", "pix2pix", "-q", "serve", "--checkpoint", checkpoint,
                                      "--port", str(self.port), "--device", "cpu", *extra], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.url = f"http://127.0.0.1:{self.port}"
        self.samples: list[float] = []
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start: {self.proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.2)
        self.idle_mb = self.status("VmRSS")
        try:  # the kernel's peak (VmHWM) from now on, not the model loading's
            Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")
        except OSError:
            pass
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def status(self, key: str) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024  # kB -> MB
        return float("nan")

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append(self.status("VmRSS"))
            except OSError:
                return
            time.sleep(0.02)

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join(5)
        peak = self.status("VmHWM")
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        return {"idle_rss_mb": round(self.idle_mb), "peak_rss_mb": round(peak),
                "sampled_max_rss_mb": round(max(self.samples or [float("nan")]))}


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return float(np.percentile(values, q))


async def one(client: httpx.AsyncClient, url: str, data: bytes) -> tuple[int, float, str]:
    start = time.perf_counter()
    try:
        r = await client.post(f"{url}/translate", files={"file": ("x.png", data, "image/png")}, timeout=120)
        return r.status_code, time.perf_counter() - start, r.headers.get("retry-after", "")
    except httpx.HTTPError as e:
        return -1, time.perf_counter() - start, type(e).__name__


async def health_poll(client: httpx.AsyncClient, url: str, stop: asyncio.Event, out: list) -> None:
    while not stop.is_set():
        start = time.perf_counter()
        try:
            r = await client.get(f"{url}/health", timeout=10)
            out.append((r.status_code, time.perf_counter() - start))
        except httpx.HTTPError:
            out.append((-1, time.perf_counter() - start))
        await asyncio.sleep(0.1)


async def burst(url: str, n: int, data: bytes, time_limit: float) -> dict:
    health: list = []
    stop = asyncio.Event()
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=n + 4)) as client:
        poller = asyncio.create_task(health_poll(client, url, stop, health))
        start = time.perf_counter()
        results = await asyncio.wait_for(asyncio.gather(*(one(client, url, data) for _ in range(n))), time_limit)
        wall = time.perf_counter() - start
        stop.set()
        await poller
    codes = [c for c, _, _ in results]
    return {"requests": n, "ok": codes.count(200), "busy_503": codes.count(503),
            "other": sorted({c for c in codes if c not in (200, 503)}), "wall_s": round(wall, 2),
            "latency_200_s": {"p50": pct([t for c, t, _ in results if c == 200], 50),
                              "max": max([t for c, t, _ in results if c == 200], default=None)},
            "latency_503_s": {"p50": pct([t for c, t, _ in results if c == 503], 50)},
            "health": {"asked": len(health), "ok": sum(c == 200 for c, _ in health),
                       "max_s": max((t for _, t in health), default=None)}}


async def small(url: str, n: int, data: bytes, max_tries: int, time_limit: float) -> dict:
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=n + 4)) as client:
        first = await asyncio.wait_for(asyncio.gather(*(one(client, url, data) for _ in range(n))), time_limit)

        async def until_served() -> tuple[int, float, int]:
            start, tries = time.perf_counter(), 0
            while True:
                tries += 1
                code, _, retry = await one(client, url, data)
                if code == 200 or tries >= max_tries:
                    return code, time.perf_counter() - start, tries
                await asyncio.sleep(float(retry) if retry.replace(".", "").isdigit() else 1.0)

        start = time.perf_counter()
        served = await asyncio.wait_for(asyncio.gather(*(until_served() for _ in range(n))), time_limit)
        wall = time.perf_counter() - start
    codes = [c for c, _, _ in first]
    ok_t = [t for c, t, _ in first if c == 200]
    busy_t = [t for c, t, _ in first if c == 503]
    all_t = [t for c, t, _ in served if c == 200]
    return {"requests": n, "at_once": {"ok": codes.count(200), "busy_503": codes.count(503),
                                       "other": sorted({c for c in codes if c not in (200, 503)}),
                                       "latency_200_s": {"p50": pct(ok_t, 50), "p99": pct(ok_t, 99)},
                                       "latency_503_s": {"p50": pct(busy_t, 50), "p99": pct(busy_t, 99)},
                                       "latency_all_s": {"p50": pct([t for _, t, _ in first], 50),
                                                         "p99": pct([t for _, t, _ in first], 99)}},
            "with_retry_after": {"served": len(all_t), "wall_s": round(wall, 2),
                                 "tries_max": max(t for _, _, t in served),
                                 "latency_s": {"p50": pct(all_t, 50), "p99": pct(all_t, 99)},
                                 "requests_per_s": round(len(all_t) / wall, 2) if wall else None}}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def f(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", help="model to serve (default: a synthetic unet_256 run in --out)")
    p.add_argument("--out", default="/tmp/pix2pix-serve-load", help="folder for the synthetic run")
    p.add_argument("--burst", type=int, default=24, help="simultaneous large uploads (24)")
    p.add_argument("--side", type=int, default=4096, help="side of each large upload once decoded (4096)")
    p.add_argument("--small", type=int, default=200, help="simultaneous small requests (200)")
    p.add_argument("--max-tries", type=int, default=60, help="tries per small request honouring Retry-After (60)")
    p.add_argument("--time-limit", type=float, default=600, help="seconds per phase at most (600)")
    p.add_argument("--rss-limit-gb", type=float, default=3.0, help="the burst's memory target (3)")
    p.add_argument("--serve-args", default="", help="extra pix2pix serve flags, e.g. '--max-in-flight 32'")
    p.add_argument("--only", choices=["burst", "small"], help="run one phase only")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()

    checkpoint = args.checkpoint or str(synthetic_run(Path(args.out), n_train=2))
    extra = args.serve_args.split()
    results: dict = {"cpu": cpu_name(), "checkpoint": checkpoint, "serve_args": extra,
                     "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])}
    if args.only != "small":
        big = png(args.side, noise=False)
        server = Server(checkpoint, extra)
        try:
            results["burst"] = asyncio.run(burst(server.url, args.burst, big, args.time_limit))
        finally:
            results["burst"] = {**results.get("burst", {}), **server.stop(), "upload_bytes": len(big),
                                "side": args.side}
        b = results["burst"]
        held = b.get("peak_rss_mb", 0) < args.rss_limit_gb * 1024 and not b.get("other") and \
            b.get("health", {}).get("ok") == b.get("health", {}).get("asked")
        results["burst_target_met"] = held
    if args.only != "burst":
        server = Server(checkpoint, extra)
        try:
            results["small"] = asyncio.run(small(server.url, args.small, png(256, noise=True), args.max_tries,
                                                 args.time_limit))
        finally:
            results["small"] = {**results.get("small", {}), **server.stop()}

    print(f"pix2pix serve under load on 127.0.0.1 ({results['cpu']}){' ' + ' '.join(extra) if extra else ''}")
    if "burst" in results:
        b = results["burst"]
        print(f"burst: {b['requests']} x {args.side}x{args.side} PNG ({b['upload_bytes'] // 1024} kB each) at once")
        print(f"  answers      200: {b['ok']}  503: {b['busy_503']}  other: {b['other'] or 'none'}  (wall {b['wall_s']} s)")
        print(f"  memory       idle {b['idle_rss_mb']} MB, peak {b['peak_rss_mb']} MB (target < {args.rss_limit_gb:g} "
              f"GB: {'met' if results['burst_target_met'] else 'NOT met'})")
        print(f"  /health      {b['health']['ok']} of {b['health']['asked']} answered, slowest "
              f"{f(b['health']['max_s'], 3)} s")
    if "small" in results:
        s = results["small"]
        a, r = s["at_once"], s["with_retry_after"]
        print(f"small: {s['requests']} x 256x256 PNG at once")
        print(f"  answers      200: {a['ok']}  503: {a['busy_503']}  other: {a['other'] or 'none'}")
        print(f"  latency      200: p50 {f(a['latency_200_s']['p50'])} s, p99 {f(a['latency_200_s']['p99'])} s;  "
              f"503: p50 {f(a['latency_503_s']['p50'], 3)} s, p99 {f(a['latency_503_s']['p99'], 3)} s")
        print(f"  retrying     {r['served']} of {s['requests']} served in {r['wall_s']} s ({r['requests_per_s']} req/s), "
              f"p50 {f(r['latency_s']['p50'])} s, p99 {f(r['latency_s']['p99'])} s, at most {r['tries_max']} tries")
        print(f"  memory       idle {s['idle_rss_mb']} MB, peak {s['peak_rss_mb']} MB")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
