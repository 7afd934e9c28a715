"""Translator and ``translate_files``: sizes, modes, batching, pairs, bad inputs."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import noise_image
from pix2pix import Translator, load
from pix2pix.deploy.files import collect_inputs, translate_files
from pix2pix.errors import DataError, OutputError


@pytest.fixture(scope="module")
def translator(trained_run) -> Translator:
    return load(trained_run, device="cpu")


def test_tensor_in_tensor_out_any_size(translator):
    x = torch.rand(3, 3, 45, 70) * 2 - 1
    y = translator(x)
    assert isinstance(y, torch.Tensor) and y.shape == (3, 3, 45, 70)
    assert y.min() >= -1 and y.max() <= 1
    assert translator(x[0]).shape == (3, 45, 70)


def test_pil_in_pil_out_same_size(translator):
    im = Image.fromarray(noise_image(50, 33))
    out = translator(im)
    assert isinstance(out, Image.Image) and out.size == (33, 50)
    outs = translator([im, Image.fromarray(noise_image(32, 32))])
    assert [o.size for o in outs] == [(33, 50), (32, 32)]


def test_native_size_pads_and_crops_back(translator):
    x = torch.rand(1, 3, 45, 70) * 2 - 1
    y = translator(x, native_size=True)
    assert y.shape == (1, 3, 45, 70)
    # at a size that is already a multiple of 2**depth, native mode is the plain forward pass
    z = torch.rand(1, 3, 64, 96) * 2 - 1
    with torch.no_grad():
        expected = translator.generator(z).clamp(-1, 1)
    torch.testing.assert_close(translator(z, native_size=True), expected)


def test_eval_mode_is_deterministic_and_paper_sampling_is_not(trained_run):
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    t = load(trained_run, device="cpu")
    assert torch.equal(t(x), t(x))
    p = load(trained_run, device="cpu", paper_sampling=True)
    a, b = p(x), p(x)
    assert not torch.equal(a, b)  # dropout is on
    assert not torch.equal(a, t(x))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in p.generator.modules())  # per-image norms


def _without_dropout(translator: Translator) -> torch.nn.Module:
    g = copy.deepcopy(translator.generator)
    for m in g.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    return g


def test_paper_sampling_gives_an_image_the_same_output_alone_and_among_others(reference):
    """The paper's test time is train mode on a batch of one: an image's result must not depend on
    the images it is batched with (here without dropout, so only the normalisation can differ)."""
    g = _without_dropout(reference)
    batch = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    paper = Translator(g, reference.config, paper_sampling=True, batch_size=8)
    together = paper(batch)
    for i in (0, 5):
        torch.testing.assert_close(paper(batch[i:i + 1])[0], together[i], atol=1e-5, rtol=0)
    # what the paper ran: train mode (batch statistics) on each image alone ...
    ref = copy.deepcopy(g).train()
    with torch.no_grad():
        alone = torch.cat([ref(batch[i:i + 1]) for i in range(8)]).clamp(-1, 1)
        pooled = ref(batch).clamp(-1, 1)  # ... not on all eight at once, which differs
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=0)
    assert (pooled - alone).abs().max() > 1e-2
    assert (together - reference(batch)).abs().max() > 1e-2  # and it is not eval mode either


def test_seeded_paper_sampling_is_per_image_and_independent_of_the_batch_size(trained_run):
    x = torch.rand(5, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    outs = {}
    for bs in (1, 2, 5):
        t = load(trained_run, device="cpu", paper_sampling=True, batch_size=bs, seed=7)
        outs[bs] = t(x)
    torch.testing.assert_close(outs[1], outs[2], atol=1e-5, rtol=0)
    torch.testing.assert_close(outs[1], outs[5], atol=1e-5, rtol=0)
    t = load(trained_run, device="cpu", paper_sampling=True, seed=7)
    t(x[:2])  # images 0 and 1
    later = t(x[:1])  # image 0 again, now as image 2 of the run: other noise
    assert (later[0] - outs[1][0]).abs().max() > 1e-3
    t.reseed(7)
    torch.testing.assert_close(t(x[:1])[0], outs[1][0], atol=1e-5, rtol=0)
    other = load(trained_run, device="cpu", paper_sampling=True, seed=8)(x)
    assert (other - outs[1]).abs().max() > 1e-3


def test_translate_folder_with_odd_sizes(tmp_path, translator):
    src = tmp_path / "in"
    src.mkdir()
    sizes = {"a": (17, 23), "b": (64, 40), "c": (1, 1)}
    for name, (h, w) in sizes.items():
        Image.fromarray(noise_image(h, w)).save(src / f"{name}.png")
    Image.fromarray(noise_image(31, 29)).save(src / "d.jpg")
    report = translate_files(translator, collect_inputs([str(src)]), tmp_path / "out", progress=False)
    assert report.written == 4 and not report.skipped
    for name, (h, w) in {**sizes, "d": (31, 29)}.items():
        assert Image.open(tmp_path / "out" / f"{name}.png").size == (w, h)
    native = translate_files(translator, collect_inputs([str(src)]), tmp_path / "native", native_size=True,
                             progress=False)
    assert native.written == 4
    assert Image.open(tmp_path / "native" / "b.png").size == (40, 64)


def test_side_by_side_and_paired_inputs(tmp_path, translator, synthetic_root):
    items = collect_inputs([str(synthetic_root / "val")], paired=True)
    assert [i.name for i in items] == ["0001", "0002", "0003", "0004"]
    translate_files(translator, items, tmp_path / "pairs", side_by_side=True, progress=False)
    im = Image.open(tmp_path / "pairs" / "0001.png")
    assert im.size == (3 * 32, 32)  # input | output | target
    # the left third is the model's input side of the pair (A: the label map)
    ab = np.asarray(Image.open(synthetic_root / "val" / "0001.png"))
    assert np.array_equal(np.asarray(im)[:, :32], ab[:, :32])
    translate_files(translator, collect_inputs([str(synthetic_root / "val" / "0001.png")]), tmp_path / "single",
                    side_by_side=True, progress=False)
    assert Image.open(tmp_path / "single" / "0001.png").size == (2 * 64, 32)  # input | output


def test_glob_inputs_and_repeated_names(tmp_path, translator):
    for sub in ("x", "y"):
        (tmp_path / sub).mkdir()
        Image.fromarray(noise_image(32, 32)).save(tmp_path / sub / "same.png")
    items = collect_inputs([str(tmp_path / "*" / "same.png")])
    assert len(items) == 2
    report = translate_files(translator, items, tmp_path / "out", progress=False)
    assert sorted(p.name for p in report.outputs) == ["same.png", "same_2.png"]
    with pytest.raises(DataError, match="nothing-here: no such file or folder"):
        collect_inputs([str(tmp_path / "nothing-here")])


def test_unreadable_inputs_are_skipped_or_stop_when_strict(tmp_path, translator):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(noise_image(32, 32)).save(src / "good.png")
    (src / "bad.png").write_text("not an image")
    report = translate_files(translator, collect_inputs([str(src)]), tmp_path / "out", progress=False)
    assert report.written == 1 and len(report.skipped) == 1 and "bad.png" in report.skipped[0]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.png"]
    with pytest.raises(DataError, match=r"bad\.png: not an image"):
        translate_files(translator, collect_inputs([str(src)]), tmp_path / "strict", strict=True, progress=False)


def test_load_is_the_public_entry_point(trained_run):
    t = load(trained_run, device="cpu")
    assert t.image_size == 32 and t.config.model.netG == "unet_32"


@pytest.mark.parametrize("how", ["same-folder", "symlinked-folder", "hard-link"])
def test_a_result_that_would_overwrite_an_input_is_refused_before_any_work(tmp_path, translator, how):

    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("a", "b"):
        Image.fromarray(noise_image(32, 32, ord(name))).save(photos / f"{name}.png")
    before = {p.name: p.read_bytes() for p in photos.iterdir()}
    out = photos
    if how == "symlinked-folder":
        out = tmp_path / "out"
        out.symlink_to(photos)
    elif how == "hard-link":
        out = tmp_path / "out"
        out.mkdir()
        (out / "b.png").hardlink_to(photos / "b.png")
    with pytest.raises(OutputError, match=r"[ab]\.png: this result would overwrite the input .*[ab]\.png"):
        translate_files(translator, collect_inputs([str(photos)]), out, progress=False)
    assert {p.name: p.read_bytes() for p in photos.iterdir()} == before  # nothing written, not even a.png
    # JPEG inputs give PNG results: the same folder is then fine
    jpgs = tmp_path / "jpgs"
    jpgs.mkdir()
    Image.fromarray(noise_image(32, 32, 1)).save(jpgs / "c.jpg")
    assert translate_files(translator, collect_inputs([str(jpgs)]), jpgs, progress=False).written == 1
