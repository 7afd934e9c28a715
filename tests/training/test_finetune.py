"""Fine-tuning (--init-from MODEL): the networks start from MODEL's weights with its architecture,
optimisers and schedule start fresh, conflicting options are one clear error, and MODEL may be
any model file with weights (ours, a Hugging Face folder, the reference's .pth)."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import TINY, tiny_config
from pix2pix import TrainConfig, train
from pix2pix.cli import main
from pix2pix.deploy.finetune import initial_weights
from pix2pix.errors import ConfigError
from pix2pix.training import Trainer
from pix2pix.training import train as train_without_opening
from pix2pix.training.checkpoint import load_checkpoint
from pix2pix.training.init import architecture_options, with_architecture

pytestmark = pytest.mark.usefixtures("one_thread")


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k].cpu(), b[k].cpu()) for k in a)


def test_a_run_starts_from_our_checkpoint_with_both_networks(trained_run, synthetic_root, tmp_path):
    source = load_checkpoint(trained_run)
    cfg = tiny_config(synthetic_root, tmp_path / "ft", init_from=str(trained_run), max_items=4, netG="unet_256",
                      ngf=64, ndf=64, crop_size=256, load_size=286)  # all defaults: taken from the model
    init = initial_weights(cfg.init_from)
    cfg = with_architecture(cfg, init)
    assert (cfg.model.netG, cfg.model.ngf, cfg.model.ndf) == ("unet_32", 8, 8)
    trainer = Trainer(cfg, init=init, progress=False)
    assert same(trainer.nets.G_plain.state_dict(), source["generator"])
    assert same(trainer.nets.D_plain.state_dict(), source["discriminator"])
    assert not trainer.nets.opt_G.state and trainer.state.epoch == 0  # fresh optimisers and schedule
    assert trainer.cfg.init_from == str(trained_run)


def test_the_command_line_fine_tunes_and_records_the_model(trained_run, synthetic_root, tmp_path):
    out = tmp_path / "ft"
    assert main(["train", "--init-from", str(trained_run), "--data", str(synthetic_root), "--out", str(out),
                 "--crop-size", "32", "--load-size", "36", "--epochs", "1", "--epochs-decay", "0",
                 "--max-items", "4", "--batch-size", "2", "--device", "cpu", "--sample-every", "1000"]) == 0
    recorded = json.loads((out / "config.json").read_text())
    assert recorded["init_from"] == str(trained_run) and recorded["model"]["ngf"] == 8
    state = load_checkpoint(out)
    assert state["epoch"] == 1 and state["step"] == 2  # its own schedule, not the source run's


def test_conflicting_architecture_options_are_one_clear_error(trained_run, synthetic_root, tmp_path, capsys):
    with pytest.raises(ConfigError, match=r"the model has ngf 8, but ngf 16 was asked for"):
        train(tiny_config(synthetic_root, tmp_path / "ft", init_from=str(trained_run), ngf=16), progress=False)
    with pytest.raises(ConfigError, match="open the model with pix2pix.train"):
        train_without_opening(tiny_config(synthetic_root, tmp_path / "x", init_from=str(trained_run)))
    assert main(["train", "--init-from", str(tmp_path / "nothing"), "--data", str(synthetic_root),
                 "--out", str(tmp_path / "y")]) == 2
    assert "nothing" in capsys.readouterr().err


def test_a_reference_generator_starts_a_run_with_a_fresh_discriminator(reference_files, synthetic_root, tmp_path):
    from pix2pix import load

    path = reference_files / "unet_64_batch_ngf8" / "latest_net_G.pth"
    flat = {**TINY, "data_root": str(synthetic_root), "out": str(tmp_path / "ft"), "init_from": str(path),
            "crop_size": 64, "load_size": 72, "max_items": 2}
    del flat["netG"], flat["ngf"]  # the architecture comes from the file
    init = initial_weights(str(path))
    assert init.discriminator is None
    cfg = TrainConfig.from_flat({**flat, **architecture_options(init, flat)})
    assert (cfg.model.netG, cfg.model.dropout_placement) == ("unet_64", "reference")
    trainer = Trainer(cfg, init=init, progress=False)
    assert same(trainer.nets.G_plain.state_dict(), load(path, device="cpu").generator.state_dict())
    trainer.run()
    assert load_checkpoint(tmp_path / "ft")["epoch"] == 1


def test_an_exported_program_has_no_weights_to_train(exported):
    with pytest.raises(ConfigError, match="an exported torchscript program has no trainable weights"):
        initial_weights(str(exported["dir"] / "generator.ts"))
    assert initial_weights(str(exported["pretrained"])).discriminator is None  # a Hugging Face folder: G only
