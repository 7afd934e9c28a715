"""pix2pix evaluate end to end: exact scores on hand-made label maps, checkpoints, the segmenter."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import write_ab
from pix2pix.cli import main
from pix2pix.data.pairs import find_pairs, read_pair
from pix2pix.errors import CheckpointError
from pix2pix.evaluate.cityscapes import CLASS_COLORS
from pix2pix.evaluate.metrics import psnr, ssim

ROAD, BUILDING, CAR = (tuple(int(v) for v in CLASS_COLORS[i]) for i in (0, 2, 13))
VOID = (0, 0, 0)


def label_map() -> np.ndarray:
    """32x32: rows 0-15 road, 16-29 car, 30-31 void (not scored)."""
    m = np.zeros((32, 32, 3), np.uint8)
    m[:16], m[16:30], m[30:] = ROAD, CAR, VOID
    return m


@pytest.fixture()
def label_sets(tmp_path):
    """3 targets; the prediction for 'a' paints rows 16-17 (64 car pixels) as building."""
    tgt, pred = tmp_path / "targets", tmp_path / "preds"
    tgt.mkdir()
    pred.mkdir()
    for name in ("a", "b", "c"):
        m = label_map()
        Image.fromarray(m).save(tgt / f"{name}.png")
        write_ab(tmp_path / "val" / f"{name}.png", np.full_like(m, 90), m)  # photo | labels
        if name == "a":
            m[16:18] = BUILDING
        Image.fromarray(m).save(pred / f"{name}_fake_B.png")
    return tmp_path


@pytest.mark.parametrize("layout", ["folders", "paired"])
def test_photo2label_exact_scores_from_the_command_line(label_sets, layout, capsys):
    targets = ["--targets", str(label_sets / "targets")] if layout == "folders" else \
              ["--targets", str(label_sets / "val"), "--paired"]
    out = label_sets / f"{layout}.json"
    assert main(["evaluate", "--task", "photo2label", "--predictions", str(label_sets / "preds"),
                 "--pred-suffix", "_fake_B", *targets, "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    scored = 3 * 30 * 32  # void rows are not scored
    assert r["images"] == 3 and r["scored_pixels"] == scored
    assert r["pixel_accuracy"] == pytest.approx((scored - 64) / scored, abs=1e-12)
    car = (3 * 14 * 32 - 64) / (3 * 14 * 32)
    assert r["class_accuracy"] == pytest.approx((1.0 + car) / 2, abs=1e-12)  # building is not a target class
    assert r["class_iou"] == pytest.approx((1.0 + car + 0.0) / 3, abs=1e-12)  # but its false positives count
    assert r["ignored_pixel_fraction"] == pytest.approx(64 / 1024)
    per_class = {c["name"]: c for c in r["per_class"]}
    assert per_class["car"]["pixels"] == 3 * 14 * 32 and per_class["building"]["iou"] == 0.0
    assert per_class["sky"]["accuracy"] is None and per_class["sky"]["iou"] is None
    assert [row["name"] for row in r["per_image"]] == ["a", "b", "c"]
    assert r["per_image"][1]["pixel_accuracy"] == 1.0 and r["per_image"][1]["psnr"] is None  # identical: inf
    assert r["settings"]["task"] == "photo2label" and "nearest colour" in r["settings"]["colour_rule"]
    console = capsys.readouterr().out
    assert "per-pixel accuracy" in console and "car" in console


def test_evaluate_errors_are_one_line(label_sets, capsys):
    (label_sets / "targets" / "c.png").unlink()
    args = ["evaluate", "--task", "photo2label", "--predictions", str(label_sets / "preds"), "--pred-suffix", "_fake_B"]
    assert main([*args, "--targets", str(label_sets / "targets")]) == 2
    assert "c_fake_B.png: no target for this prediction" in capsys.readouterr().err
    wide = label_sets / "wide"
    wide.mkdir()
    Image.fromarray(np.concatenate([label_map()] * 3, axis=1)).save(wide / "a.png")
    assert main(["evaluate", "--task", "generic", "--predictions", str(wide), "--targets",
                 str(label_sets / "targets")]) == 2
    assert "looks like a side-by-side image" in capsys.readouterr().err
    assert main(["evaluate", "--task", "label2photo", "--predictions", str(wide), "--targets", "x"]) == 2
    assert "needs --segmenter" in capsys.readouterr().err
    assert main(["evaluate", "--task", "generic", "--checkpoint", "run"]) == 2
    assert "--checkpoint needs --data" in capsys.readouterr().err


def test_generic_scores_of_a_checkpoint_match_an_independent_computation(tmp_path, trained_run, synthetic_root):
    from pix2pix import load

    out, report = tmp_path / "r.json", tmp_path / "report"
    assert main(["evaluate", "--checkpoint", str(trained_run), "--data", str(synthetic_root), "--task", "generic",
                 "--json", str(out), "--report", str(report), "--device", "cpu"]) == 0
    r = json.loads(out.read_text())
    t = load(trained_run, device="cpu")
    expected = []
    for pair in find_pairs(synthetic_root, "val"):
        a, b = read_pair(pair, 3, 3)  # the run translates A -> B
        fake = np.asarray(t(Image.fromarray(a)))
        expected.append((psnr(fake, b), ssim(fake, b)))
    assert r["images"] == 4 and "pixel_accuracy" not in r
    assert [row["psnr"] for row in r["per_image"]] == pytest.approx([e[0] for e in expected], abs=1e-9)
    assert r["ssim"] == pytest.approx(np.mean([e[1] for e in expected]), abs=2e-6)  # float32 SSIM in evaluate
    assert r["settings"]["checkpoint"] == str(trained_run) and r["settings"]["direction"] == "AtoB"
    page = (report / "index.html").read_text()
    assert page.count("<tr>") == 4 + 1 + 1 + len(r["settings"])  # images + header + summary tables
    assert len(list((report / "images").glob("*.jpg"))) == 4 * 3  # input, output, target


# ----- the segmenter (label2photo) --------------------------------------------------------------
@pytest.fixture(scope="module")
def segmenter_file(tmp_path_factory, synthetic_root):
    """A tiny segmenter trained on the synthetic renderings (B side) and their label maps (A side)."""
    from pix2pix.evaluate.segmenter import SegmenterConfig
    from pix2pix.evaluate.segmenter_training import SegmenterTraining, train_segmenter

    path = tmp_path_factory.mktemp("seg") / "seg.safetensors"
    train_segmenter(synthetic_root, path, direction="BtoA", arch=SegmenterConfig(width=8, depth=2, size=32),
                    train=SegmenterTraining(epochs=40, batch_size=4, lr=3e-3), device="cpu", progress=False)
    return path


def test_segmenter_beats_chance_and_reloads_identically(segmenter_file, synthetic_root):
    from pix2pix.evaluate.segmenter import Segmenter
    from pix2pix.evaluate.segmenter_training import load_segmentation_set

    seg = Segmenter.load(segmenter_file, device="cpu")
    val = seg.info["val"]
    assert seg.info["images"] == 16 and seg.info["epochs_done"] == 40 and val["images"] == 4
    data = load_segmentation_set(synthetic_root, "val", direction="BtoA")
    counts = np.bincount(data.labels.flatten().numpy(), minlength=256)
    present = np.count_nonzero(counts[:19])
    # always predicting the commonest class (80 % of the pixels here) scores pixel accuracy 0.8,
    # class accuracy 1 / present (0.25) and class IoU 0.8 / present (0.2)
    assert val["pixel_accuracy"] > counts.max() / counts.sum() + 0.05
    assert val["class_accuracy"] > 2 / present and val["class_iou"] > 0.4
    pred = seg.segment(data.photos)
    again = Segmenter.load(segmenter_file, device="cpu").segment(data.photos)
    assert pred.shape == (4, 32, 32) and pred.dtype.is_floating_point is False and (pred == again).all()
    ours = (pred.numpy() == data.labels.numpy()).mean()
    assert ours == pytest.approx(val["pixel_accuracy"])  # no void in the synthetic maps


def test_label2photo_end_to_end(tmp_path, trained_run, synthetic_root, segmenter_file, capsys):
    out = tmp_path / "r.json"
    assert main(["evaluate", "--checkpoint", str(trained_run), "--data", str(synthetic_root), "--task",
                 "label2photo", "--segmenter", str(segmenter_file), "--json", str(out), "--report",
                 str(tmp_path / "rep"), "--device", "cpu"]) == 0
    r = json.loads(out.read_text())
    seg_val = r["settings"]["segmenter"]["trained"]["val"]
    # the real photos are the segmenter's own val set: the ceiling equals its recorded val score
    assert r["real"]["pixel_accuracy"] == pytest.approx(seg_val["pixel_accuracy"])
    assert r["ratio_to_real"]["class_iou"] == pytest.approx(r["class_iou"] / r["real"]["class_iou"])
    assert 0 <= r["pixel_accuracy"] <= 1 and len(r["per_image"]) == 4
    console = capsys.readouterr().out
    assert "real photos" in console and "Frechet (segmenter)" in console
    assert len(list((tmp_path / "rep" / "images").glob("*_output_segmented.jpg"))) == 4
    # the segmenter-feature distance, recomputed from the segmenter's own features of the same images
    from test_realism import fid_low_rank

    from pix2pix import load
    from pix2pix.data.convert import to_uint8, to_unit_range
    from pix2pix.evaluate.segmenter import Segmenter

    seg, t = Segmenter.load(segmenter_file, device="cpu"), load(trained_run, device="cpu")
    labels, photos = zip(*(read_pair(p, 3, 3) for p in find_pairs(synthetic_root, "val")))  # A | B
    as_tensor = lambda arrays: torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()  # noqa: E731
    fake = to_uint8(t(to_unit_range(as_tensor(labels))))  # the run translates A (labels) -> B (photos)
    with torch.no_grad():
        f_fake = seg.model.forward_with_features(to_unit_range(fake))[1].double().numpy()
        f_real = seg.model.forward_with_features(to_unit_range(as_tensor(photos)))[1].double().numpy()
    realism = r["segmenter_realism"]
    assert realism["dims"] == f_fake.shape[1] == 8 + 16 + 32 and realism["images"] == [4, 4]
    assert realism["frechet"] == pytest.approx(fid_low_rank(f_fake, f_real), rel=1e-6)
    floor = realism["halves"]["real_vs_real"]["frechet"]
    assert floor == pytest.approx(fid_low_rank(f_real[[0, 2]], f_real[[1, 3]]), rel=1e-6)


def test_bad_segmenter_file(tmp_path):
    from pix2pix.evaluate.segmenter import Segmenter

    bad = tmp_path / "seg.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="not a readable segmenter file"):
        Segmenter.load(bad)
    with pytest.raises(CheckpointError, match="no such segmenter file"):
        Segmenter.load(tmp_path / "missing.safetensors")


def test_train_segmenter_from_the_command_line(tmp_path, synthetic_root):
    path = tmp_path / "s.safetensors"
    assert main(["evaluate", "--train-segmenter", "--data", str(synthetic_root), "--segmenter", str(path),
                 "--direction", "BtoA", "--epochs", "1", "--size", "32", "--width", "4", "--depth", "1",
                 "--max-items", "4", "--device", "cpu"]) == 0
    from pix2pix.evaluate.segmenter import Segmenter

    seg = Segmenter.load(path)
    assert seg.cfg.width == 4 and seg.info["images"] == 4 and seg.info["steps"] == 1
    assert main(["evaluate", "--train-segmenter", "--data", str(synthetic_root), "--segmenter", str(path),
                 "--size", "30"]) == 2


def test_segmenter_time_budget_stops_early_with_a_usable_file(tmp_path, synthetic_root):
    from pix2pix.evaluate.segmenter import Segmenter, SegmenterConfig
    from pix2pix.evaluate.segmenter_training import SegmenterTraining, train_segmenter

    path = tmp_path / "s.safetensors"
    train_segmenter(synthetic_root, path, direction="BtoA", val_split=None, progress=False, device="cpu",
                    arch=SegmenterConfig(width=4, depth=1, size=32),
                    train=SegmenterTraining(epochs=50, batch_size=4, time_limit=1e-4))  # 6 ms
    info = Segmenter.load(path).info
    assert 1 <= info["steps"] < 50 * 4 and info["epochs_done"] < 50 and "val" not in info
