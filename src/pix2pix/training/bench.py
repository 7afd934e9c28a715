"""``pix2pix bench``: how fast does this configuration train and translate on this device?

    pix2pix bench --netG unet_256 --patch 70 --batch-size 1 --crop-size 256 --device cpu --json bench.json

Runs the real training step (``training.step.train_step`` on batches from ``BatchSource`` with the
paired jitter, exactly as ``pix2pix train`` does) on synthetic uint8 data held on the device, so
no disk or decoding is involved. After ``warmup`` steps it times ``steps`` steps and ``steps``
inference batches, and reports images per second, seconds per step, peak memory, the achieved
TFLOP/s (FLOPs of one step counted with ``torch.utils.flop_counter``) and the MFU where the
device's peak is known. With ``--data DIR`` it also times the start-up: loading the training split
without the decoded-pair cache, writing the cache and mapping it. Options not given take the values
``pix2pix train`` uses by default on that device.
"""

from __future__ import annotations

import dataclasses
import platform
import resource
import time
from typing import Any

import torch

from ..config import TrainConfig
from ..data.loader import BatchSource
from ..data.pairs import PairedImages
from ..devices import autocast, resolve_device
from .losses import Objective
from ..models.size import check_fits
from .nets import build_nets
from .step import train_step


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def synthetic_pairs(cfg: TrainConfig, n: int) -> PairedImages:
    """``n`` random uint8 pairs stored at the size a real dataset would be (crop size, which the
    jitter resizes up to load size, as for the paper's 256x256 Cityscapes)."""
    g = torch.Generator().manual_seed(0)
    side = cfg.data.model_size
    shape = (n, cfg.model.input_nc, side, side)
    src = torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)
    tgt = torch.randint(0, 256, (n, cfg.model.output_nc, side, side), generator=g, dtype=torch.uint8)
    return PairedImages(src, tgt, [str(i) for i in range(n)])


def count_step_flops(cfg: TrainConfig, device: torch.device) -> int:
    """FLOPs of one training step (forward and backward of G and D, as train_step runs them)."""
    from torch.utils.flop_counter import FlopCounterMode

    eager = dataclasses.replace(cfg, compile=False)
    nets = build_nets(eager, device)
    source = BatchSource(synthetic_pairs(cfg, cfg.batch_size), cfg, device)
    src, tgt = source.batch(source.order(0)[: cfg.batch_size], torch.Generator(device=device).manual_seed(0))
    with FlopCounterMode(display=False) as counter:
        train_step(nets, src, tgt, Objective.of(cfg))
    return int(counter.get_total_flops())


def peak_memory(device: torch.device) -> tuple[int, str]:
    """(bytes, what was measured): allocator peak on a GPU, the process's peak RSS on the CPU."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device)), "cuda_max_memory_allocated"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if platform.system() == "Darwin" else rss * 1024), "process_peak_rss"


# Dense peak FLOP/s by precision (no sparsity) of devices whose peak is known, from their data sheets;
# fp32 on the GPUs is the CUDA-core rate (the TF32 tensor-core rate is not used by default).
PEAK_TFLOPS = {"H100": {"bf16": 989.4, "fp16": 989.4, "fp32": 66.9},
               "H200": {"bf16": 989.4, "fp16": 989.4, "fp32": 66.9},
               "A100": {"bf16": 312.0, "fp16": 312.0, "fp32": 19.5}}


def peak_tflops(device: torch.device, precision: str) -> float | None:
    """The device's dense peak for ``precision`` where it is known (see :data:`PEAK_TFLOPS`)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((p[precision] for k, p in PEAK_TFLOPS.items() if k in name), None)


def startup_seconds(cfg: TrainConfig) -> dict[str, float]:
    """Seconds to load ``cfg``'s training split: decoding it without the cache, decoding and writing a
    new cache (a first start) and mapping it (every later start), in a temporary cache folder."""
    import shutil
    import tempfile

    from ..data.cache import PairCache
    from ..data.loader import load_datasets

    parent = PairCache.at(cfg.data.cache_dir).folder.parent  # the disk the real cache is on
    parent.mkdir(parents=True, exist_ok=True)
    folder = tempfile.mkdtemp(prefix="bench-", dir=parent)
    out: dict[str, float] = {}
    try:
        for name, over in (("no_cache", {"cache": False}), ("cache_first", {"cache_dir": folder}),
                           ("cache_second", {"cache_dir": folder})):
            run = dataclasses.replace(cfg, n_samples=0, data=dataclasses.replace(cfg.data, **over))
            t0 = time.perf_counter()
            train, _ = load_datasets(run, progress=False)
            int(train.source[-1].sum())  # every row really read
            out[name] = time.perf_counter() - t0
            out["pairs"] = len(train)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return out


