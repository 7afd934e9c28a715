"""Networks too large for the machine are refused from the config, before anything is allocated, with
one line naming the file (a checkpoint, a safetensors export, or the training settings)."""

from __future__ import annotations

import json
import resource

import pytest
import torch

from conftest import TINY
from pix2pix import load
from pix2pix.cli import main
from pix2pix.config import ModelConfig, TrainConfig
from pix2pix.errors import CheckpointError, DataError
from pix2pix.models import build_discriminator, build_generator
from pix2pix.models import size as size_module
from pix2pix.models.size import parameter_counts

# within every option's bounds, but 27 G parameters (100 GiB of weights)
HUGE = dict(netG="unet_4096", ngf=1024, ndf=1024, load_size=4096, crop_size=4096)


@pytest.fixture
def eight_gib(monkeypatch):
    """The same answer on any machine: pretend it has 8 GiB."""
    monkeypatch.setattr(size_module, "memory_of", lambda device: 8 * 2**30)


@pytest.mark.parametrize("kw", [dict(netG="unet_32", ngf=8, ndf=8), dict(netG="unet_64", ngf=7, ndf=5, norm="instance",
                                patch=1), dict(netG="unet_128", ngf=13, ndf=3, norm="none", patch=286)])
def test_parameter_counts_are_exact_without_building_the_networks(kw):
    cfg = ModelConfig(**kw)
    real = [sum(t.numel() for t in (*m.parameters(), *m.buffers()))
            for m in (build_generator(cfg), build_discriminator(cfg))]
    assert list(parameter_counts(cfg)) == real
    assert parameter_counts(ModelConfig())[0] == 54_423_824  # the paper's unet_256 (parameters and BN buffers)


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def checkpoint_asking_for(tmp_path, trained_run, **settings):
    state = torch.load(trained_run / "latest.pt", weights_only=True)
    state["config"] = TrainConfig.from_dict(state["config"]).to_dict()
    state["config"]["model"].update({k: v for k, v in settings.items() if k in ("netG", "ngf", "ndf")})
    state["config"]["data"].update({k: v for k, v in settings.items() if k.endswith("_size")})
    path = tmp_path / "huge.pt"
    torch.save(state, path)
    return path


def test_a_checkpoint_asking_for_too_much_is_one_line_naming_it(tmp_path, trained_run, eight_gib, capsys):
    path = checkpoint_asking_for(tmp_path, trained_run, **HUGE)
    before = peak_rss()
    with pytest.raises(CheckpointError, match=rf"{path}: unet_4096 with ngf 1024 has 26.81 G parameters, 99.9 GiB "
                                              r"to hold them, more than the 8.0 GiB of memory"):
        load(path, device="cpu")
    assert peak_rss() - before < 2**30  # nothing of that size was allocated
    assert main(["translate", "--checkpoint", str(path), "--input", str(tmp_path), "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: unet_4096 with ngf 1024") and err.count("\n") == 1


def test_an_out_of_bounds_size_in_a_checkpoint_is_refused_naming_it(tmp_path, trained_run):
    path = checkpoint_asking_for(tmp_path, trained_run, ngf=2**20)
    with pytest.raises(CheckpointError, match=rf"{path}: the settings stored in this checkpoint cannot be used "
                                              r"\(ngf: 1048576 is above the largest allowed value, 1024\)"):
        load(path, device="cpu")


def test_a_safetensors_file_asking_for_too_much_is_refused_naming_it(tmp_path, eight_gib):
    from safetensors.torch import save

    from pix2pix.deploy.formats.metadata import META_KEY, export_metadata

    cfg = TrainConfig.from_flat({**TINY, **HUGE})
    path = tmp_path / "huge.safetensors"
    path.write_bytes(save({"w": torch.zeros(1)}, metadata={META_KEY: json.dumps(export_metadata(cfg, "safetensors"))}))
    with pytest.raises(CheckpointError, match=rf"{path}: unet_4096 with ngf 1024 has 26.81 G parameters"):
        load(path, device="cpu")


def test_training_settings_asking_for_too_much_stop_before_loading_data(tmp_path, synthetic_root, eight_gib, capsys,
                                                                         monkeypatch):
    import pix2pix.training.loop as loop

    monkeypatch.setattr(loop, "load_datasets", lambda *a, **k: pytest.fail("data loaded before the size check"))
    config = tmp_path / "huge.yaml"
    config.write_text("".join(f"{k}: {v}\n" for k, v in HUGE.items()))
    assert main(["train", "--data", str(synthetic_root), "--out", str(tmp_path / "run"), "--config", str(config),
                 "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: these settings: unet_4096 with ngf 1024 and ndf 1024 has 27.52 G parameters, "
                          "410.0 GiB to train them") and err.count("\n") == 1


def test_decoded_data_larger_than_memory_is_refused_before_allocating(synthetic_root, monkeypatch):
    from pix2pix.data.pairs import PairedImages

    pages = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": 16}  # a 64 KiB machine: 16 pairs of 32x32 need 96 KiB
    monkeypatch.setattr("pix2pix.data.pairs.os.sysconf", lambda name: pages[name])
    with pytest.raises(DataError, match=r"train: 16 pairs stored at 32x32 need 0.0 GiB decoded, more than the 0.0 GiB"):
        PairedImages.load(synthetic_root, "train", load_size=36, crop_size=32)
