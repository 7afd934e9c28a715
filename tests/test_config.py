"""The config is the one source of options: files are checked and coerced by field type, the CLI's
flags are generated from the fields, presets are overrides only, and a checkpoint's stored config
passes the same checks."""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing

import pytest

from pix2pix.cli import main
from pix2pix.cli.options import build_train_config, flag_of
from pix2pix.config import PRESETS, TrainConfig, load_config_file, option_fields, resumable_options
from pix2pix.errors import CheckpointError, ConfigError


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


# ----- config files -----------------------------------------------------------------------------
def test_yaml_numbers_read_as_strings_are_coerced(tmp_path):
    # YAML 1.1 reads 2e-4 (no dot) as a string; the field's type decides
    path = write(tmp_path, "c.yaml", "lr: 2e-4\nngf: '32'\nflip: 'false'\ntime_limit: null\nepochs: 10.0\n")
    flat = load_config_file(path)
    assert flat == {"lr": 2e-4, "ngf": 32, "flip": False, "time_limit": None, "epochs": 10}
    cfg = TrainConfig.from_flat(flat)
    assert cfg.lr == 2e-4 and isinstance(cfg.lr, float) and cfg.model.ngf == 32 and cfg.data.flip is False


@pytest.mark.parametrize("text,message", [
    ("epochs: ten\n", r"epochs: 'ten' is not an integer"),
    ("batch_size: 2.5\n", r"batch_size: 2\.5 is not an integer"),
    ("ngf: true\n", r"ngf: True is not an integer"),
    ("lr: [1, 2]\n", r"lr: \[1, 2\] is not a number"),
    ("lr: .nan\n", r"lr: nan is not a number"),
    ("direction: 1\n", r"direction: 1 is not a string"),
    ("flip: maybe\n", r"flip: 'maybe' is not true or false"),
    ("ngff: 3\n", r"unknown option 'ngff'"),
    ("ngf: 1048576\n", r"ngf: 1048576 is above the largest allowed value, 1024"),
    ("crop_size: 0\n", r"crop_size: 0 is below the smallest allowed value, 1"),
    ("lr: 0\n", r"lr: 0\.0 must be above 0"),
    ("norm: group\n", r"norm: 'group' is not one of batch, instance, none"),
    ("preset: nope\n", r"unknown preset 'nope'"),
    ("data: [1]\n", r"'data' must be a mapping"),
])
def test_bad_values_in_a_file_are_one_line_naming_file_key_and_value(tmp_path, text, message):
    path = write(tmp_path, "bad.yaml", text)
    with pytest.raises(ConfigError, match=message) as e:
        load_config_file(path)
    assert str(e.value).startswith(f"{path}: ") and "\n" not in str(e.value)


