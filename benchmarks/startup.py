"""Time from launching ``pix2pix train`` to its first finished training step, without and with the
decoded-pair cache (first start: decode and write it; second start: map it).

    python benchmarks/startup.py --data ../shared/data/cityscapes --direction BtoA --json startup.json

Each start is a fresh process running the real command line (``python -m pix2pix train ...``,
paper's network, batch 1, fp32) with a hook that prints the clock when the first step returns and
then exits; the cache goes to a new temporary folder so the first start really is the first.
Settings are interleaved over ``--rounds`` rounds and medians reported.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")
HOOK = r"""
import os, sys, time
sys.path.insert(0, os.environ["P2P_SRC"])
from pix2pix.training import loop
_step = loop.train_step
def first(*a, **k):
    out = _step(*a, **k)
    out["G_L1"].item()
    print(f"FIRST_STEP {time.time():.6f}", flush=True)
    os._exit(0)
loop.train_step = first
from pix2pix.cli import main
sys.exit(main(sys.argv[1:]))
"""


def start(args: list[str], env: dict[str, str]) -> float:
    t0 = time.time()
    out = subprocess.run([sys.executable, "-c", HOOK, *args], env=env, capture_output=True, text=True, timeout=900)
    line = next((x for x in out.stdout.splitlines() if x.startswith("FIRST_STEP")), None)
    if line is None:
        raise SystemExit(f"no first step: {out.stderr[-2000:]}")
    return float(line.split()[1]) - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--direction", default="AtoB")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--baseline", metavar="SRC", help="also time starts of another source tree (e.g. the code "
                    "before the cache: its src/ folder), which takes no cache options")
    ap.add_argument("--json")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="p2p-startup-"))
    env = {**os.environ, "P2P_SRC": SRC}
    base = ["train", "--data", a.data, "--direction", a.direction, "--device", "cpu", "--precision", "fp32",
            "--n-samples", "0"]
    times: dict[str, list[float]] = {"no_cache": [], "cache_first": [], "cache_second": []}
    if a.baseline:
        times["baseline"] = []
    try:
        for r in range(a.rounds):
            cache = work / f"cache{r}"
            times["no_cache"].append(start([*base, "--no-cache", "--out", str(work / f"a{r}")], env))
            times["cache_first"].append(start([*base, "--cache-dir", str(cache), "--out", str(work / f"b{r}")], env))
            times["cache_second"].append(start([*base, "--cache-dir", str(cache), "--out", str(work / f"c{r}")], env))
            shutil.rmtree(cache)
            if a.baseline:
                times["baseline"].append(start([*base, "--out", str(work / f"d{r}")], {**env, "P2P_SRC": a.baseline}))
            print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in times.items()), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {"seconds_to_first_step": times, "median": med, "second_over_first": med["cache_second"] / med["cache_first"],
              "second_over_no_cache": med["cache_second"] / med["no_cache"], "data": a.data,
              "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()}
    print("median seconds to the first step: " + ", ".join(f"{k} {v:.1f}" for k, v in med.items())
          + f"; second start / first start = {result['second_over_first']:.2f}")
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
