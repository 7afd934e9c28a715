"""One tester run over every kind of model file ``pix2pix.load`` opens: each reproduces the training
checkpoint's outputs, carries its config, and a damaged copy is one clear error naming the file.

A new model-file kind (``deploy/formats/``) gets its row in KINDS and passes the same checks.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import noise_image
from pix2pix import load
from pix2pix.deploy.formats import FORMATS, detect_kind
from pix2pix.errors import CheckpointError

pytest.importorskip("onnxruntime", reason="the export extra is not installed (pip install -e '.[export]')")
pytest.importorskip("onnxscript", reason="the export extra is not installed (pip install -e '.[export]')")

# kind -> (how to find the file, largest allowed difference from the checkpoint)
KINDS = {
    "run folder": (lambda run, exp: run, 0.0),
    "checkpoint": (lambda run, exp: run / "latest.pt", 0.0),
    "safetensors": (lambda run, exp: exp / "generator.safetensors", 0.0),
    "torchscript": (lambda run, exp: exp / "generator.ts", 1e-5),
    "torch-export": (lambda run, exp: exp / "generator.pt2", 1e-5),
    "onnx": (lambda run, exp: exp / "generator.onnx", 1e-4),
    "pretrained": (lambda run, exp: exp.parent / "pretrained", 0.0),  # a Hugging Face folder
}


@pytest.fixture(params=list(KINDS))
def model_file(request, trained_run, exported) -> tuple[str, Path, float]:
    find, tolerance = KINDS[request.param]
    return request.param, find(trained_run, exported["dir"]), tolerance


def test_every_registered_kind_is_tested(trained_run, exported):
    tested = {detect_kind(find(trained_run, exported["dir"])) for find, _ in KINDS.values()}
    # the reference's .pth files carry no config to travel (it is assumed): tests/deploy/test_reference.py
    assert set(FORMATS) - {"reference"} <= tested


def test_outputs_match_the_checkpoint(model_file, reference):
    name, path, tolerance = model_file
    t = load(path, device="cpu")
    assert t.kind == ("checkpoint" if name == "run folder" else name) and not t.paper_sampling
    x = torch.rand(3, 3, 64, 96, generator=torch.Generator().manual_seed(1)) * 2 - 1  # batch 3, two sizes off
    torch.testing.assert_close(t(x, native_size=True), reference(x, native_size=True), atol=tolerance, rtol=0)
    odd = Image.fromarray(noise_image(45, 70))  # resized to the training size and back
    a, b = np.asarray(t(odd), dtype=int), np.asarray(reference(odd), dtype=int)
    assert a.shape == (45, 70, 3) and np.abs(a - b).max() <= (0 if tolerance == 0 else 1)


def test_the_config_travels_inside_the_file(model_file, reference):
    _, path, _ = model_file
    t = load(path, device="cpu")
    assert t.config == reference.config
    assert t.image_size == 32 and t.multiple == 32 and t.input_channels == 3


def test_a_damaged_file_is_one_clear_error_naming_it(model_file, tmp_path):
    name, path, _ = model_file
    if path.is_dir():  # a run folder whose checkpoint is damaged, a Hugging Face folder whose weights are
        damaged = tmp_path / "run"
        shutil.copytree(path, damaged)
        target = damaged / ("latest.pt" if (path / "latest.pt").exists() else "model.safetensors")
    else:
        damaged = target = tmp_path / f"damaged{path.suffix}"
        shutil.copy(path, damaged)
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as e:
        load(damaged, device="cpu")
    message = str(e.value)
    assert str(target if path.is_dir() else damaged) in message and "\n" not in message
    assert "Traceback" not in message
