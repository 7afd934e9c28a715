"""Training throughput: the reference implementation's design vs ours, side by side, in one run.

    python benchmarks/reference_vs_fast.py --data ../shared/data/cityscapes --direction BtoA --steps 30
    python benchmarks/reference_vs_fast.py            # synthetic 512x256 JPEG pairs, no data needed

(a) reference design: fp32, eager, batch 1; every step a DataLoader worker process opens the JPEG
    with Pillow, splits it, resizes both halves to 286 (bicubic), crops 256 and flips at random,
    and converts to a tensor (the reference's default of 4 loader workers); the step is the
    reference's: plain Adam (no fused/foreach kernels), D step on detached fakes, then the G step.
(b) ours: each image decoded once up front (timed separately), batches gathered and jittered as
    tensor ops on the training device, ``pix2pix.training.step.train_step`` with fused Adam. Run once
    with ``pix2pix train``'s defaults and once per extra setting given with --fast (e.g.
    "channels_last=True precision=bf16").

Both use the same networks (unet_256 + 70x70 PatchGAN, the same FLOPs) and the same images. The
settings are timed in interleaved rounds (a few steps each) and compared by their medians, so a
machine whose speed drifts (shared VMs do) treats them alike. Prints a table of speed-ups and
writes JSON (--json).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pix2pix.config import TrainConfig
from pix2pix.data.loader import BatchSource, load_datasets
from pix2pix.models import build_discriminator, build_generator
from pix2pix.training.losses import Objective, discriminator_losses, generator_adversarial_loss, l1_loss
from pix2pix.training.nets import build_nets
from pix2pix.training.step import train_step


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


class Reference:
    """The reference design, set up once; ``run(k)`` times k steps and returns seconds per image."""

    def __init__(self, files, cfg: TrainConfig, workers: int):
        torch.manual_seed(0)
        self.device = torch.device(cfg.device if cfg.device != "auto" else "cpu")
        self.G = build_generator(cfg.model).to(self.device)
        self.D = build_discriminator(cfg.model).to(self.device)
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=2e-4, betas=(0.5, 0.999), foreach=False)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=2e-4, betas=(0.5, 0.999), foreach=False)
        self.loader = torch.utils.data.DataLoader(PerImagePillowPairs(files, cfg.data.direction), batch_size=1,
                                                  shuffle=True, num_workers=workers,
                                                  persistent_workers=workers > 0)
        self.it = iter(self.loader)
        self.model_s = self.wait_s = 0.0
        self.images = 0

    def _next(self):
        try:
            return next(self.it)
        except StopIteration:
            self.it = iter(self.loader)
            return next(self.it)

    def run(self, k: int, record: bool = True) -> float:
        t_start = time.perf_counter()
        for _ in range(k):
            t0 = time.perf_counter()
            src, tgt = self._next()
            t1 = time.perf_counter()
            reference_step(self.G, self.D, self.opt_G, self.opt_D, src.to(self.device), tgt.to(self.device))
            if record:
                self.wait_s += t1 - t0
                self.model_s += time.perf_counter() - t1
        if record:
            self.images += k
        return (time.perf_counter() - t_start) / k


# ----- (b) ours --------------------------------------------------------------------------------
class Ours:
    """Our design, set up once (decoding timed); ``run(k)`` times k steps, returns seconds per image."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        device = torch.device(cfg.device if cfg.device != "auto" else "cpu")
        t0 = time.perf_counter()
        train, _ = load_datasets(cfg, progress=False)
        self.decode_s, self.decoded = time.perf_counter() - t0, len(train)
        self.source = BatchSource(train, cfg, device)
        self.nets = build_nets(cfg, device)
        self.order = self.source.order(0)
        self.gen = torch.Generator(device=device).manual_seed(0)
        self.b = 0

    def run(self, k: int, record: bool = True) -> float:
        t_start = time.perf_counter()
        for _ in range(k):
            batch = self.source.batch(self.source.batch_index(self.order, self.b % self.source.batches_per_epoch),
                                      self.gen)
            losses = train_step(self.nets, *batch, Objective.of(self.cfg))
            self.b += 1
        losses["G_L1"].item()
        return (time.perf_counter() - t_start) / (k * self.cfg.batch_size)


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
    p.add_argument("--steps", type=int, default=5, help="steps per setting per round")
    p.add_argument("--rounds", type=int, default=6, help="rounds; settings are interleaved within each")
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
    runners = {"reference": Reference(files, cfg, args.workers), "ours (train defaults)": Ours(cfg)}
    for s in args.fast:
        runners[f"ours ({s})"] = Ours(TrainConfig.from_flat({**base, **parse_setting(s)}))
    for r in runners.values():
        r.run(args.warmup, record=False)
    # Interleave the settings round by round so drift in the machine's speed hits all of them alike.
    per_round = {name: [] for name in runners}
    for i in range(args.rounds):
        for name, r in runners.items():
            per_round[name].append(r.run(args.steps))
        print(f"round {i + 1}/{args.rounds}: " + ", ".join(f"{n} {v[-1]:.3f} s/img" for n, v in per_round.items()),
              flush=True)

    ref = statistics.median(per_round["reference"])
    print("\n| setting | s/img (median of rounds) | img/s | speed-up vs reference |\n| --- | --- | --- | --- |")
    results = {}
    for name, times in per_round.items():
        med = statistics.median(times)
        results[name] = {"seconds_per_image": med, "images_per_second": 1 / med, "speedup": ref / med,
                         "rounds": times}
        print(f"| {name} | {med:.3f} | {1 / med:.3f} | {ref / med:.2f}x |")
    r = runners["reference"]
    results["reference"].update(model_seconds_per_image=r.model_s / r.images,
                                data_wait_seconds_per_image=r.wait_s / r.images)
    print(f"\nreference: model step {r.model_s / r.images:.3f} s/img, waiting for data {r.wait_s / r.images:.3f} s/img")
    o = runners["ours (train defaults)"]
    results["ours (train defaults)"].update(decode_seconds_once=o.decode_s, decoded_pairs=o.decoded)
    print(f"ours: decoding {o.decoded} pairs once took {o.decode_s:.2f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results}, indent=2) + "\n")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
