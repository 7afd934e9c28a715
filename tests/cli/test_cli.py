"""The command line as a user types it: option precedence, results on disk, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PIL import Image

from conftest import TINY, noise_image
from pix2pix.cli import build_parser, main
from pix2pix.cli.options import build_train_config


def parse_train(*argv):
    return build_train_config(build_parser().parse_args(["train", *argv]))


def test_precedence_defaults_preset_config_file_flags(tmp_path):
    cfg = parse_train("--data", "d")
    assert cfg.data.direction == "AtoB" and cfg.batch_size == 1 and cfg.model.ngf == 64
    cfg = parse_train("--data", "d", "--preset", "edges2shoes")
    assert cfg.batch_size == 4 and cfg.total_epochs == 15
    (tmp_path / "opts.yaml").write_text("preset: cityscapes\nngf: 32\nbatch_size: 2\n")
    cfg = parse_train("--data", "d", "--config", str(tmp_path / "opts.yaml"), "--batch-size", "8")
    assert cfg.data.direction == "BtoA"  # from the preset named in the file
    assert cfg.model.ngf == 32  # from the file
    assert cfg.batch_size == 8  # the explicit flag wins
    cfg = parse_train("--data", "d", "--preset", "cityscapes", "--direction", "AtoB", "--no-flip")
    assert cfg.data.direction == "AtoB" and cfg.data.flip is False


def test_a_run_config_json_can_be_used_as_config_file(trained_run):
    cfg = parse_train("--config", str(trained_run / "config.json"), "--out", "elsewhere")
    assert cfg.model.netG == "unet_32" and cfg.out == "elsewhere"


def tiny_flags():
    flags = []
    for k, v in TINY.items():
        flags += [f"--{k.replace('_', '-')}" if k != "netG" else "--netG", str(v)]
    return flags


def test_train_resume_translate_from_the_command_line(tmp_path, synthetic_root, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", str(synthetic_root), "--out", str(run), *tiny_flags(), "--max-items", "4"]) == 0
    assert (run / "latest.pt").exists()
    assert main(["train", "--resume", str(run), "--epochs", "2"]) == 0
    assert json.loads((run / "config.json").read_text())["epochs"] == 2
    out = tmp_path / "out"
    assert main(["translate", "--checkpoint", str(run), "--input", str(synthetic_root / "val"),
                 "--output", str(out), "--paired", "--side-by-side"]) == 0
    assert len(list(out.glob("*.png"))) == 4
    err = capsys.readouterr().err
    assert "translated 4 images" in err


def test_errors_are_one_line_without_traceback(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "missing: dataset folder not found" in err and "Traceback" not in err
    assert main(["train", "--data", "x", "--crop-size", "100"]) == 2
    assert "multiple of 256" in capsys.readouterr().err
    assert main(["translate", "--checkpoint", str(tmp_path), "--input", "x.png", "--output", "o"]) == 2
    assert "no latest.pt" in capsys.readouterr().err


def test_bad_images_in_translate_are_reported(tmp_path, trained_run, capsys):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(noise_image(32, 32)).save(src / "ok.png")
    (src / "empty.jpg").write_bytes(b"")
    assert main(["translate", "--checkpoint", str(trained_run), "--input", str(src), "--output",
                 str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    assert "warning: skipped" in err and "empty.jpg: file is empty" in err and "translated 1 images" in err
    assert main(["translate", "--checkpoint", str(trained_run), "--input", str(src), "--output",
                 str(tmp_path / "o2"), "--strict"]) == 2
    assert "error: " in capsys.readouterr().err


def test_installed_command_runs(tmp_path):
    result = subprocess.run([sys.executable, "-m", "pix2pix", "train", "--data", str(tmp_path / "nope")],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "error:" in result.stderr and "Traceback" not in result.stderr


def test_quickstart_runs_the_whole_pipeline(tmp_path):
    from pix2pix.quickstart import quickstart

    out = quickstart(tmp_path / "qs", epochs=1, device="cpu", n_train=8, n_val=2, progress=False)
    results = sorted((out / "translated").glob("*.png"))
    assert [p.name for p in results] == ["0001.png", "0002.png"]
    assert Image.open(results[0]).size == (3 * 64, 64)  # label map | output | rendering
    assert (out / "run" / "latest.pt").exists() and list((out / "run" / "samples").glob("*.png"))


def test_every_command_has_a_one_line_summary_and_ends_its_help_with_an_example(capsys, monkeypatch):
    from pix2pix.cli.main import COMMANDS

    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit):
        main(["--help"])
    listing = capsys.readouterr().out
    lines = {line.split()[0]: line for line in listing.splitlines() if line.startswith("    ") and line.split()}
    for name, command in COMMANDS.items():
        assert command.summary in lines[name], f"{name}: its summary does not fit on its line"
        with pytest.raises(SystemExit):
            main([name, "--help"])
        text = capsys.readouterr().out.rstrip()
        assert text.splitlines()[-1].strip().startswith("pix2pix ") and "example:" in text, name
