"""--auto-resume: a command run again continues its own run, refuses one with other settings naming
the difference, and starts a new one where there is no checkpoint; -q also silences progress bars."""

from __future__ import annotations

from conftest import TINY
from pix2pix.cli import main
from pix2pix.training.checkpoint import load_checkpoint


def command(data, out, **over):
    opts = {**TINY, **over}
    args = ["train", "--auto-resume", "--data", str(data), "--out", str(out), "--max-items", "4"]
    for k, v in opts.items():
        args += ["--netG" if k == "netG" else f"--{k.replace('_', '-')}", str(v)]
    return args


def test_auto_resume_starts_continues_and_refuses_other_settings(tmp_path, synthetic_root, capsys):
    run = tmp_path / "run"
    assert main(command(synthetic_root, run)) == 0  # nothing there yet: a new run
    assert load_checkpoint(run)["epoch"] == 1
    assert main(command(synthetic_root, run)) == 0  # the same command again: already finished, nothing done
    assert load_checkpoint(run)["step"] == 2
    assert main(command(synthetic_root, run, epochs=2)) == 0  # epochs may change: the run is extended
    state = load_checkpoint(run)
    assert (state["epoch"], state["step"]) == (2, 4)
    capsys.readouterr()
    assert main(command(synthetic_root, run, epochs=2, ngf=16, lr=1e-3)) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: --auto-resume:")
    assert "ngf 8 there, 16 here" in err and "lr 0.0002 there, 0.001 here" in err
    assert load_checkpoint(run)["step"] == 4  # untouched


def test_quiet_silences_the_progress_bars(tmp_path, synthetic_root, capfd):
    assert main(["-q", *command(synthetic_root, tmp_path / "run")]) == 0
    out, err = capfd.readouterr()
    assert "epoch 1/1" not in err + out and "decode train" not in err + out
    assert main(command(synthetic_root, tmp_path / "run2")) == 0
    out, err = capfd.readouterr()
    assert "epoch 1/1" in err + out  # without -q the epoch line is there (the bars need a terminal)


def test_latest_is_written_mid_epoch_when_due_and_resumes_exactly(tmp_path, synthetic_root, monkeypatch):
    from conftest import tiny_config
    from pix2pix.training import Trainer, train

    writes = []
    save = Trainer.save

    def recorded(self, *a, **k):
        writes.append((self.state.step, self.state.batch_in_epoch))
        return save(self, *a, **k)

    monkeypatch.setattr(Trainer, "save", recorded)
    # 8 pairs, batch 2: 4 steps, a log point every 2; due at once: saved at step 2, mid-epoch, and at the end
    train(tiny_config(synthetic_root, tmp_path / "due", max_items=8, latest_every=1e-9), progress=False)
    assert writes == [(2, 2), (4, 0)]
    writes.clear()
    train(tiny_config(synthetic_root, tmp_path / "epochs", max_items=8, latest_every=0), progress=False)
    assert writes == [(4, 0)]  # 0: at epoch ends only
