"""Crash-safe training, tried on real `python -m pix2pix train` processes.

A run killed with SIGKILL (during a checkpoint write, or at random moments) always resumes from
its last complete checkpoint and ends with exactly the weights of an uninterrupted run; SIGINT /
SIGTERM finish the step, save and exit 0 with the resume command. Every checkpoint file in the run
folder loads at every moment we look. Uses the tiny config (unet_32, ngf 8, 32x32, 8 pairs).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import TINY, cli_flags, tiny_config
from pix2pix.training import train
from pix2pix.training.checkpoint import load_checkpoint

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

EPOCHS = 12
RUN = {**TINY, "epochs": EPOCHS, "max_items": 8, "latest_every": 0, "save_every": 4, "sample_every": 10_000}
SRC = str(Path(__file__).resolve().parents[2] / "src")


def child_env() -> dict[str, str]:
    # one thread, as the reference run below: bit-identical results, and no oversubscribed cores
    # (two threads per process made these runs ten times slower on a shared 2-core machine)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, *sys.path]), "OMP_NUM_THREADS": "1"}


def start(args: list[str], log: Path, driver: str | None = None, **env: str) -> subprocess.Popen:
    cmd = [sys.executable, "-c", driver, *args] if driver else [sys.executable, "-m", "pix2pix", *args]
    return subprocess.Popen(cmd, stdout=open(log, "ab"), stderr=subprocess.STDOUT, env={**child_env(), **env})


def train_args(data: Path, run: Path) -> list[str]:
    """`train` for a new run, `train --resume` once it has a checkpoint. A start killed after its first
    log line but before its first checkpoint left a log, which a new run replaces only when told."""
    if (run / "latest.pt").exists():
        return ["train", "--resume", str(run)]
    return ["train", "--data", str(data), "--out", str(run), *cli_flags(RUN), "--overwrite"]


def wait_for(condition, proc: subprocess.Popen, timeout: float = 90.0, poll: float = 0.01) -> bool:
    """Poll ``condition()`` until true; False if the process ended first."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(poll)
    raise AssertionError("timed out waiting for the training process")


def log_lines(run: Path) -> int:
    try:
        return (run / "losses.jsonl").read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def tmp_checkpoints(run: Path) -> list[Path]:
    return sorted(run.glob(".latest.pt.*.tmp"))


def assert_every_checkpoint_loads(run: Path) -> None:
    for path in [run / "latest.pt", *sorted((run / "checkpoints").glob("*.pt"))]:
        if path.exists():
            state = load_checkpoint(path)
            assert state["step"] == state["epoch"] * 4 + state["batch_in_epoch"]