def bench(cfg: TrainConfig, steps: int = 10, warmup: int = 3, infer_batch_size: int | None = None,
          peak: float | None = None, startup: bool = False) -> dict[str, Any]:
    """Time training and inference for ``cfg``; returns the results and the settings used. With
    ``startup``, also the start-up (loading ``cfg.data.data_root``) with and without the cache.
    ``peak``: the device's peak TFLOP/s for the MFU, where :data:`PEAK_TFLOPS` does not know it."""
    loading = startup_seconds(cfg) if startup else None
    device = resolve_device(cfg.device)
    check_fits(cfg.model, device, training=True, source="these settings")
    flops_per_step = count_step_flops(cfg, device)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    nets = build_nets(cfg, device)
    source = BatchSource(synthetic_pairs(cfg, max(4 * cfg.batch_size, 8)), cfg, device)
    order = source.order(0)
    gen = torch.Generator(device=device).manual_seed(0)

    def step(i: int) -> dict[str, torch.Tensor]:
        b = i % source.batches_per_epoch
        src, tgt = source.batch(source.batch_index(order, b), gen)
        return train_step(nets, src, tgt, Objective.of(cfg))

    for i in range(warmup):
        step(i)
    _sync(device)
    t0 = time.perf_counter()
    for i in range(steps):
        losses = step(i)
    _sync(device)
    train_s = time.perf_counter() - t0
    losses["G_L1"].item()  # the step really ran

    bs_inf = infer_batch_size or cfg.batch_size
    side = cfg.data.model_size
    x = torch.rand(bs_inf, cfg.model.input_nc, side, side, device=device) * 2 - 1
    if cfg.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    G = nets.G_plain.eval()
    with torch.no_grad(), autocast(device, nets.precision):
        for _ in range(warmup):
            G(x)
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(steps):
            G(x)
        _sync(device)
    infer_s = time.perf_counter() - t0
    mem, mem_kind = peak_memory(device)

    images = steps * cfg.batch_size
    peak = peak or peak_tflops(device, nets.precision)
    achieved = flops_per_step * steps / train_s / 1e12
    return {
        "startup_seconds": loading,
        "peak_tflops": peak,
        "mfu": achieved / peak if peak else None,
        "train_images_per_second": images / train_s,
        "train_seconds_per_step": train_s / steps,
        "infer_images_per_second": steps * bs_inf / infer_s,
        "infer_seconds_per_batch": infer_s / steps,
        "peak_memory_bytes": mem,
        "peak_memory_kind": mem_kind,
        "flops_per_step": flops_per_step,
        "gflop_per_image": flops_per_step / cfg.batch_size / 1e9,
        "achieved_tflops": achieved,
        "settings": {
            "netG": cfg.model.netG, "ngf": cfg.model.ngf, "ndf": cfg.model.ndf, "patch": cfg.model.patch,
            "norm": cfg.model.norm, "batch_size": cfg.batch_size, "infer_batch_size": bs_inf,
            "crop_size": cfg.data.crop_size, "load_size": cfg.data.load_size, "preprocess": cfg.data.preprocess,
            "device": str(device), "device_name": _device_name(device), "precision": nets.precision,
            "channels_last": cfg.channels_last, "compile": cfg.compile, "gan_loss": cfg.gan_loss,
            "steps": steps, "warmup": warmup, "torch": torch.__version__, "threads": torch.get_num_threads(),
        },
    }


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


def format_results(r: dict[str, Any]) -> str:
    s = r["settings"]
    lines = [
        f"{s['netG']} + {s['patch']}x{s['patch']} PatchGAN, batch {s['batch_size']}, {s['crop_size']}px, "
        f"{s['precision']}{', channels-last' if s['channels_last'] else ''}{', compiled' if s['compile'] else ''} "
        f"on {s['device']} ({s['device_name']}, {s['threads']} threads)",
        f"  train:     {r['train_images_per_second']:9.2f} img/s   {r['train_seconds_per_step']:.4f} s/step   "
        f"{r['achieved_tflops']:.3f} TFLOP/s ({r['gflop_per_image']:.1f} GFLOP/img)",
        f"  inference: {r['infer_images_per_second']:9.2f} img/s   (batch {s['infer_batch_size']})",
        f"  peak memory: {r['peak_memory_bytes'] / 2**20:.0f} MiB ({r['peak_memory_kind']})",
    ]
    if r.get("mfu") is not None:
        lines.append(f"  MFU: {100 * r['mfu']:.1f} % of {r['peak_tflops']:g} TFLOP/s")
    if r.get("startup_seconds"):
        t = r["startup_seconds"]
        lines.append(f"  start-up, {t['pairs']} pairs: {t['no_cache']:.2f} s without the cache, "
                     f"{t['cache_first']:.2f} s writing it, {t['cache_second']:.2f} s mapping it")
    return "\n".join(lines)
