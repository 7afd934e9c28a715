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
    t = load(path, device="cpu", trust_program=True)
    assert t.kind == ("checkpoint" if name == "run folder" else name) and not t.paper_sampling
    x = torch.rand(3, 3, 64, 96, generator=torch.Generator().manual_seed(1)) * 2 - 1  # batch 3, two sizes off
    torch.testing.assert_close(t(x, native_size=True), reference(x, native_size=True), atol=tolerance, rtol=0)
    odd = Image.fromarray(noise_image(45, 70))  # resized to the training size and back
    a, b = np.asarray(t(odd), dtype=int), np.asarray(reference(odd), dtype=int)
    assert a.shape == (45, 70, 3) and np.abs(a - b).max() <= (0 if tolerance == 0 else 1)


def test_the_config_travels_inside_the_file(model_file, reference):
    _, path, _ = model_file
    t = load(path, device="cpu", trust_program=True)
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
        load(damaged, device="cpu", trust_program=True)
    message = str(e.value)
    assert str(target if path.is_dir() else damaged) in message and "\n" not in message
    assert "Traceback" not in message


class FileWriter(torch.nn.Module):
    """A 'generator' whose forward pass overwrites a file: TorchScript's operators can do that."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        written = torch.from_file(self.path, shared=True, size=6, dtype=torch.uint8).fill_(33)
        return x + written[:1].float() * 0  # (used, so the write is not optimised away)


@pytest.mark.parametrize("suffix", [".pt2", ".ts"])
def test_programs_need_trust_program_and_are_not_read_without_it(exported, trained_run, synthetic_root, tmp_path,
                                                                 capsys, monkeypatch, suffix):
    path = exported["dir"] / f"generator{suffix}"

    def never(*args, **kwargs):
        raise AssertionError("the program was read without --trust-program")

    monkeypatch.setattr(torch.export, "load", never)
    monkeypatch.setattr(torch.jit, "load", never)
    with pytest.raises(CheckpointError, match=rf"generator\{suffix}: not opened: .*trust_program=True"):
        load(path, device="cpu")
    from pix2pix.cli import main

    val = str(synthetic_root / "val")
    for argv in (["translate", "--checkpoint", str(path), "--input", val, "--output", str(tmp_path / "o")],
                 ["serve", "--checkpoint", str(path), "--port", "0"],
                 ["evaluate", "--task", "generic", "--checkpoint", str(path), "--data", str(synthetic_root)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {path}: not opened") and "--trust-program" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()
    monkeypatch.undo()
    assert load(path, device="cpu", trust_program=True).kind == FORMATS[detect_kind(path)].kind


def test_why_torchscript_is_not_safe_from_a_stranger(exported, tmp_path):
    """Not a pickle, but its operators reach the file system: a .ts file that overwrites a file when run."""
    extra = {"pix2pix.json": ""}
    torch.jit.load(str(exported["dir"] / "generator.ts"), _extra_files=extra)
    victim = tmp_path / "precious.txt"
    victim.write_bytes(b"secret")
    evil = tmp_path / "evil.ts"
    torch.jit.save(torch.jit.script(FileWriter(str(victim))), str(evil), _extra_files=extra)
    with pytest.raises(CheckpointError, match="can read and overwrite any file"):
        load(evil, device="cpu")
    assert victim.read_bytes() == b"secret"
    t = load(evil, device="cpu", trust_program=True)  # trusted by mistake:
    t(torch.zeros(1, 3, 32, 32))
    assert victim.read_bytes() == b"!!!!!!"