def assert_same_weights(run: Path, reference: dict) -> None:
    state = load_checkpoint(run)
    assert state["epoch"] == EPOCHS and state["step"] == EPOCHS * 4
    for part in ("generator", "discriminator"):
        for k, v in reference[part].items():
            assert torch.equal(state[part][k], v), (part, k)
    assert not list(run.rglob("*.tmp")), "stale temporary files are removed on resume"
    steps = [json.loads(line)["step"] for line in (run / "losses.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == EPOCHS * 4  # whole lines, no step twice


@pytest.fixture(scope="module")
def reference(tmp_path_factory, synthetic_root) -> dict:
    """The weights of the same run, uninterrupted (in this process)."""
    out = tmp_path_factory.mktemp("reference") / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(tiny_config(synthetic_root, out, **RUN), progress=False)
    finally:
        torch.set_num_threads(threads)
    return load_checkpoint(out)


# A driver that trains like `python -m pix2pix`, but makes the third write of latest.pt stop half way
# (flushed to disk) and wait, so the test can kill the process in the middle of a checkpoint write.
SLOW_THIRD_CHECKPOINT = r"""
import os, sys, time
import pix2pix.fileio as fileio
real_fdopen, count = os.fdopen, [0]
class HalfThenWait:
    def __init__(self, f): self.f = f
    def __enter__(self): return self
    def __exit__(self, *a): return self.f.__exit__(*a)
    def __getattr__(self, name): return getattr(self.f, name)
    def write(self, data):
        self.f.write(data[: len(data) // 2]); self.f.flush(); os.fsync(self.f.fileno())
        open(os.environ["PAUSED_MARKER"], "w").close()
        time.sleep(120)
        return self.f.write(data[len(data) // 2:])
class OsProxy:
    def __getattr__(self, name): return getattr(os, name)
    def fdopen(self, fd, *a, **k):
        f = real_fdopen(fd, *a, **k)
        if ".latest.pt." in os.readlink(f"/proc/self/fd/{fd}"):
            count[0] += 1
            if count[0] == 3:
                return HalfThenWait(f)
        return f
fileio.os = OsProxy()
from pix2pix.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to find the temporary file")
def test_sigkill_during_a_checkpoint_write(tmp_path, synthetic_root, reference):
    run, log, paused = tmp_path / "run", tmp_path / "log.txt", tmp_path / "paused"
    proc = start(train_args(synthetic_root, run), log, driver=SLOW_THIRD_CHECKPOINT, PAUSED_MARKER=str(paused))
    try:  # the first half is on disk and the process is inside atomic_write_bytes
        assert wait_for(paused.exists, proc), log.read_text()
    finally:
        proc.kill()
        proc.wait()
    partial = tmp_checkpoints(run)[0]
    latest = run / "latest.pt"
    assert partial.stat().st_size < latest.stat().st_size  # the half-written file is the temporary one
    state = load_checkpoint(latest)  # latest.pt is the previous, complete checkpoint
    assert state["epoch"] == 2 and state["batch_in_epoch"] == 0
    assert_every_checkpoint_loads(run)

    resumed = start(train_args(synthetic_root, run), log)
    assert resumed.wait(180) == 0, log.read_text()
    assert_same_weights(run, reference)


def test_sigkill_at_random_moments_then_resume(tmp_path, synthetic_root, reference):
    rng = random.Random(int(os.environ.get("PIX2PIX_TEST_SEED", "6")))
    run, log = tmp_path / "run", tmp_path / "log.txt"
    caught_tmp, kills = False, 0
    for round_ in range(3):
        proc = start(train_args(synthetic_root, run), log)
        try:
            lines = log_lines(run)
            if round_ == 0:  # as soon as a checkpoint's temporary file appears (unmodified code)
                finished = not wait_for(lambda: tmp_checkpoints(run), proc, poll=0.001)
                caught_tmp = not finished
            else:  # at a random step (not a random time: machines differ in speed), anywhere in it
                last = EPOCHS * 4 // RUN["log_every"] - 3  # leave a few steps so the kill lands in training
                target = rng.randint(lines + 1, max(lines + 1, min(lines + 8, last)))
                wait_for(lambda: log_lines(run) >= target, proc, poll=0.001)
                time.sleep(rng.uniform(0.0, 0.02))
        finally:
            proc.kill()
            proc.wait()
        assert_every_checkpoint_loads(run)
        kills += proc.returncode == -signal.SIGKILL
        if (run / "latest.pt").exists() and load_checkpoint(run)["epoch"] == EPOCHS:
            break  # this process finished before the kill (a slow moment on a busy machine)
    else:
        final = start(train_args(synthetic_root, run), log)
        assert final.wait(180) == 0, log.read_text()
    assert kills >= 2 and caught_tmp, (kills, caught_tmp)
    assert_same_weights(run, reference)


def test_sigterm_and_sigint_save_and_exit_cleanly(tmp_path, synthetic_root, reference):
    run, log = tmp_path / "run", tmp_path / "log.txt"
    for sig in (signal.SIGTERM, signal.SIGINT):
        proc = start(train_args(synthetic_root, run), log)
        lines = log_lines(run)
        assert wait_for(lambda: log_lines(run) > lines, proc), log.read_text()
        proc.send_signal(sig)
        assert proc.wait(120) == 0, log.read_text()
        text = log.read_text()
        assert f"received {sig.name}: stopped during epoch" in text
        assert f"checkpoint saved to {run / 'latest.pt'}. Continue with: pix2pix train --resume {run}" in text
        state = load_checkpoint(run)
        assert 0 < state["step"] < EPOCHS * 4
        assert not tmp_checkpoints(run)
    final = start(train_args(synthetic_root, run), log)
    assert final.wait(180) == 0, log.read_text()
    assert_same_weights(run, reference)
