"""DDP through torchrun: 2 CPU processes with the gloo backend train in lockstep."""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import torch

from conftest import TINY
from pix2pix import load
from pix2pix.training.checkpoint import load_checkpoint

WORKER = Path(__file__).with_name("ddp_worker.py")


def torchrun(args, dump: Path, timeout=240, nproc=2, ok=True, env=None, launcher=()):
    dump.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DUMP_DIR": str(dump), "OMP_NUM_THREADS": "1", **(env or {})}
    cmd = [sys.executable, "-m", "torch.distributed.run", *(launcher or ["--standalone"]), "--nproc_per_node",
           str(nproc), str(WORKER), *args]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if ok:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def dumps(folder: Path, n: int = 2):
    return [torch.load(folder / f"rank{r}.pt", weights_only=True) for r in range(n)]


def flags(**over):
    opts = {**TINY, "n_samples": 2, **over}
    out = []
    for k, v in opts.items():
        out += ["--netG" if k == "netG" else f"--{k.replace('_', '-')}", str(v)]
    return out


def test_two_ranks_end_identical_and_checkpoint_loads_in_one_process(tmp_path, synthetic_root):
    run = tmp_path / "run"
    result = torchrun(["train", "--data", str(synthetic_root), "--out", str(run), *flags(epochs=2), "--max-items",
                       "8"], tmp_path / "dump")
    assert result.stderr.count("run folder:") == 1  # the closing line, once per job
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
    # every rank stops with status 2; rank 0 prints the one-line error (the summary after it is torchrun's own)
    assert result.stderr.count("error: --sync-bn needs CUDA GPUs") == 1
    assert "exitcode  : 2" in result.stderr


# ----- the defects of issue 16: each of these hung, looped or failed before it was fixed -----------
def test_a_nan_on_one_rank_with_skip_nonfinite_is_skipped_by_every_rank(tmp_path, synthetic_root):
    run = tmp_path / "run"
    torchrun(["train", "--data", str(synthetic_root), "--out", str(run), *flags(), "--max-items", "8",
              "--skip-nonfinite"], tmp_path / "d", timeout=180, env={"P2P_NAN": "1:1"})
    r0, r1 = dumps(tmp_path / "d")
    assert r0["step"] == r1["step"] == 2
    assert all(torch.equal(r0["generator"][k], r1["generator"][k]) for k in r0["generator"]
               if "running" not in k and "num_batches" not in k)
    last = json.loads((run / "losses.jsonl").read_text().splitlines()[-1])
    assert last["skipped_total"] == 2  # the batch of step 1, skipped on both ranks
    assert all(math.isfinite(last[k]) for k in ("G_L1", "D_real"))


def test_a_mid_epoch_checkpoint_resumes_on_more_and_on_fewer_processes(tmp_path, synthetic_root):
    from pix2pix.config import TrainConfig
    from pix2pix.training.schedule import epoch_seed

    run = tmp_path / "run"
    # 16 pairs, 2 ranks x batch 2: 4 batches an epoch; the time limit stops it at the first log point, step 3
    torchrun(["train", "--data", str(synthetic_root), "--out", str(run), *flags(log_every=3), "--time-limit",
              "1e-6"], tmp_path / "d0", timeout=180)
    state = load_checkpoint(run)
    assert (state["epoch"], state["step"], state["sample_in_epoch"]) == (0, 3, 12)
    perm = torch.randperm(16, generator=torch.Generator().manual_seed(epoch_seed(TrainConfig(), 0))).tolist()
    assert sorted(i for d in dumps(tmp_path / "d0") for b in d["seen"] for i in b) == sorted(perm[:12])
    for nproc, batches in ((3, 1), (1, 2)):
        again = tmp_path / f"run{nproc}"
        shutil.copytree(run, again)
        result = torchrun(["train", "--resume", str(again), "--time-limit", "1000"], tmp_path / f"d{nproc}",
                          nproc=nproc, timeout=180)
        done = load_checkpoint(again)
        assert (done["epoch"], done["step"], done["world_size"]) == (1, 3 + batches, nproc)
        seen = [i for d in dumps(tmp_path / f"d{nproc}", nproc) for b in d["seen"] for i in b]
        # the rest of the epoch; on 3 ranks padded to 6 by repeating the shuffle from its start
        assert sorted(seen) == sorted(perm[12:] + (perm[:2] if nproc == 3 else []))
        if nproc == 3:
            assert "written by 2 processes, resumed on 3" in result.stderr
            assert result.stderr.count("written by 2 processes") == 1


def test_fewer_pairs_than_ranks(tmp_path, synthetic_root):
    run = tmp_path / "run"
    torchrun(["train", "--data", str(synthetic_root), "--out", str(run), *flags(batch_size=1), "--max-items", "1"],
             tmp_path / "d", nproc=3, timeout=180)
    ranks = dumps(tmp_path / "d", 3)
    assert [d["seen"] for d in ranks] == [[[0]]] * 3  # the one pair, repeated for every rank
    record = json.loads((run / "losses.jsonl").read_text().splitlines()[-1])
    assert record["step"] == 1 and all(math.isfinite(record[k]) for k in ("G_L1", "G_gan", "D_real", "D_fake"))


