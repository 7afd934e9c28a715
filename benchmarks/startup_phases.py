"""Phases of a second start of `pix2pix train` (the cache warm), timed in one process.

    python benchmarks/startup_phases.py --data ../shared/data/cityscapes --direction BtoA --cache-dir DIR

Run it twice (the first run writes the cache in DIR if it is not there). Prints seconds per phase.
"""
import argparse
import sys
import time
from pathlib import Path

T0 = time.time()
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
ap = argparse.ArgumentParser()
ap.add_argument("--data", required=True)
ap.add_argument("--direction", default="AtoB")
ap.add_argument("--cache-dir", required=True)
a = ap.parse_args()
marks = []
def mark(name): marks.append((name, time.time()))
import torch  # noqa: E402
mark("import torch")
import pix2pix.cli  # noqa: E402,F401
mark("import pix2pix (cli, package)")
from pix2pix.config import TrainConfig
from pix2pix.data.loader import load_datasets
from pix2pix.training import nets as nets_mod
cfg = TrainConfig.from_flat({"data_root": a.data, "direction": a.direction, "device": "cpu", "precision": "fp32",
                             "n_samples": 0, "cache_dir": a.cache_dir, "out": "unused"})
tr, _ = load_datasets(cfg, progress=False)
mark("map the cached split (with CRC check)")
import torch._dynamo  # noqa: E402,F401
mark("import torch._dynamo (done by torch.optim on the first Adam)")
nets = nets_mod.build_nets(cfg, torch.device("cpu"))
mark("build nets + optimisers")
from pix2pix.data.loader import BatchSource
from pix2pix.training.losses import Objective
from pix2pix.training.step import train_step
src = BatchSource(tr, cfg, torch.device("cpu"))
g = torch.Generator().manual_seed(0)
out = train_step(nets, *src.batch(src.order(0)[:1], g), Objective.of(cfg)); out["G_L1"].item()
mark("first step")
out = train_step(nets, *src.batch(src.order(0)[1:2], g), Objective.of(cfg)); out["G_L1"].item()
mark("second step")
prev = T0
for name, t in marks:
    print(f"{t - prev:6.2f} s  {name}")
    prev = t
print(f"{time.time() - T0:6.2f} s  total (after the interpreter started)")
