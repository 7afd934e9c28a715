"""What a latest.pt write costs, and the share of wall time it takes at each --latest-every.

    python benchmarks/checkpoint_cost.py --out /tmp/ckpt --repeats 3 [--netG unet_256 --ngf 64 --ndf 64]

Builds the networks and optimisers of ``pix2pix train`` (Adam moments filled by one real step),
then times what the loop does on a save: gather the state, serialise it, write it atomically
(temporary file, fsync, rename) through RunFolder. Prints the size, the median seconds per write,
and the overhead (write time / interval) for the intervals a user might choose. JSON with --json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from pix2pix.config import TrainConfig  # noqa: E402
from pix2pix.training.bench import synthetic_pairs  # noqa: E402
from pix2pix.data.loader import BatchSource  # noqa: E402
from pix2pix.training.checkpoint import checkpoint_bytes  # noqa: E402
from pix2pix.training.losses import Objective  # noqa: E402
from pix2pix.training.nets import build_nets  # noqa: E402
from pix2pix.training.run_folder import RunFolder  # noqa: E402
from pix2pix.training.state import Progress, training_state  # noqa: E402
from pix2pix.training.step import train_step  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, help="a folder on the disk the runs write to")
    ap.add_argument("--netG", default="unet_256")
    ap.add_argument("--ngf", type=int, default=64)
    ap.add_argument("--ndf", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json")
    a = ap.parse_args()
    size = 2 ** int(a.netG.split("_")[1]).bit_length() // 2
    cfg = TrainConfig.from_flat({"netG": a.netG, "ngf": a.ngf, "ndf": a.ndf, "crop_size": size,
                                 "load_size": size, "device": "cpu", "precision": "fp32", "out": a.out})
    device = torch.device("cpu")
    nets = build_nets(cfg, device)
    source = BatchSource(synthetic_pairs(cfg, 2), cfg, device)
    gen = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    train_step(nets, *source.batch(source.order(0)[:1], gen), Objective.of(cfg))  # fills Adam's moments
    step_s = time.perf_counter() - t0
    run = RunFolder(a.out)
    run.prepare()
    times, nbytes = [], 0
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        data = checkpoint_bytes(training_state(cfg, nets, Progress(), device, gen))
        run.write_checkpoint(data)
        times.append(time.perf_counter() - t0)
        nbytes = len(data)
    write_s = statistics.median(times)
    result = {"netG": a.netG, "ngf": a.ngf, "ndf": a.ndf, "checkpoint_bytes": nbytes, "write_seconds": times,
              "median_write_seconds": write_s, "step_seconds_batch1_fp32": step_s,
              "overhead_percent": {m: 100 * write_s / (60 * m) for m in (1, 2, 5, 10, 15)},
              "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads()}
    print(f"{a.netG} ngf {a.ngf} ndf {a.ndf}: checkpoint {nbytes / 2**20:.0f} MiB, write {write_s:.2f} s "
          f"(median of {a.repeats}: {', '.join(f'{t:.2f}' for t in times)})")
    for m, p in result["overhead_percent"].items():
        print(f"  --latest-every {m:>2}: {p:5.2f} % of wall time, at most {m} min of training lost to a kill")
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
