"""The learning-rate schedule when a finished run is extended, the whole run's ETA, the note when
the sample grids fall back to training pairs, and a ResNet run that trains, resumes exactly and exports."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from conftest import tiny_config
from pix2pix import load
from pix2pix.config import TrainConfig
from pix2pix.training import resume, train
from pix2pix.training.checkpoint import load_checkpoint
from pix2pix.training.meter import run_clock
from pix2pix.training.schedule import continue_schedule, lr_factor

pytestmark = pytest.mark.usefixtures("one_thread")


def lrs(run) -> dict[int, float]:
    """The learning rate each epoch ran at, from losses.jsonl."""
    return {r["epoch"]: r["lr"] for r in map(json.loads, (run / "losses.jsonl").read_text().splitlines())}


@pytest.mark.parametrize("policy", ["linear", "step", "cosine"])
def test_extra_epochs_hold_the_final_rate(policy):
    cfg = TrainConfig(epochs=3, epochs_decay=4, extra_epochs=5, lr_policy=policy, lr_step=2)
    final = lr_factor(cfg, 6)
    assert final < 1 and [lr_factor(cfg, e) for e in range(7, 12)] == [final] * 5
    assert cfg.total_epochs == 12


def test_extending_a_finished_schedule_never_re_stretches_it():
    old = TrainConfig(epochs=100, epochs_decay=100)
    asked = TrainConfig(epochs=150, epochs_decay=100)  # pix2pix train --resume RUN --epochs 150
    cfg = continue_schedule(old, asked, trained=200)
    assert (cfg.epochs, cfg.epochs_decay, cfg.extra_epochs, cfg.total_epochs) == (100, 100, 50, 250)
    assert lr_factor(cfg, 200) == lr_factor(cfg, 199) == pytest.approx(1 / 101)  # was 0.495 re-stretched
    assert lr_factor(asked, 200) == pytest.approx(1 - 51 / 101)  # what the old rule did
    again = continue_schedule(cfg, TrainConfig.from_flat({"epochs": 120}, base=cfg), trained=250)
    assert (again.extra_epochs, again.total_epochs) == (70, 270)  # 20 more epochs, again at the final rate
    # a schedule still running is re-planned as asked (the reference's --continue_train does the same)
    assert continue_schedule(old, asked, trained=150) == asked
    # so is one without decay, where holding the final rate and re-planning are the same thing
    flat = TrainConfig(epochs=10, epochs_decay=0)
    assert continue_schedule(flat, TrainConfig(epochs=15, epochs_decay=0), trained=10).epochs == 15


def test_resume_of_a_finished_run_continues_at_the_final_rate(tmp_path, synthetic_root):
    run = tmp_path / "run"
    train(tiny_config(synthetic_root, run, epochs=1, epochs_decay=2, max_items=4), progress=False)
    resume(run, {"epochs": 3}, progress=False)  # 2 more epochs asked for with --epochs
    cfg = json.loads((run / "config.json").read_text())
    assert (cfg["epochs"], cfg["epochs_decay"], cfg["extra_epochs"]) == (1, 2, 2)
    rate = lrs(run)
    assert rate[4] == rate[5] == pytest.approx(rate[3]) == pytest.approx(2e-4 / 3)
    assert load_checkpoint(run)["epoch"] == 5


def test_the_run_clock_reads_the_whole_run():
    assert run_clock(60.0, 10, 50) == "elapsed 0:01:00, ETA 0:05:00"
    assert run_clock(3725.0, 1, 0) == "elapsed 1:02:05, ETA 0:00:00"
    assert run_clock(0.0, 0, 9).endswith("ETA ?")


def test_a_dataset_without_val_says_which_pairs_the_grids_show(tmp_path, synthetic_root, caplog):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(synthetic_root / "train", data / "train")
    with caplog.at_level(logging.INFO, logger="pix2pix"):
        train(tiny_config(data, tmp_path / "run", max_items=4), progress=False)
    notes = [r.getMessage() for r in caplog.records if "sample grids show" in r.getMessage()]
    assert len(notes) == 1 and "no 'val' split" in notes[0] and "first 2 training pairs" in notes[0]


def test_a_resnet_run_trains_resumes_exactly_and_exports(tmp_path, synthetic_root):
    kw = dict(netG="resnet_6blocks", ngf=4, max_items=4, epochs=2)
    train(tiny_config(synthetic_root, tmp_path / "straight", **kw), progress=False)
    train(tiny_config(synthetic_root, tmp_path / "split", **{**kw, "epochs": 1}), progress=False)
    resume(tmp_path / "split", {"epochs": 2}, progress=False)
    a, b = (load_checkpoint(tmp_path / r)["generator"] for r in ("straight", "split"))
    assert "blocks.5.conv2.weight" in a and all(torch.equal(a[k], b[k]) for k in a)
    t = load(tmp_path / "straight", device="cpu")
    assert t.multiple == 4
    x = torch.rand(1, 3, 36, 44) * 2 - 1  # a multiple of 4, not of the training size
    assert t(x, native_size=True).shape == (1, 3, 36, 44)
    from pix2pix.deploy.export import export_model

    formats = ["torch-export"]  # the formats whose dynamic sizes needed the ResNet's two-block minimum
    try:
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401

        formats.append("onnx")
    except ImportError:
        pass
    results = export_model(tmp_path / "straight", formats, tmp_path / "export")
    assert [r.format for r in results] == formats and all(r.max_abs_diff <= 1e-4 for r in results)
