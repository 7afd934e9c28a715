"""The reference implementation's generator files, opened with no options: its own files (the
shared fixtures) give its own eval-mode outputs, every file variant it writes is read, anything
else is refused in one line, and such a file goes everywhere a model goes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from conftest import noise_image
from pix2pix import load
from pix2pix.cli import main
from pix2pix.deploy.formats import detect_kind
from pix2pix.deploy.formats.reference_keys import infer_layout, key_table
from pix2pix.errors import CheckpointError
from pix2pix.models import UNet
from reference_shapes import RefNLayerD, RefResnet, RefUnet, randomize

pytestmark = pytest.mark.usefixtures("one_thread")
TOL = 1e-5
FIXTURES = ["unet_64_batch_ngf8", "resnet_6blocks_batch_ngf8"]


def fixture(folder: Path, name: str):
    d = folder / name
    x, y = torch.from_numpy(np.load(d / "input.npy")), torch.from_numpy(np.load(d / "output_eval.npy"))
    return d / "latest_net_G.pth", x, y, json.loads((d / "options.json").read_text())


def run(generator, x):
    with torch.no_grad():
        return generator(x)


def diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


@pytest.mark.parametrize("name", FIXTURES)
def test_the_references_own_files_give_its_own_outputs(reference_files, name):
    path, x, y, opts = fixture(reference_files, name)
    t = load(path, device="cpu")
    m = t.config.model
    assert t.kind == "reference" and m.netG == opts["netG"]
    assert (m.ngf, m.norm, m.input_nc, m.output_nc) == (opts["ngf"], opts["norm"], opts["input_nc"], opts["output_nc"])
    assert (m.dropout > 0) == opts["dropout"]  # seen in a ResNet's keys; the reference's default for a U-Net
    assert diff(run(t.generator, x), y) <= TOL


@pytest.mark.parametrize("name", FIXTURES)
def test_files_without_num_batches_tracked_or_with_a_module_prefix(reference_files, name, tmp_path):
    path, x, y, _ = fixture(reference_files, name)
    sd = torch.load(path, weights_only=True)
    old = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}  # torch < 0.4.1
    assert len(old) < len(sd)
    torch.save(old, tmp_path / "old_net_G.pth")
    torch.save({"module." + k: v for k, v in sd.items()}, tmp_path / "dp_net_G.pth")  # DataParallel
    for file, note in (("old_net_G.pth", "num_batches_tracked"), ("dp_net_G.pth", "'module.' prefix")):
        t = load(tmp_path / file, device="cpu")
        assert diff(run(t.generator, x), y) <= TOL
        assert any(note in n for n in t.meta["source"]["notes"])  # both fixtures use batch norm


VARIANTS = {  # name -> the reference-shaped network, and an input
    "unet instance 1->3": (lambda: RefUnet(1, 3, 6, 4, "instance"), (2, 1, 64, 64)),
    "unet none": (lambda: RefUnet(3, 3, 5, 4, "none"), (1, 3, 32, 32)),
    "unet batch 3->1": (lambda: RefUnet(3, 1, 7, 2, "batch"), (1, 3, 128, 128)),
    "unet old instance with running stats": (lambda: RefUnet(3, 3, 5, 4, "instance", tracked=True), (1, 3, 32, 32)),
    "resnet_9blocks instance": (lambda: RefResnet(3, 3, 4, 9, "instance"), (2, 3, 32, 32)),
    "resnet none dropout": (lambda: RefResnet(3, 1, 4, 2, "none", dropout=True), (1, 3, 36, 28)),
    "resnet old instance with running stats": (lambda: RefResnet(1, 3, 4, 2, "instance", tracked=True), (1, 1, 32, 32)),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_variant_the_reference_writes(variant, tmp_path):
    make, shape = VARIANTS[variant]
    ref = randomize(make(), seed=len(variant))
    torch.save(ref.state_dict(), tmp_path / "latest_net_G.pth")
    t = load(tmp_path / "latest_net_G.pth", device="cpu")
    if "old instance" in variant:  # the current reference drops those statistics on load: so do we
        assert t.config.model.norm == "instance" and any("running statistics" in n for n in t.meta["source"]["notes"])
        for m in ref.modules():
            if isinstance(m, nn.InstanceNorm2d):
                m.track_running_stats = False
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert diff(run(t.generator, x), run(ref.eval(), x)) <= TOL
    expected_norm = next(n for n in ("instance", "none", "batch") if n in variant)
    assert t.config.model.norm == expected_norm


def train_mode_forward(net: nn.Module, x: torch.Tensor, seed: int) -> torch.Tensor:
    """What the reference's test.py runs without --eval: batch statistics, dropout sampled."""
    torch.manual_seed(seed)
    with torch.no_grad():
        return net.train()(x)


def test_dropout_sits_where_the_reference_puts_it(reference_files):
    path, x, _, _ = fixture(reference_files, "unet_64_batch_ngf8")
    ref = RefUnet(3, 3, 6, 8, "batch")
    ref.load_state_dict(torch.load(path, weights_only=True))
    t = load(path, device="cpu")
    assert t.config.model.dropout_placement == "reference"
    assert [j for j, u in enumerate(t.generator.ups) if isinstance(u.dropout, nn.Dropout)] == [1]
    assert diff(train_mode_forward(t.generator, x, 3), train_mode_forward(ref, x, 3)) <= TOL
    ours = UNet(3, 3, depth=6, ngf=8)  # the paper's placement: the three innermost blocks
    ours.load_state_dict(t.generator.state_dict())
    assert diff(train_mode_forward(ours, x, 3), train_mode_forward(ref, x, 3)) > 1e-3