def test_cli_reports_a_bad_config_file_in_one_line(tmp_path, capsys):
    path = write(tmp_path, "bad.yaml", "epochs: ten\n")
    assert main(["train", "--config", str(path), "--data", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {path}: epochs: 'ten' is not an integer\n"


def test_a_runs_nested_config_json_is_a_config_file(tmp_path):
    cfg = TrainConfig.from_flat({"ngf": 16, "direction": "BtoA", "lr": 1e-3})
    path = write(tmp_path, "config.json", json.dumps(cfg.to_dict()))
    assert TrainConfig.from_flat(load_config_file(path)) == cfg


def test_a_checkpoints_config_passes_the_same_checks(tmp_path):
    from pix2pix import load
    from pix2pix.training.checkpoint import checkpoint_bytes

    cfg = TrainConfig.from_flat({"netG": "unet_32", "ngf": 4, "ndf": 4, "crop_size": 32, "load_size": 32})
    from pix2pix.models import build_generator

    state = {"config": cfg.to_dict(), "generator": build_generator(cfg.model).state_dict()}
    state["config"]["model"]["ngf"] = 2**20  # an absurd width: refused before anything is allocated
    bad = tmp_path / "huge.pt"
    bad.write_bytes(checkpoint_bytes(state))
    with pytest.raises(CheckpointError, match=r"huge\.pt: the settings stored in this checkpoint cannot be used "
                                              r"\(ngf: 1048576 is above the largest allowed value"):
        load(bad, device="cpu")
    state["config"]["model"]["ngf"] = "4"  # a string where an int belongs is coerced, as in a file
    ok = tmp_path / "ok.pt"
    ok.write_bytes(checkpoint_bytes(state))
    assert load(ok, device="cpu").config.model.ngf == 4


# ----- the CLI is generated from the fields -----------------------------------------------------
def sample_value(name: str, f: dataclasses.Field, hint) -> tuple[list[str], object]:
    """Command-line words that set ``name`` to a valid value other than its default, and that value
    (on top of ``--netG unet_32 --load-size 512``)."""
    inner = next((a for a in typing.get_args(hint) if a is not type(None)), hint)
    if inner is bool:
        return [flag_of(name)], not f.default
    special = {"netG": "unet_128", "crop_size": 288, "load_size": 320, "device": "cpu"}
    if name in special:
        value = special[name]
    elif f.metadata.get("choices"):
        value = next(c for c in f.metadata["choices"] if c != f.default)
    elif inner is str:
        value = f"x_{name}"
    else:
        value = inner(2) if f.default is None else (f.default / 2 if inner is float and f.default else
                                                     inner(f.default + 1))
    return [flag_of(name), str(value)], value


def train_options() -> argparse.ArgumentParser:
    from pix2pix.cli.main import COMMANDS

    parser = argparse.ArgumentParser()
    COMMANDS["train"].add_args(parser)
    return parser


def test_every_config_field_has_exactly_one_generated_flag():
    dests = [a.dest for a in train_options()._actions]
    for name in option_fields():
        assert dests.count(name) == 1, name
    assert {"resume", "preset", "config"} <= set(dests)


@pytest.mark.parametrize("name", sorted(option_fields()))
def test_each_flag_sets_its_field(name):
    section, f, hint = option_fields()[name]
    words, value = sample_value(name, f, hint)
    base = ["--load-size", "512"] + ([] if name == "netG" else ["--netG", "unet_32"])
    cfg = build_train_config(train_options().parse_args(base + words))
    where = cfg if section == "train" else getattr(cfg, section)
    assert getattr(where, name) == value and type(getattr(where, name)) is type(value)


def test_resumable_options_come_from_the_fields():
    allowed = resumable_options()
    assert {"epochs", "epochs_decay", "time_limit", "device", "skip_nonfinite"} <= allowed
    assert not allowed & {"ngf", "netG", "lr", "batch_size", "direction", "data_root"}
    text = " ".join(train_options().format_help().split())
    assert "--epochs N epochs at the initial learning rate (100); may change with --resume" in text
    assert "--ngf N generator base width (64) --ndf" in text


# ----- presets ----------------------------------------------------------------------------------
def test_presets_are_overrides_only():
    defaults = TrainConfig().to_flat()
    for name, overrides in PRESETS.items():
        for key, value in overrides.items():
            assert defaults[key] != value, f"preset {name} repeats the default {key}={value!r}"
        TrainConfig.from_flat({"preset": name})  # each is a valid config
    assert TrainConfig.from_flat({"preset": "cityscapes"}).data.direction == "BtoA"
    assert TrainConfig.from_flat({"preset": "edges2shoes"}).batch_size == 4


def test_direction_helpers_are_one_swap():
    from pix2pix.config import sides_of, source_and_target

    assert source_and_target("AtoB", "a", "b") == ("a", "b")
    assert source_and_target("BtoA", "a", "b") == ("b", "a")
    for d in ("AtoB", "BtoA"):
        assert sides_of(d, *source_and_target(d, "a", "b")) == ("a", "b")
    cfg = TrainConfig.from_flat({"direction": "BtoA", "input_nc": 1})
    assert cfg.side_channels == (3, 1)  # side A holds the target (3 channels), B the 1-channel input


def test_the_user_cache_folder_follows_the_platform_rules(monkeypatch, tmp_path):
    from pix2pix.fileio import user_cache_dir

    monkeypatch.delenv("PIX2PIX_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert user_cache_dir() == tmp_path / "xdg" / "pix2pix"
    monkeypatch.setenv("PIX2PIX_CACHE", str(tmp_path / "mine"))
    assert user_cache_dir() == tmp_path / "mine"
