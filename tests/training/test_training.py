"""Training: losses, schedules, the L1 falling on an easy task, exact resume, checkpoints."""

from __future__ import annotations

import json
import math
import pickle

import pytest
import torch

from conftest import tiny_config
from pix2pix.config import TrainConfig
from pix2pix.errors import CheckpointError, ConfigError
from pix2pix.training import RunFolder, resume, train
from pix2pix.training.checkpoint import checkpoint_bytes, load_checkpoint
from pix2pix.training.losses import discriminator_losses, generator_adversarial_loss, l1_loss
from pix2pix.training.schedule import lr_factor


# ----- losses -----------------------------------------------------------------------------------
def test_vanilla_loss_values():
    zero = torch.zeros(2, 1, 3, 3)
    real, fake = discriminator_losses("vanilla", zero, zero)
    assert math.isclose(real.item(), math.log(2), rel_tol=1e-6) and math.isclose(fake.item(), math.log(2), rel_tol=1e-6)
    confident = torch.full((2, 1, 3, 3), 20.0)
    assert discriminator_losses("vanilla", confident, -confident)[0].item() < 1e-6
    assert generator_adversarial_loss("vanilla", confident).item() < 1e-6
    assert generator_adversarial_loss("vanilla", -confident).item() > 19


def test_lsgan_and_hinge_values():
    real, fake = torch.tensor([1.0, 0.5]), torch.tensor([0.0, 0.5])
    r, f = discriminator_losses("lsgan", real, fake)
    assert r.item() == pytest.approx(0.125) and f.item() == pytest.approx(0.125)
    assert generator_adversarial_loss("lsgan", torch.ones(3)).item() == 0
    r, f = discriminator_losses("hinge", torch.tensor([2.0, 0.0]), torch.tensor([-2.0, 0.5]))
    assert r.item() == pytest.approx(0.5) and f.item() == pytest.approx(0.75)
    assert generator_adversarial_loss("hinge", torch.tensor([1.0, 3.0])).item() == pytest.approx(-2.0)
    assert l1_loss(torch.zeros(4), torch.full((4,), 0.5)).item() == pytest.approx(0.5)


@pytest.mark.parametrize("gan_loss", ["vanilla", "lsgan", "hinge"])
def test_each_loss_trains(tmp_path, synthetic_root, gan_loss):
    cfg = tiny_config(synthetic_root, tmp_path / "run", gan_loss=gan_loss, max_items=4)
    train(cfg, progress=False)
    rows = [json.loads(x) for x in (tmp_path / "run" / "losses.jsonl").read_text().splitlines()]
    assert rows and all(math.isfinite(r["G_gan"]) and math.isfinite(r["D_real"]) for r in rows)


# ----- schedules and config ---------------------------------------------------------------------
def test_linear_schedule_matches_the_reference():
    cfg = TrainConfig(epochs=100, epochs_decay=100)
    assert lr_factor(cfg, 0) == 1.0 and lr_factor(cfg, 99) == 1.0
    assert lr_factor(cfg, 100) == pytest.approx(1 - 1 / 101)
    assert lr_factor(cfg, 199) == pytest.approx(1 / 101)
    step = TrainConfig(epochs=10, epochs_decay=0, lr_policy="step", lr_step=4)
    assert [round(lr_factor(step, e), 6) for e in (0, 3, 4, 8)] == [1.0, 1.0, 0.1, 0.01]
    cos = TrainConfig(epochs=5, epochs_decay=5, lr_policy="cosine")
    assert lr_factor(cos, 0) == 1.0 and lr_factor(cos, 5) == pytest.approx(0.5)


def test_config_round_trip_and_errors(tmp_path):
    cfg = TrainConfig.from_flat({"preset": "cityscapes", "ngf": 32, "data_root": "x"})
    assert cfg.data.direction == "BtoA" and cfg.model.ngf == 32 and cfg.total_epochs == 200
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ConfigError, match="unknown option 'ngff'"):
        TrainConfig.from_flat({"ngff": 3})
    with pytest.raises(ConfigError, match="multiple of 256"):
        TrainConfig.from_flat({"crop_size": 128})
    with pytest.raises(ConfigError, match="unknown preset 'nope'"):
        TrainConfig.from_flat({"preset": "nope"})


# ----- training behaviour -----------------------------------------------------------------------
def test_l1_falls_on_an_easy_mapping(tmp_path, synthetic_root):
    cfg = tiny_config(synthetic_root, tmp_path / "run", epochs=12, batch_size=4, log_every=4, lr=1e-3,
                      preprocess="none", flip=False)
    train(cfg, progress=False)
    rows = [json.loads(x) for x in (tmp_path / "run" / "losses.jsonl").read_text().splitlines()]
    first, last = rows[0]["G_L1"], sum(r["G_L1"] for r in rows[-3:]) / 3
    assert last < 0.6 * first, (first, last)


def test_run_folder_contents(trained_run):
    assert (trained_run / "latest.pt").is_file()
    assert (trained_run / "checkpoints" / "epoch_0001.pt").is_file()
    assert json.loads((trained_run / "config.json").read_text())["model"]["netG"] == "unet_32"
    samples = sorted((trained_run / "samples").glob("step_*.png"))
    assert samples, "a final sample grid is written"
    from PIL import Image

    grid = Image.open(samples[-1])
    assert grid.width > 3 * 32 and grid.height > 2 * 32  # 3 columns (input|output|target), 2 rows
    state = load_checkpoint(trained_run)
    assert {"generator", "discriminator", "opt_G", "opt_D", "rng", "config"} <= set(state)
    assert state["epoch"] == 1 and state["step"] == 8


def weights(run):
    return load_checkpoint(run)["generator"]


