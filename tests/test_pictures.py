"""Seeing the data and the run: pix2pix show, loss curves, the run page, TensorBoard, translate --report."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image

from conftest import noise_image, tiny_config, write_ab
from pix2pix.cli import main
from pix2pix.config import DataConfig
from pix2pix.evaluate.metrics import psnr
from pix2pix.pictures import pick_evenly, show_pairs, smooth
from pix2pix.training.run_folder import RunFolder, read_loss_log


@pytest.fixture()
def pairs_root(tmp_path):
    """train/ with 5 side-by-side 20x20 pairs; pair i has A = noise(i) and B = noise(100 + i)."""
    for i in range(5):
        write_ab(tmp_path / "train" / f"{i}.png", noise_image(20, 20, i), noise_image(20, 20, 100 + i))
    return tmp_path


def tile(im: Image.Image, row: int, col: int, size: int, pad: int = 4, per_row_tiles: int = 2) -> np.ndarray:
    """The (row, col) tile of a show_pairs grid whose cells hold ``per_row_tiles`` tiles side by side."""
    cell_w = per_row_tiles * size
    x = pad + (col // per_row_tiles) * (cell_w + pad) + (col % per_row_tiles) * size
    y = pad + row * (size + pad)
    return np.asarray(im)[y:y + size, x:x + size]


def test_show_pairs_as_stored(pairs_root):
    assert pick_evenly(5, 3) == [0, 2, 4] and pick_evenly(5, 9) == [0, 1, 2, 3, 4] and pick_evenly(5, 1) == [0]
    im = show_pairs(pairs_root, "train", n=3, columns=2)
    assert im.size == (4 + 2 * (40 + 4), 4 + 2 * (20 + 4))  # 2 cells per row, 2 rows, pad 4
    # first row: pair 0 then pair 2 (evenly spread), each A | B
    assert np.array_equal(tile(im, 0, 0, 20), noise_image(20, 20, 0))
    assert np.array_equal(tile(im, 0, 1, 20), noise_image(20, 20, 100))
    assert np.array_equal(tile(im, 0, 2, 20), noise_image(20, 20, 2))
    assert np.array_equal(tile(im, 1, 1, 20), noise_image(20, 20, 104))


def test_show_augmented_keeps_pairs_aligned(tmp_path):
    a = noise_image(24, 24, 7)
    write_ab(tmp_path / "train" / "x.png", a, a)  # B identical to A: any misalignment would show
    data = DataConfig(load_size=28, crop_size=16)
    images = [show_pairs(tmp_path, n=1, augmented=True, data=data, seed=s) for s in range(4)]
    for im in images:
        assert im.size == (4 + 3 * 16 + 4, 4 + 16 + 4)  # A' | B' | blend at the crop size
        ja, jb, mix = (tile(im, 0, c, 16, per_row_tiles=3) for c in range(3))
        assert np.array_equal(ja, jb) and np.array_equal(mix, ja)
    assert len({np.asarray(im).tobytes() for im in images}) > 1  # the jitter does change with the seed


def test_show_command(pairs_root, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["show", "--data", str(pairs_root), "--n", "4", "--out", str(out)]) == 0
    assert Image.open(out).size == (4 + 2 * 44, 4 + 2 * 24)
    assert main(["show", "--data", str(pairs_root), "--split", "val", "--out", str(out)]) == 2
    assert "no 'val' split" in capsys.readouterr().err
    assert main(["show", "--data", str(pairs_root), "--augmented", "--crop-size", "300", "--out", str(out)]) == 2
    assert "crop_size (300) must not exceed load_size" in capsys.readouterr().err


def test_loss_log_reading_and_smoothing(tmp_path):
    log = tmp_path / "losses.jsonl"
    rows = [{"step": 1, "G_L1": 3.0}, {"step": 2, "G_L1": 2.0}, {"step": 3, "G_L1": 1.0},
            {"step": 2, "G_L1": 5.0}]  # a resumed run logs step 2 again: the later line wins
    log.write_text("\n".join(json.dumps(r) for r in rows) + "\n{\"step\": 4, \"G_L")  # cut short by a crash
    assert [(r["step"], r["G_L1"]) for r in read_loss_log(log)] == [(1, 3.0), (2, 5.0), (3, 1.0)]
    assert smooth([2.0] * 5, 0.9) == pytest.approx([2.0] * 5)  # bias-corrected: no ramp from zero
    assert smooth([0.0, 1.0], 0.5) == pytest.approx([0.0, 1.0 * 0.5 / 0.75])


def test_training_writes_curves_and_run_page(trained_run):
    page = (trained_run / "index.html").read_text()
    curves = Image.open(trained_run / "curves.png")
    assert curves.size[0] > 600 and "curves.png?step=" in page
    steps = [json.loads(line)["step"] for line in (trained_run / "losses.jsonl").read_text().splitlines()]
    assert f"<td class=\"num\">{steps[-1]}</td>" in page  # the latest record is shown
    shown = re.findall(r"samples/(step_\d+\.png)", page)
    assert shown == sorted(p.name for p in (trained_run / "samples").glob("step_*.png"))[::-1]


def test_run_page_lists_samples_newest_first(tmp_path):
    (tmp_path / "samples").mkdir()
    for step in (500, 1500, 1000):
        Image.new("RGB", (4, 4)).save(tmp_path / "samples" / f"step_{step:08d}.png")
    page = RunFolder(tmp_path).write_page().read_text()  # no losses, no config yet: still a page
    assert re.findall(r"<figcaption>step (\d+)</figcaption>", page) == ["1500", "1000", "500"]


def test_tensorboard_gets_the_sample_images(tmp_path, synthetic_root):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from pix2pix.training import train

    run = tmp_path / "run"
    train(tiny_config(synthetic_root, run, max_items=4, sample_every=1, tensorboard=True), progress=False)
    acc = EventAccumulator(str(run / "tensorboard"))
    acc.Reload()
    assert "samples" in acc.Tags()["images"] and "G_L1" in acc.Tags()["scalars"]
    assert [e.step for e in acc.Images("samples")] == [1, 2]  # every grid once
    assert len(list((run / "samples").glob("*.png"))) == 2


def test_translate_report(tmp_path, trained_run, synthetic_root):
    out = tmp_path / "out"
    assert main(["translate", "--checkpoint", str(trained_run), "--input", str(synthetic_root / "val"),
                 "--output", str(out), "--paired", "--report"]) == 0
    page = (out / "index.html").read_text()
    rows = re.findall(r"<tr><td>(\d+)</td>.*?</tr>", page)
    assert rows == ["0001", "0002", "0003", "0004"]
    assert len(list((out / "report").glob("*_input.jpg"))) == 4 and "src=\"0001.png\"" in page
    # the PSNR on the page is that of the written output against the target
    written = np.asarray(Image.open(out / "0001.png").convert("RGB"))
    ab = np.asarray(Image.open(synthetic_root / "val" / "0001.png").convert("RGB"))
    expected = psnr(written, ab[:, 32:])
    first = re.search(r"<tr><td>0001</td>(.*?)</tr>", page).group(1)
    assert f"{expected:.4f}" in first

    sbs = tmp_path / "sbs"  # side-by-side outputs: the output panel is cut out for scoring
    assert main(["translate", "--checkpoint", str(trained_run), "--input", str(synthetic_root / "val"),
                 "--output", str(sbs), "--paired", "--side-by-side", "--report"]) == 0
    assert f"{expected:.4f}" in re.search(r"<tr><td>0001</td>(.*?)</tr>", (sbs / "index.html").read_text()).group(1)
