"""Does a faster setting cost quality? Trains the same small model on the same synthetic pairs in
fp32 and in a faster setting, with two seeds each, and compares held-out L1 / PSNR / SSIM.

    python benchmarks/precision_quality.py --out runs/precision --fast "precision=bf16 channels_last=True"

The seed-to-seed spread of the fp32 runs is the noise level: a faster setting is "no worse" when its
mean is within that spread of fp32's. Writes OUT/results.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from reference_vs_fast import parse_setting  # same folder: run as python benchmarks/...

from pix2pix.config import TrainConfig
from pix2pix.data.synthetic import make_synthetic_dataset
from pix2pix.evaluate import evaluate_files
from pix2pix.quickstart import QUICKSTART
from pix2pix.training import train


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--fast", default="precision=bf16 channels_last=True", help="the setting to compare with fp32")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--epochs", type=int, default=15, help="total epochs (two thirds constant, one third decay)")
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)

    out = Path(args.out)
    data = out / "data"
    if not (data / "val").exists():
        make_synthetic_dataset(data, n_train=400, n_val=64, size=64)
    settings = {"fp32": {"precision": "fp32"}, args.fast: parse_setting(args.fast)}
    results: dict = {}
    for name, extra in settings.items():
        for seed in args.seeds:
            run = out / f"{name.replace(' ', '_').replace('=', '-')}_seed{seed}"
            cfg = TrainConfig.from_flat({**QUICKSTART, "data_root": str(data), "out": str(run), "device": args.device,
                                         "seed": seed, "epochs": args.epochs - args.epochs // 3,
                                         "epochs_decay": args.epochs // 3, **extra})
            t0 = time.monotonic()
            train(cfg, progress=False)
            seconds = time.monotonic() - t0
            r = evaluate_files("generic", checkpoint=str(run), data=str(data), split="val", device=args.device,
                               progress=False)
            results.setdefault(name, []).append({"seed": seed, "train_seconds": seconds,
                                                 **{k: r[k] for k in ("l1", "psnr", "ssim")}})
            print(f"{name} seed {seed}: L1 {r['l1']:.4f}  PSNR {r['psnr']:.2f}  SSIM {r['ssim']:.3f}  "
                  f"({seconds:.0f} s)", flush=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print("\n| setting | L1 (mean of seeds) | PSNR | SSIM | train s |\n| --- | --- | --- | --- | --- |")
    for name, rows in results.items():
        m = {k: statistics.mean(r[k] for r in rows) for k in ("l1", "psnr", "ssim", "train_seconds")}
        print(f"| {name} | {m['l1']:.4f} | {m['psnr']:.2f} | {m['ssim']:.3f} | {m['train_seconds']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