def test_resume_is_exact(tmp_path, synthetic_root):
    kw = dict(epochs=2, max_items=8)
    train(tiny_config(synthetic_root, tmp_path / "straight", **kw), progress=False)
    train(tiny_config(synthetic_root, tmp_path / "split", **{**kw, "epochs": 1}), progress=False)
    resume(tmp_path / "split", {"epochs": 2}, progress=False)
    a, b = weights(tmp_path / "straight"), weights(tmp_path / "split")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    sa, sb = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "split")
    assert sa["step"] == sb["step"] == 8
    assert torch.equal(sa["discriminator"]["head.weight"], sb["discriminator"]["head.weight"])


def test_mid_epoch_stop_resumes_exactly(tmp_path, synthetic_root):
    kw = dict(epochs=1, max_items=8)
    train(tiny_config(synthetic_root, tmp_path / "straight", **kw), progress=False)
    # a time limit that is over after the first step stops the run mid-epoch with a checkpoint
    train(tiny_config(synthetic_root, tmp_path / "split", time_limit=1e-9, **kw), progress=False)
    state = load_checkpoint(tmp_path / "split")
    assert state["epoch"] == 0 and state["batch_in_epoch"] == 1
    resume(tmp_path / "split", {"time_limit": None}, progress=False)
    a, b = weights(tmp_path / "straight"), weights(tmp_path / "split")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_changed_architecture_and_finished_runs(trained_run):
    with pytest.raises(ConfigError, match="cannot change ngf"):
        resume(trained_run, {"ngf": 16, "epochs": 5})
    with pytest.raises(ConfigError, match="already finished 1 of 1 epochs; pass a larger --epochs"):
        resume(trained_run, {})


def test_new_run_refuses_an_existing_run_folder(trained_run, synthetic_root):
    with pytest.raises(ConfigError, match=r"already holds a run \(latest.pt, .*\); continue it with --resume"):
        train(tiny_config(synthetic_root, trained_run))


# ----- checkpoints ------------------------------------------------------------------------------
def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    run = RunFolder(tmp_path)
    path = run.write_checkpoint(checkpoint_bytes({"step": 1}))
    import pix2pix.fileio as fileio

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fileio.os, "replace", broken_replace)
    with pytest.raises(CheckpointError, match="could not write checkpoint .*No space left.*previous checkpoint is unchanged"):
        run.write_checkpoint(checkpoint_bytes({"step": 2}))
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["latest.pt"]  # no temporary file left behind


def test_corrupt_and_foreign_checkpoints_give_clear_errors(tmp_path):
    (tmp_path / "trunc.pt").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CheckpointError, match=r"trunc\.pt: not a readable pix2pix checkpoint"):
        load_checkpoint(tmp_path / "trunc.pt")
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match=r"other\.pt: not a pix2pix checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="no latest.pt in this run folder"):
        load_checkpoint(tmp_path)


class _Exploit:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('x')",))


def test_checkpoint_loading_cannot_run_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"format": "pix2pix-checkpoint", "x": _Exploit()}, f)
    with pytest.raises(CheckpointError, match="evil.pt: not a readable pix2pix checkpoint"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not (tmp_path / "PWNED").exists()


def test_checkpoint_cadence(tmp_path, synthetic_root, monkeypatch):
    from pix2pix.training import loop

    written = []
    real_state = loop.training_state

    def spy(*args):
        state = real_state(*args)
        written.append(state["epoch"])
        return state

    monkeypatch.setattr(loop, "training_state", spy)
    cfg = tiny_config(synthetic_root, tmp_path / "run", epochs=5, save_every=2, latest_every=1000, max_items=4)
    train(cfg, progress=False)
    assert written == [2, 4, 5]  # numbered epochs and the end; no extra latest.pt within 1000 minutes
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == [
        "epoch_0002.pt", "epoch_0004.pt", "epoch_0005.pt"]
    written.clear()
    train(tiny_config(synthetic_root, tmp_path / "every", epochs=3, save_every=5, latest_every=0, max_items=4),
          progress=False)
    assert written == [1, 2, 3]


def test_sample_grids_follow_sample_every_without_duplicates(tmp_path, synthetic_root):
    train(tiny_config(synthetic_root, tmp_path / "a", epochs=2, max_items=4, sample_every=2), progress=False)
    assert sorted(p.name for p in (tmp_path / "a" / "samples").glob("*.png")) == [
        "step_00000002.png", "step_00000004.png"]
    train(tiny_config(synthetic_root, tmp_path / "b", epochs=2, max_items=4, sample_every=3), progress=False)
    # step 3 from --sample-every, step 4 because every finished run ends with a grid
    assert sorted(p.name for p in (tmp_path / "b" / "samples").glob("*.png")) == [
        "step_00000003.png", "step_00000004.png"]


def test_l1_alone_leaves_the_discriminator_untouched(tmp_path, synthetic_root):
    cfg = tiny_config(synthetic_root, tmp_path / "run", lambda_gan=0.0, max_items=4)
    train(cfg, progress=False)
    state = load_checkpoint(tmp_path / "run")
    torch.manual_seed(cfg.seed)
    from pix2pix.models import build_discriminator, build_generator

    build_generator(cfg.model)  # same draw order as build_nets: G first, then D
    fresh_D = build_discriminator(cfg.model).state_dict()
    assert all(torch.equal(state["discriminator"][k], fresh_D[k]) for k in fresh_D)  # never updated
    assert state["opt_D"]["state"] == {}
    rows = [json.loads(x) for x in (tmp_path / "run" / "losses.jsonl").read_text().splitlines()]
    assert all(r["D_real"] == 0 and r["G_gan"] == 0 and r["G_L1"] > 0 for r in rows)
