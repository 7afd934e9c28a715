"""Training throughput: the reference implementation's design vs ours, side by side, in one run.

    python benchmarks/reference_vs_fast.py --data ../shared/data/cityscapes --direction BtoA --steps 30
    python benchmarks/reference_vs_fast.py            # synthetic 512x256 JPEG pairs, no data needed

(a) reference design: fp32, eager, batch 1; every step a DataLoader worker process opens the JPEG
    with Pillow, splits it, resizes both halves to 286 (bicubic), crops 256 and flips at random,
    and converts to a tensor (the reference's default of 4 loader workers); the step is the
    reference's: plain Adam (no fused/foreach kernels), D step on detached fakes, then the G step.
(b) ours: each image decoded once up front (timed separately), batches gathered and jittered as
    tensor ops on the training device, ``pix2pix.training.train_step`` with fused Adam. Run once
    with ``pix2pix train``'s defaults and once per extra setting given with --fast (e.g.
    "channels_last=True precision=bf16").

Both use the same networks (unet_256 + 70x70 PatchGAN, the same FLOPs) and the same images.
Prints a table and the speed-up ratios, and writes JSON (--json).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pix2pix.config import TrainConfig
from pix2pix.data.loader import BatchSource, load_datasets
from pix2pix.losses import discriminator_losses, generator_adversarial_loss, l1_loss
from pix2pix.models import build_discriminator, build_generator
from pix2pix.training import build_nets, train_step


# ----- (a) the reference design ------------------------------------------------------------------
class PerImagePillowPairs(torch.utils.data.Dataset):
    """Decodes and jitters one side-by-side file per item, every epoch, as the reference does."""

    def __init__(self, files: list[Path], direction: str, load: int = 286, crop: int = 256):
        self.files, self.direction, self.load, self.crop = files, direction, load, crop

    def __len__(self) -> int:
        return len(self.files)

    def _to_tensor(self, im: Image.Image) -> torch.Tensor:
        arr = np.asarray(im, dtype=np.float32) / 127.5 - 1.0
        return torch.from_numpy(arr.transpose(2, 0, 1).copy())

    def __getitem__(self, i: int):
        ab = Image.open(self.files[i]).convert("RGB")
        w, h = ab.size
        a, b = ab.crop((0, 0, w // 2, h)), ab.crop((w // 2, 0, w, h))
        x, y = random.randint(0, self.load - self.crop), random.randint(0, self.load - self.crop)
        flip = random.random() > 0.5
        out = []
        for im in (a, b):  # the same parameters for both sides
            im = im.resize((self.load, self.load), Image.BICUBIC).crop((x, y, x + self.crop, y + self.crop))
            if flip:
                im = im.transpose(Image.FLIP_LEFT_RIGHT)
            out.append(self._to_tensor(im))
        return (out[0], out[1]) if self.direction == "AtoB" else (out[1], out[0])


def reference_step(G, D, opt_G, opt_D, src, tgt, lambda_l1=100.0):
    fake = G(src)
    for p in D.parameters():
        p.requires_grad_(True)
    opt_D.zero_grad()
    d_real, d_fake = discriminator_losses("vanilla", D(torch.cat([src, tgt], 1)),
                                          D(torch.cat([src, fake.detach()], 1)))
    (0.5 * (d_real + d_fake)).backward()
    opt_D.step()
    for p in D.parameters():
        p.requires_grad_(False)
    opt_G.zero_grad()
    loss_G = generator_adversarial_loss("vanilla", D(torch.cat([src, fake], 1))) + lambda_l1 * l1_loss(fake, tgt)
    loss_G.backward()
    opt_G.step()
    return loss_G.detach()  # read back only at print points, as the reference does


def run_reference(files, cfg: TrainConfig, steps: int, warmup: int, workers: int) -> dict:
    torch.manual_seed(0)
    device = torch.device(cfg.device if cfg.device != "auto" else "cpu")
    G, D = build_generator(cfg.model).to(device), build_discriminator(cfg.model).to(device)
    opt_G = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999), foreach=False)
    opt_D = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999), foreach=False)
    loader = torch.utils.data.DataLoader(PerImagePillowPairs(files, cfg.data.direction), batch_size=1,
                                         shuffle=True, num_workers=workers, persistent_workers=workers > 0)
    it = iter(loader)
    wait = model = 0.0
    t_start = None
    for i in range(warmup + steps):
        if i == warmup:
            t_start, wait, model = time.perf_counter(), 0.0, 0.0
        t0 = time.perf_counter()
        try:
            src, tgt = next(it)
        except StopIteration:
            it = iter(loader)
            src, tgt = next(it)
        t1 = time.perf_counter()
        reference_step(G, D, opt_G, opt_D, src.to(device), tgt.to(device))
        t2 = time.perf_counter()
        wait, model = wait + (t1 - t0), model + (t2 - t1)
    total = time.perf_counter() - t_start
    return {"images_per_second": steps / total, "seconds_per_image": total / steps,
            "model_seconds_per_image": model / steps, "data_wait_seconds_per_image": wait / steps}


# ----- (b) ours --------------------------------------------------------------------------------
def run_ours(cfg: TrainConfig, steps: int, warmup: int) -> dict:
    device = torch.device(cfg.device if cfg.device != "auto" else "cpu")
    t0 = time.perf_counter()
    train, _ = load_datasets(cfg, progress=False)
    decode_s = time.perf_counter() - t0
    source = BatchSource(train, cfg, device)
    nets = build_nets(cfg, device)
    order = source.order(0)
    gen = torch.Generator(device=device).manual_seed(0)
    t_start = None
    for i in range(warmup + steps):
        if i == warmup:
            t_start = time.perf_counter()
        b = i % source.batches_per_epoch
        losses = train_step(nets, *source.batch(source.batch_index(order, b), gen), cfg.gan_loss, cfg.lambda_l1)
    losses["G_L1"].item()
    total = time.perf_counter() - t_start
    images = steps * cfg.batch_size
    return {"images_per_second": images / total, "seconds_per_image": total / images,
            "decode_seconds_once": decode_s, "decoded_pairs": len(train), "precision": nets.precision}


def synthetic_jpegs(folder: Path, n: int) -> Path:
    """Side-by-side 512x256 JPEGs with smooth content, like the paper's Cityscapes files."""
    from pix2pix.data.synthetic import synthetic_pair

    rng = np.random.default_rng(0)
    (folder / "train").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        a, b = synthetic_pair(rng, 256)
        Image.fromarray(np.concatenate([b, a], axis=1)).save(folder / "train" / f"{i + 1}.jpg", quality=90)
    return folder


