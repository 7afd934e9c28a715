"""DDP through torchrun: 2 CPU processes with the gloo backend train in lockstep."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

from conftest import TINY
from pix2pix import load
from pix2pix.training.checkpoint import load_checkpoint

WORKER = Path(__file__).with_name("ddp_worker.py")


def torchrun(args, dump: Path, timeout=240):
    dump.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DUMP_DIR": str(dump), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(WORKER), *args]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def flags(**over):
    opts = {**TINY, "n_samples": 2, **over}
    out = []
    for k, v in opts.items():
        out += ["--netG" if k == "netG" else f"--{k.replace('_', '-')}", str(v)]
    return out


def test_two_ranks_end_identical_and_checkpoint_loads_in_one_process(tmp_path, synthetic_root):
    run = tmp_path / "run"
    torchrun(["train", "--data", str(synthetic_root), "--out", str(run), *flags(epochs=2), "--max-items", "8"],
             tmp_path / "dump")
    r0, r1 = (torch.load(tmp_path / "dump" / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    # 8 pairs, 2 ranks, batch 2: each rank takes 4 pairs = 2 batches per epoch
    assert r0["batches_per_epoch"] == 2 and r0["step"] == r1["step"] == 4
    g0, g1 = r0["generator"], r1["generator"]
    assert all(torch.equal(g0[k], g1[k]) for k in g0 if "running" not in k and "num_batches" not in k)
    state = load_checkpoint(run)
    assert state["world_size"] == 2 and state["epoch"] == 2
    assert all(torch.equal(state["generator"][k], g0[k]) for k in g0)
    # the checkpoint works in a single process
    t = load(run, device="cpu")
    y = t(torch.zeros(1, 3, 32, 32))
    assert y.shape == (1, 3, 32, 32) and torch.isfinite(y).all()
    # only rank 0 wrote: one log line per log point, not two
    lines = (run / "losses.jsonl").read_text().splitlines()
    assert len(lines) == 2  # log_every 2 steps, 4 steps


def test_resume_under_ddp(tmp_path, synthetic_root):
    run = tmp_path / "run"
    base = ["--data", str(synthetic_root), "--out", str(run), *flags(epochs=1), "--max-items", "8"]
    torchrun(["train", *base], tmp_path / "d1")
    assert load_checkpoint(run)["epoch"] == 1
    torchrun(["train", "--resume", str(run), "--epochs", "2"], tmp_path / "d2")
    state = load_checkpoint(run)
    assert state["epoch"] == 2 and state["step"] == 4
    r0, r1 = (torch.load(tmp_path / "d2" / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    g0, g1 = r0["generator"], r1["generator"]
    assert all(torch.equal(g0[k], g1[k]) for k in g0 if "running" not in k and "num_batches" not in k)
    load(run, device="cpu")


def test_sync_bn_on_cpu_is_a_clear_error(tmp_path, synthetic_root):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "pix2pix",
           "train", "--data", str(synthetic_root), "--out", str(tmp_path / "r"), *flags(), "--sync-bn"]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode != 0
    # each rank prints our one-line error and exits 2 (the summary after it is torchrun's own)
    assert result.stderr.count("error: --sync-bn needs CUDA GPUs") == 2
    assert "exitcode  : 2" in result.stderr
