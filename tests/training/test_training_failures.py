"""Training when things go wrong, in-process and deterministic: non-finite losses, a full disk, an
unwritable run folder, and checkpoints that do not fit."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch

import pix2pix.training.step as steps_module  # train_step's losses are patched where it looks them up
from conftest import tiny_config
from pix2pix import load
from pix2pix.cli import main
from pix2pix.errors import CheckpointError, NonFiniteLoss, OutputError
from pix2pix.models import build_generator
from pix2pix.training import resume, train
from pix2pix.training.checkpoint import checkpoint_bytes, load_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")


KW = dict(max_items=8, log_every=2, latest_every=0, save_every=100)  # 4 steps per epoch, a log every 2


def poison_l1(monkeypatch, steps: set[int], kind: str = "nan") -> list[int]:
    """Make the L1 loss of the given (1-based) steps NaN, or, with kind="grad", finite with NaN gradients."""
    calls: list[int] = []
    real = steps_module.l1_loss

    def l1(fake, target):
        calls.append(1)
        value = real(fake, target)
        if len(calls) in steps:
            if kind == "nan":
                return value * float("nan")
            return value + 0.0 * torch.sqrt((fake - fake.detach()).abs().sum())  # 0 * inf gradient = NaN
        return value

    monkeypatch.setattr(steps_module, "l1_loss", l1)
    return calls


def rows(run):
    return [json.loads(x) for x in (run / "losses.jsonl").read_text().splitlines()]


def finite(state) -> bool:
    return all(torch.isfinite(v).all() for part in ("generator", "discriminator") for v in state[part].values()
               if v.is_floating_point())


# ----- non-finite losses ------------------------------------------------------------------------
def test_nan_loss_stops_naming_the_step_and_the_last_good_checkpoint(tmp_path, synthetic_root, monkeypatch, capsys):
    run = tmp_path / "run"
    poison_l1(monkeypatch, {6})  # epoch 2, its second batch
    with pytest.raises(NonFiniteLoss) as err:
        train(tiny_config(synthetic_root, run, epochs=3, **KW), progress=False)
    message = str(err.value)
    assert "non-finite loss in steps 5-6 (epoch 2): G_gan=" in message and "G_L1=nan" in message
    assert f"The last good checkpoint is {run / 'latest.pt'} (step 4)" in message
    assert f"pix2pix train --resume {run} --skip-nonfinite" in message
    state = load_checkpoint(run)
    assert state["epoch"] == 1 and state["step"] == 4 and finite(state)  # nothing poisoned was saved
    assert [r["step"] for r in rows(run)] == [2, 4]

    # resuming with --skip-nonfinite gets past the bad batch (bad again here: step 6 is the resumed run's 2nd)
    monkeypatch.undo()
    calls = poison_l1(monkeypatch, {2})
    resume(run, {"skip_nonfinite": True}, progress=False)
    state = load_checkpoint(run)
    assert state["epoch"] == 3 and state["skipped"] == 1 and finite(state) and len(calls) == 8


def test_nan_from_the_command_line_is_one_error_line(tmp_path, synthetic_root, monkeypatch, capsys):
    poison_l1(monkeypatch, {1})
    args = ["train", "--data", str(synthetic_root), "--out", str(tmp_path / "run"), "--netG", "unet_32",
            "--ngf", "8", "--ndf", "8", "--load-size", "36", "--crop-size", "32", "--batch-size", "2",
            "--epochs", "1", "--epochs-decay", "0", "--max-items", "8", "--log-every", "2", "--device", "cpu"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: non-finite loss in steps 1-2 (epoch 1)") and "No checkpoint was written yet" in err
    assert not (tmp_path / "run" / "latest.pt").exists()


def test_skip_nonfinite_counts_skipped_batches_and_keeps_the_means_finite(tmp_path, synthetic_root, monkeypatch,
                                                                          caplog):
    run = tmp_path / "run"
    poison_l1(monkeypatch, {2, 5, 6})  # one batch of the first window, both batches of the third
    with caplog.at_level("WARNING", logger="pix2pix"):
        train(tiny_config(synthetic_root, run, epochs=2, skip_nonfinite=True, **KW), progress=False)
    state = load_checkpoint(run)
    assert state["skipped"] == 3 and state["epoch"] == 2 and finite(state)
    log = rows(run)
    assert [r["skipped_total"] for r in log] == [1, 1, 3, 3]
    assert math.isfinite(log[0]["G_L1"])  # the mean of the batch that was used
    assert log[2]["G_L1"] is None and log[2]["D_real"] is None  # no batch used in steps 5-6
    assert all(math.isfinite(r["G_L1"]) for r in (log[1], log[3]))
    assert "steps 1-2: skipped 1 batch with a non-finite loss (1 in this run so far)" in caplog.text
    assert "steps 5-6: skipped 2 batches with a non-finite loss (3 in this run so far)" in caplog.text


@pytest.mark.parametrize("where", ["G", "D"])
def test_a_skipped_batch_changes_nothing_it_should_not(tmp_path, synthetic_root, monkeypatch, where):
    """A NaN in D's loss skips the whole batch: no weight, statistic or optimiser state changes. A NaN in
    G's loss skips G's update; D's update, made first from a finite loss, stays. Running statistics
    of both networks are restored either way."""
    from pix2pix.training.losses import Objective
    from pix2pix.training.nets import build_nets
    from pix2pix.training.step import LOSS_NAMES, NonFiniteGuard, train_step

    cfg = tiny_config(synthetic_root, tmp_path / "run")
    nets = build_nets(cfg, torch.device("cpu"))
    src, tgt = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    guard = NonFiniteGuard(nets.G_plain, nets.D_plain)
    train_step(nets, src, tgt, Objective(), guard)  # Adam state exists from here on
    nets_state = lambda: {f"{n}.{k}": v.clone() for n, m in (("G", nets.G_plain), ("D", nets.D_plain))  # noqa: E731
                          for k, v in m.state_dict().items()}
    opt_state = lambda: [t.clone() for o in (nets.opt_G, nets.opt_D) for st in o.state.values()  # noqa: E731
                         for t in st.values()]
    before, opt_before = nets_state(), opt_state()
    if where == "G":
        poison_l1(monkeypatch, {1})
    else:
        real = steps_module.discriminator_losses
        monkeypatch.setattr(steps_module, "discriminator_losses", lambda *a: tuple(x * float("nan") for x in real(*a)))
    losses = train_step(nets, src, tgt, Objective(), guard)
    assert losses["skipped"].item() == 1 and all(losses[k].item() == 0 for k in LOSS_NAMES)
    after = nets_state()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    if where == "D":
        assert changed == set()
        assert all(torch.equal(a, b) for a, b in zip(opt_before, opt_state()))
    else:
        assert changed and all(k.startswith("D.") and "running" not in k and "num_batches" not in k for k in changed)


def test_weights_that_became_nan_are_never_saved(tmp_path, synthetic_root, monkeypatch):
    run = tmp_path / "run"
    poison_l1(monkeypatch, {8}, kind="grad")  # a finite loss whose gradient is NaN, on the last step of epoch 2
    with pytest.raises(NonFiniteLoss, match=r"the network weights are no longer finite at step 8 \(epoch 2\); "
                                            r"not saving them\. The last good checkpoint is .*latest\.pt \(step 4\)"):
        train(tiny_config(synthetic_root, run, epochs=3, **KW), progress=False)
    assert load_checkpoint(run)["step"] == 4


def test_a_stop_between_log_points_checks_the_losses_before_saving(tmp_path, synthetic_root, monkeypatch):
    """A time limit (or Ctrl-C) after step 1 with log_every 4: the NaN of step 1 is found, not saved."""
    poison_l1(monkeypatch, {1})
    run = tmp_path / "run"
    with pytest.raises(NonFiniteLoss, match=r"non-finite loss in step 1 \(epoch 1\)"):
        train(tiny_config(synthetic_root, run, epochs=1, time_limit=1e-9, **{**KW, "log_every": 4}), progress=False)
    assert not (run / "latest.pt").exists()


# ----- full disk, unwritable run folder ---------------------------------------------------------
def test_full_disk_at_a_checkpoint_keeps_the_previous_one(tmp_path, synthetic_root, monkeypatch, capsys):
    import pix2pix.fileio as fileio

    real_replace, latest_writes = fileio.os.replace, []

    def replace(src, dst):
        if str(dst).endswith("latest.pt"):
            latest_writes.append(dst)
            if len(latest_writes) == 2:
                raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(fileio.os, "replace", replace)
    run = tmp_path / "run"
    args = ["train", "--data", str(synthetic_root), "--out", str(run), "--netG", "unet_32", "--ngf", "8",
            "--ndf", "8", "--load-size", "36", "--crop-size", "32", "--batch-size", "2", "--epochs", "3",
            "--epochs-decay", "0", "--max-items", "8", "--latest-every", "0", "--device", "cpu"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (f"error: could not write checkpoint {run / 'latest.pt'}: No space left on device; "
                   "the previous checkpoint is unchanged")
    state = load_checkpoint(run)
    assert state["epoch"] == 1 and finite(state)
    assert not list(run.rglob("*.tmp"))  # the failed write left no temporary file


def test_full_disk_for_the_loss_log_is_a_clear_error(tmp_path, synthetic_root, monkeypatch):
    real_open = open

    def full_open(path, mode="r", *a, **k):
        if str(path).endswith("losses.jsonl") and "a" in mode:
            raise OSError(28, "No space left on device")
        return real_open(path, mode, *a, **k)

    import pix2pix.training.run_folder as run_folder

    monkeypatch.setattr(run_folder, "open", full_open, raising=False)
    with pytest.raises(OutputError, match=r"could not write .*losses\.jsonl: No space left on device; "
                                          "no checkpoint was written yet"):
        train(tiny_config(synthetic_root, tmp_path / "run", **KW), progress=False)


def test_unwritable_run_folder_fails_before_loading_any_data(tmp_path, capsys):
    (tmp_path / "file").write_text("a regular file where a folder should be")
    # the dataset does not even exist: the run folder is checked first
    assert main(["train", "--data", str(tmp_path / "no-data"), "--out", str(tmp_path / "file" / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: run folder {tmp_path / 'file' / 'run'} is not writable") and err.count("\n") == 1


def test_too_little_free_space_fails_before_the_first_step(tmp_path, synthetic_root, monkeypatch):
    import pix2pix.training.run_folder as run_folder

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(run_folder.shutil, "disk_usage", lambda p: usage._replace(free=5 << 20))
    with pytest.raises(CheckpointError, match=r"has 5 MB free, but needs at least \d+ MB \(a checkpoint of about"):
        train(tiny_config(synthetic_root, tmp_path / "run", **KW), progress=False)
    assert not (tmp_path / "run" / "losses.jsonl").exists()  # not a single step was taken


# ----- checkpoints that do not fit --------------------------------------------------------------
def test_a_checkpoint_from_another_architecture_is_refused_clearly(tmp_path, trained_run):
    state = load_checkpoint(trained_run)
    state["generator"] = build_generator(tiny_config(tmp_path, tmp_path, ngf=16).model).state_dict()
    (tmp_path / "other.pt").write_bytes(checkpoint_bytes({k: v for k, v in state.items() if k not in ("format", "version")}))
    with pytest.raises(CheckpointError, match=r"other\.pt: the generator weights do not fit the network built "
                                              r"from its config \(Error\(s\) in loading state_dict"):
        load(tmp_path / "other.pt", device="cpu")
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(tmp_path / "other.pt", run / "latest.pt")
    with pytest.raises(CheckpointError, match="the generator weights do not fit"):
        resume(run, {"epochs": 2}, progress=False)


def test_corrupted_incomplete_or_unusable_checkpoints_are_refused_clearly(tmp_path, trained_run):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    data = (run / "latest.pt").read_bytes()
    (run / "latest.pt").unlink()  # it is a hard link to checkpoints/epoch_0001.pt: do not write through it
    (run / "latest.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"latest\.pt: not a readable pix2pix checkpoint .*the newest numbered "
                                              r"checkpoint is .*epoch_0001\.pt: copy it over"):
        resume(run, {"epochs": 2}, progress=False)
    with pytest.raises(CheckpointError, match="not a readable pix2pix checkpoint"):
        load(run, device="cpu")

    state = load_checkpoint(trained_run)
    del state["opt_G"]
    (run / "latest.pt").write_bytes(checkpoint_bytes({k: v for k, v in state.items() if k not in ("format", "version")}))
    with pytest.raises(CheckpointError, match=r"incomplete checkpoint \(no opt_G\)"):
        resume(run, {"epochs": 2}, progress=False)

    state = load_checkpoint(trained_run)
    state["config"]["model"]["netG"] = "unet_31"
    (run / "latest.pt").write_bytes(checkpoint_bytes({k: v for k, v in state.items() if k not in ("format", "version")}))
    with pytest.raises(CheckpointError, match=r"latest\.pt: the settings stored in this checkpoint cannot be used "
                                              r"\(netG: 'unet_31' is not unet_N"):
        load(run, device="cpu")
