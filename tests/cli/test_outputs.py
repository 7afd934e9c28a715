"""Every command that writes: an unwritable, missing or full place is one line naming the path, found
before the expensive work where it can be known (the test makes that work fail if it is reached)."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from PIL import Image

from conftest import noise_image
from pix2pix.cli import main


def blocked(tmp_path: Path, name: str) -> Path:
    """A path below a regular file: no folder can be made there (read-only works the same, but the
    tests may run as root, who can write anywhere)."""
    (tmp_path / "a-file").write_text("in the way")
    return tmp_path / "a-file" / "sub" / name


def one_line_error(capsys, path: Path, *phrases: str) -> str:
    """The command's last words: one line ``error: ...`` naming ``path`` (progress lines may precede it)."""
    err = capsys.readouterr().err
    lines = err.replace("\r", "\n").splitlines()
    errors = [line for line in lines if "error: " in line]
    assert len(errors) == 1 and lines[-1] == errors[0] and "Traceback" not in err, err
    assert str(path) in errors[0] and all(p in errors[0] for p in phrases), err
    return err


def never(what: str):
    def fail(*args, **kwargs):
        raise AssertionError(f"{what} ran before the output place was checked")
    return fail


def disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.fixture
def images(tmp_path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(noise_image(32, 32, i)).save(folder / f"{i}.png")
    return folder


def test_export_checks_the_file_and_the_json_before_exporting(tmp_path, trained_run, capsys, monkeypatch):
    import pix2pix.deploy.export as export

    monkeypatch.setattr(export, "open_model", never("the export"))
    out = blocked(tmp_path, "g.safetensors")
    assert main(["export", "--checkpoint", str(trained_run), "--output", str(out)]) == 2
    one_line_error(capsys, out, "cannot write the export file")
    report = blocked(tmp_path, "results.json")
    assert main(["export", "--checkpoint", str(trained_run), "--output", str(tmp_path / "g.safetensors"),
                 "--json", str(report)]) == 2
    one_line_error(capsys, report, "--json file")
    assert not (tmp_path / "g.safetensors").exists()


def test_export_on_a_full_disk_is_one_line_and_writes_nothing(tmp_path, trained_run, capsys, monkeypatch):
    import pix2pix.deploy.export as export

    monkeypatch.setattr(export, "atomic_write_bytes", disk_full)
    out = tmp_path / "g.safetensors"
    assert main(["export", "--checkpoint", str(trained_run), "--output", str(out)]) == 2
    one_line_error(capsys, out, "No space left on device", "nothing was written")
    assert not out.exists()


def test_show_checks_its_out_file_first(tmp_path, synthetic_root, capsys, monkeypatch):
    import pix2pix.fileio as fileio
    import pix2pix.pictures as pictures

    real_show = pictures.show_pairs
    monkeypatch.setattr(pictures, "show_pairs", never("show"))
    out = blocked(tmp_path, "pairs.png")
    assert main(["show", "--data", str(synthetic_root), "--n", "2", "--out", str(out)]) == 2
    one_line_error(capsys, out, "--out file")
    monkeypatch.setattr(pictures, "show_pairs", real_show)
    monkeypatch.setattr(fileio, "atomic_write_bytes", disk_full)
    out = tmp_path / "pairs.png"
    assert main(["show", "--data", str(synthetic_root), "--n", "2", "--out", str(out)]) == 2
    one_line_error(capsys, out, "No space left on device")
    assert not out.exists()


@pytest.mark.parametrize("option", ["--json", "--report"])
def test_evaluate_checks_json_and_report_before_scoring(tmp_path, images, capsys, monkeypatch, option):
    import pix2pix.evaluate.evaluator as evaluator

    monkeypatch.setattr(evaluator, "evaluate", never("the scoring"))
    out = blocked(tmp_path, "scores.json" if option == "--json" else "report")
    assert main(["evaluate", "--task", "generic", "--predictions", str(images), "--targets", str(images),
                 option, str(out)]) == 2
    one_line_error(capsys, out, f"{option} ")


def test_evaluate_on_a_full_disk_keeps_the_scores_on_screen(tmp_path, images, capsys, monkeypatch):
    import pix2pix.fileio as fileio

    monkeypatch.setattr(fileio, "atomic_write_bytes", disk_full)
    out = tmp_path / "scores.json"
    assert main(["evaluate", "--task", "generic", "--predictions", str(images), "--targets", str(images),
                 "--json", str(out)]) == 2
    err = one_line_error(capsys, out, "No space left on device", "the scores were computed")
    assert "PSNR (dB)" in err  # and shown before the error, so the work is not lost


def test_translate_checks_its_output_folder_first(tmp_path, trained_run, images, capsys, monkeypatch):
    import pix2pix.deploy.files as files

    monkeypatch.setattr(files, "read_item", never("translation"))
    out = blocked(tmp_path, "out")
    assert main(["translate", "--checkpoint", str(trained_run), "--input", str(images), "--output", str(out)]) == 2
    one_line_error(capsys, out, "output folder")


def test_bench_checks_its_json_first(tmp_path, capsys, monkeypatch):
    import pix2pix.training.bench as bench

    monkeypatch.setattr(bench, "bench", never("the benchmark"))
    out = blocked(tmp_path, "bench.json")
    assert main(["bench", "--netG", "unet_32", "--ngf", "8", "--ndf", "8", "--crop-size", "32", "--load-size",
                 "32", "--json", str(out)]) == 2
    one_line_error(capsys, out, "--json file")


def test_segmenter_training_and_quickstart_check_their_place_first(tmp_path, synthetic_root, capsys, monkeypatch):
    import pix2pix.evaluate.segmenter_training as segmenter_training
    import pix2pix.quickstart as quickstart

    monkeypatch.setattr(segmenter_training, "load_segmentation_set", never("segmenter training"))
    out = blocked(tmp_path, "seg.safetensors")
    assert main(["evaluate", "--train-segmenter", "--data", str(synthetic_root), "--segmenter", str(out)]) == 2
    one_line_error(capsys, out, "--segmenter file")
    monkeypatch.setattr(quickstart, "make_synthetic_dataset", never("quickstart"))
    out = blocked(tmp_path, "quick")
    assert main(["quickstart", "--out", str(out)]) == 2
    one_line_error(capsys, out, "--out folder")