def test_resnet_dropout_is_read_from_the_keys(reference_files):
    path, x, _, _ = fixture(reference_files, "resnet_6blocks_batch_ngf8")
    ref = RefResnet(3, 3, 8, 6, "batch", dropout=True)
    ref.load_state_dict(torch.load(path, weights_only=True))
    t = load(path, device="cpu")
    assert diff(train_mode_forward(t.generator, x, 5), train_mode_forward(ref, x, 5)) <= TOL
    assert infer_layout(RefResnet(3, 3, 4, 2, dropout=False).state_dict()).dropout is False


def test_key_names_match_the_documented_table(reference_files):
    table = key_table(infer_layout(torch.load(reference_files / FIXTURES[0] / "latest_net_G.pth", weights_only=True)))
    assert table["model.model.0"] == "downs.0.conv" and table["model.model.3"] == "out.conv"
    assert table["model.model.1.model.5"] == "ups.4.conv"
    assert table["model.model.1.model.3.model.3.model.3.model.3.model.3"] == "ups.0.conv"
    table = key_table(infer_layout(torch.load(reference_files / FIXTURES[1] / "latest_net_G.pth", weights_only=True)))
    assert (table["model.10.conv_block.6"], table["model.23"]) == ("blocks.0.conv2", "head.conv")


REFUSED = {  # what is saved -> what the one line says
    "discriminator": (lambda: RefNLayerD().state_dict(), "PatchGAN discriminator"),
    "pickled model": (lambda: RefUnet(3, 3, 5, 2), "not a plain state_dict"),
    "wrapped checkpoint": (lambda: {"epoch": 3, "state_dict": RefUnet(3, 3, 5, 2).state_dict()}, "not a plain state_dict"),
    "other network": (lambda: nn.Linear(3, 3).state_dict(), "neither a pix2pix checkpoint .* nor a generator"),
    "missing tensor": (lambda: {k: v for k, v in RefUnet(3, 3, 6, 2).state_dict().items()
                                if k != "model.model.1.model.5.weight"}, "model.model.1.model.5.weight"),
    "extra tensor": (lambda: {**RefResnet(3, 3, 4, 1).state_dict(), "model.99.weight": torch.zeros(1)}, "do not fit"),
    "wrong shape": (lambda: {**RefResnet(3, 3, 4, 1).state_dict(), "model.4.weight": torch.zeros(9, 4, 3, 3)},
                    "model.4.weight has shape"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_anything_else_is_one_clear_line(case, tmp_path, capsys):
    make, words = REFUSED[case]
    path = tmp_path / "latest_net_G.pth"
    torch.save(make(), path)
    with pytest.raises(CheckpointError, match=words) as e:
        load(path, device="cpu")
    assert str(path) in str(e.value) and "\n" not in str(e.value)
    assert main(["translate", "--checkpoint", str(path), "--input", str(path), "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_our_checkpoint_named_pth_is_still_ours(trained_run, reference, tmp_path):
    copy = tmp_path / "mine.pth"
    copy.write_bytes((trained_run / "latest.pt").read_bytes())
    assert detect_kind(copy) == "checkpoint"
    t = load(copy, device="cpu")
    assert t.kind == "checkpoint" and t.config == reference.config


def test_a_reference_file_goes_everywhere_with_no_options(reference_files, tmp_path):
    """translate, export to ONNX, serve, and a Hugging Face folder, from a *_net_G.pth alone."""
    path, x, y, _ = fixture(reference_files, "unet_64_batch_ngf8")
    images = tmp_path / "in"
    images.mkdir()
    Image.fromarray(noise_image(64, 64)).save(images / "a.png")
    assert main(["translate", "--checkpoint", str(path), "--input", str(images), "--output", str(tmp_path / "out")]) == 0
    want = np.asarray(load(path, device="cpu")(Image.open(images / "a.png")))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "a.png")), want)

    assert main(["export", "--checkpoint", str(path), "--format", "pretrained", "--output", str(tmp_path / "hf")]) == 0
    hf = load(tmp_path / "hf", device="cpu")
    assert hf.kind == "pretrained" and diff(run(hf.generator, x), y) <= TOL
    assert "reference implementation" in (tmp_path / "hf" / "README.md").read_text()

    pytest.importorskip("onnxruntime", reason="the export extra is not installed")
    pytest.importorskip("onnxscript", reason="the export extra is not installed")
    assert main(["export", "--checkpoint", str(path), "--output", str(tmp_path / "g.onnx")]) == 0
    assert diff(load(tmp_path / "g.onnx", device="cpu").generator(x), y) <= 1e-4

    pytest.importorskip("fastapi", reason="the serve extra is not installed")
    import httpx

    from pix2pix.deploy.serve import create_app, running

    with running(create_app(load(path, device="cpu"))) as url:
        r = httpx.post(f"{url}/translate", files={"file": ("a.png", (images / "a.png").read_bytes(), "image/png")},
                       timeout=60)
        info = httpx.get(f"{url}/info", timeout=60).json()
    assert r.status_code == 200 and np.array_equal(np.asarray(Image.open(__import__("io").BytesIO(r.content))), want)
    assert info["backend"] == "reference"