def parse_setting(text: str) -> dict:
    out = {}
    for item in text.split():
        k, v = item.split("=")
        out[k] = {"True": True, "False": False}.get(v, int(v) if v.isdigit() else v)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", help="dataset folder with train/ (default: synthetic JPEGs in a temp folder)")
    p.add_argument("--direction", default="BtoA")
    p.add_argument("--pairs", type=int, default=64, help="pairs to use (decoded once by ours)")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--workers", type=int, default=4, help="reference DataLoader workers (its default: 4)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--fast", action="append", default=[],
                   help='extra setting(s) for ours, e.g. "channels_last=True precision=bf16"')
    p.add_argument("--json", help="write results here")
    args = p.parse_args(argv)

    tmp = None
    if args.data is None:
        tmp = tempfile.TemporaryDirectory()
        args.data = str(synthetic_jpegs(Path(tmp.name), args.pairs))
    base = dict(data_root=args.data, direction=args.direction, device=args.device, max_items=args.pairs)
    cfg = TrainConfig.from_flat(base)
    files = sorted((Path(args.data) / "train").glob("*.jpg"), key=lambda f: f.name)[: args.pairs]

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, "
          f"device {args.device}, {len(files)} pairs from {args.data}", flush=True)
    results = {"reference": run_reference(files, cfg, args.steps, args.warmup, args.workers)}
    print(f"(a) reference design       {results['reference']['images_per_second']:.3f} img/s", flush=True)
    settings = {"ours (train defaults)": {}}
    settings.update({f"ours ({s})": parse_setting(s) for s in args.fast})
    for name, extra in settings.items():
        results[name] = run_ours(TrainConfig.from_flat({**base, **extra}), args.steps, args.warmup)
        print(f"(b) {name:<24} {results[name]['images_per_second']:.3f} img/s", flush=True)

    ref = results["reference"]["images_per_second"]
    print("\n| setting | img/s | s/img | speed-up vs reference |\n| --- | --- | --- | --- |")
    for name, r in results.items():
        print(f"| {name} | {r['images_per_second']:.3f} | {r['seconds_per_image']:.3f} | "
              f"{r['images_per_second'] / ref:.2f}x |")
    r = results["reference"]
    print(f"\nreference: model step {r['model_seconds_per_image']:.3f} s/img, waiting for data "
          f"{r['data_wait_seconds_per_image']:.3f} s/img")
    o = results["ours (train defaults)"]
    print(f"ours: decoding {o['decoded_pairs']} pairs once took {o['decode_seconds_once']:.2f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results}, indent=2) + "\n")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