def test_ranks_given_different_checkpoints_refuse_in_one_line(tmp_path, synthetic_root):
    from conftest import tiny_config
    from pix2pix.training import train

    train(tiny_config(synthetic_root, tmp_path / "run0", epochs=2, max_items=8), progress=False)
    train(tiny_config(synthetic_root, tmp_path / "run1", epochs=1, max_items=8), progress=False)
    result = torchrun(["train", "--resume", str(tmp_path / "run"), "--epochs", "3"], tmp_path / "d", ok=False,
                      timeout=180, env={"P2P_OUT_PER_RANK": "1"})
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "did not start from the same checkpoint" in errors[0], result.stderr[-2000:]
    assert "process 0: epoch 2" in errors[0] and "process 1: epoch 1" in errors[0]
    assert load_checkpoint(tmp_path / "run0")["epoch"] == 2  # nothing was trained or written


def test_two_ranks_of_batch_2_train_as_one_process_of_batch_4(tmp_path, synthetic_root):
    from conftest import tiny_config
    from pix2pix.training import train

    exact = dict(norm="instance", dropout=0.0, preprocess="none", log_every=1)  # nothing random but the shuffle
    torchrun(["train", "--data", str(synthetic_root), "--out", str(tmp_path / "ddp"), *flags(**exact), "--no-flip",
              "--max-items", "8"], tmp_path / "d", timeout=180, env={"PIX2PIX_CACHE": str(tmp_path / "cache")})
    train(tiny_config(synthetic_root, tmp_path / "one", batch_size=4, flip=False, max_items=8, **exact),
          progress=False)
    ddp, one = ([json.loads(x) for x in (tmp_path / r / "losses.jsonl").read_text().splitlines()] for r in ("ddp", "one"))
    assert len(ddp) == len(one) == 2
    for a, b in zip(ddp, one):
        for k in ("G_L1", "G_gan", "D_real", "D_fake"):
            assert abs(a[k] - b[k]) < 1e-5, (k, a[k], b[k])
    # the decoded-pair cache was built by local rank 0 alone (train split and sample pairs) and mapped by rank 1
    assert [d["decoded"] for d in dumps(tmp_path / "d")] == [2, 0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_hanging_rank_ends_the_job_within_the_timeout(tmp_path, synthetic_root):
    # started without torchrun, whose agent would also end the job: the timeout alone must do it
    port = free_port()
    args = ["train", "--data", str(synthetic_root), "--out", str(tmp_path / "run"), *flags(), "--max-items", "8",
            "--dist-timeout", "0.1"]
    procs = []
    for rank in (0, 1):
        env = {**os.environ, "DUMP_DIR": str(tmp_path), "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1",
               "MASTER_PORT": str(port), "WORLD_SIZE": "2", "RANK": str(rank), "LOCAL_RANK": str(rank),
               "P2P_HANG": "1:2"}
        procs.append(subprocess.Popen([sys.executable, str(WORKER), *args], env=env, stderr=subprocess.PIPE, text=True))
    try:
        _, err = procs[0].communicate(timeout=120)  # 6 s of timeout plus start-up, not the hanging rank's hour
        assert procs[0].returncode == 2
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "lost contact with the other processes: another process" in errors[0], err[-2000:]
    finally:
        for p in procs:
            p.kill()
            p.communicate()


def test_torchrun_max_restarts_continues_with_auto_resume(tmp_path, synthetic_root):
    run = tmp_path / "run"
    # rank 1 dies at its third step (the first of epoch 2) once; torchrun restarts both, which resume epoch 1's
    # checkpoint (restarted workers hung in torch 2.13 until the process group took a store prefix per attempt)
    rendezvous = ["--standalone", "--max-restarts", "1"]
    result = torchrun(["train", "--auto-resume", "--data", str(synthetic_root), "--out", str(run), *flags(epochs=2),
                       "--max-items", "8", "--latest-every", "0"], tmp_path / "d", timeout=240, launcher=rendezvous,
                      env={"P2P_CRASH": "1:3", "P2P_CRASH_MARK": str(tmp_path / "m")})
    assert (tmp_path / "m").exists()  # it did crash
    state = load_checkpoint(run)
    assert (state["epoch"], state["step"]) == (2, 4)
    assert all(d["step"] == 4 for d in dumps(tmp_path / "d"))  # the restarted workers went on from step 2
    assert result.stderr.count("run folder:") == 1


def test_the_backend_follows_the_device_not_the_machine(monkeypatch):
    import torch.distributed as torch_dist

    from pix2pix.training import distributed as dist

    assert dist.backend_for(torch.device("cpu")) == "gloo" and dist.backend_for(torch.device("cuda", 0)) == "nccl"
    seen = {}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(torch_dist, "init_process_group", lambda **kw: seen.update(kw))
    monkeypatch.setattr(torch_dist, "destroy_process_group", lambda: None)
    with dist.session(torch.device("cpu"), timeout_minutes=0.5):
        pass
    assert seen["backend"] == "gloo" and seen["timeout"].total_seconds() == 30
