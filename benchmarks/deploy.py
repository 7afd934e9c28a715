"""Exports and the server on the paper's generator: file sizes, verification differences, the
eval / paper-sampling trap, forward and request latency. The numbers in docs/deploy.md come from it.

    python benchmarks/deploy.py --checkpoint runs/facades --out /tmp/deploy --json deploy.json
    python benchmarks/deploy.py --out /tmp/deploy      # trains unet_256 for one epoch on 12 synthetic
                                                        # 256x256 pairs first (about 1.5 min on 2 cores)

Forward times are medians of interleaved rounds (batch 1, the training size), so a machine whose
speed drifts treats every format alike; request times go through ``pix2pix.deploy.serve`` on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import threading
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pix2pix import load
from pix2pix.deploy.export import export_model, format_results
from pix2pix.deploy.formats.onnx import without_sampling


def synthetic_run(out: Path, n_train: int = 12) -> Path:
    """OUT/run: the paper's unet_256 trained for one epoch on ``n_train`` synthetic pairs (once)."""
    from pix2pix.config import TrainConfig
    from pix2pix.data.synthetic import make_synthetic_dataset
    from pix2pix.training import train

    run = out / "run"
    if not (run / "latest.pt").exists():
        data = make_synthetic_dataset(out / "data", n_train=n_train, n_val=2, size=256)
        cfg = TrainConfig.from_flat({"data_root": str(data), "out": str(run), "netG": "unet_256", "epochs": 1,
                                     "epochs_decay": 0, "device": "cpu", "sample_every": 1000, "n_samples": 1})
        train(cfg, progress=False, overwrite=True)  # a start killed before its first checkpoint
    return run


def forward_times(files: dict[str, Path], size: int, rounds: int) -> dict[str, float]:
    x = torch.rand(1, 3, size, size) * 2 - 1
    runners = {name: load(path, device="cpu").generator for name, path in files.items()}
    times: dict[str, list[float]] = {name: [] for name in runners}
    with torch.no_grad():
        for g in runners.values():
            g(x)  # warm-up
        for _ in range(rounds):
            for name, g in runners.items():
                start = time.perf_counter()
                g(x)
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) * 1000 for name, t in times.items()}


def batch_dependence(files: dict[str, Path], size: int) -> dict[str, dict[str, float]]:
    """How much image A's output changes when its batch partner changes (masks fixed to ones)."""
    import onnxruntime as ort

    gen = torch.Generator().manual_seed(0)
    a, b, c = (torch.rand(1, 3, size, size, generator=gen) * 2 - 1 for _ in range(3))
    out = {}
    for name, path in files.items():
        data = path.read_bytes()
        session = ort.InferenceSession(without_sampling(data), providers=["CPUExecutionProvider"])
        ab = session.run(None, {"input": torch.cat([a, b]).numpy()})[0][0]
        ac = session.run(None, {"input": torch.cat([a, c]).numpy()})[0][0]
        out[name] = {"max": float(np.abs(ab - ac).max()), "mean": float(np.abs(ab - ac).mean())}
    return out


def request_times(path: Path, size: int, n: int, concurrent: int) -> dict[str, float]:
    import httpx

    from pix2pix.deploy.serve import create_app, running

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buf, "PNG")
    files = {"file": ("a.png", buf.getvalue(), "image/png")}
    with running(create_app(load(path, device="cpu"))) as url, httpx.Client(timeout=300) as client:
        client.post(f"{url}/translate", files=files)
        times = []
        for _ in range(n):
            start = time.perf_counter()
            assert client.post(f"{url}/translate", files=files).status_code == 200
            times.append(time.perf_counter() - start)
        start = time.perf_counter()
        threads = [threading.Thread(target=lambda: httpx.post(f"{url}/translate", files=files, timeout=300))
                   for _ in range(concurrent)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        together = time.perf_counter() - start
        batching = client.get(f"{url}/info").json()["batching"]
    return {"median_ms": statistics.median(times) * 1000, f"{concurrent}_concurrent_s": together,
            "largest_batch": batching["largest_batch"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", help="run folder or checkpoint (default: a synthetic unet_256 run in --out)")
    p.add_argument("--out", required=True, help="folder for the exported files")
    p.add_argument("--rounds", type=int, default=6, help="interleaved forward rounds (6)")
    p.add_argument("--requests", type=int, default=10, help="sequential requests to time (10)")
    p.add_argument("--json", help="also write the results as JSON")
    args = p.parse_args()
    out = Path(args.out)
    checkpoint = Path(args.checkpoint) if args.checkpoint else synthetic_run(out)
    exports = out / "export"
    results = (export_model(checkpoint, ["all"], exports)
               + export_model(checkpoint, ["onnx", "safetensors"], exports, half=True)
               + export_model(checkpoint, ["torchscript", "torch-export", "onnx"], exports, paper_sampling=True))
    print(format_results(results))
    size = load(checkpoint, device="cpu").image_size
    files = {"checkpoint (eager)": checkpoint, **{f"{r.format}{' fp16' if r.dtype == 'float16' else ''}": r.path
                                                  for r in results if r.mode == "eval" and r.format != "safetensors"}}
    forward = forward_times(files, size, args.rounds)
    print("\nforward, batch 1, %dx%d (median of %d interleaved rounds)" % (size, size, args.rounds))
    for name, ms in forward.items():
        print(f"  {name:22s} {ms:7.0f} ms")
    trap = batch_dependence({"eval": exports / "generator.onnx", "paper": exports / "generator-paper.onnx"}, size)
    print("\nimage A's output, batch [A, B] vs [A, C] (|difference| on the [-1, 1] scale):")
    for name, d in trap.items():
        print(f"  {name:6s} max {d['max']:.3f}  mean {d['mean']:.4f}")
    serve = {name: request_times(path, size, args.requests, 8)
             for name, path in {"checkpoint": checkpoint, "onnx": exports / "generator.onnx"}.items()}
    print("\nPOST /translate, one %dx%d PNG:" % (size, size))
    for name, s in serve.items():
        print(f"  {name:10s} median {s['median_ms']:.0f} ms; 8 concurrent in {s['8_concurrent_s']:.2f} s "
              f"(largest batch {s['largest_batch']})")
    if args.json:
        Path(args.json).write_text(json.dumps({"exports": [r.to_dict() for r in results], "forward_ms": forward,
                                               "batch_dependence": trap, "serve": serve}, indent=2) + "\n")


if __name__ == "__main__":
    main()
