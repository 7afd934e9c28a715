"""Every kind of model file, one module each: how to read it (and, for export formats, write it).

    opened = open_model("runs/facades")          # a run folder or training checkpoint (.pt)
    opened = open_model("generator.safetensors") # weights + config, rebuilt as a torch module
    opened = open_model("generator.onnx")        # onnxruntime session   (pip install 'pix2pix[export]')
    opened = open_model("generator.pt2")         # torch.export program   (plain torch)
    opened = open_model("generator.ts")          # TorchScript program    (plain torch)
    y = opened.generator(x)   # (B, input_nc, H, W) float32 in [-1, 1] -> (B, output_nc, H, W)

A new kind of model file is a new module here with ``read(source, name, device) -> Opened`` (and
``write(module, cfg, meta, half, opset) -> bytes`` if it is an export format), plus one line in
:data:`FORMATS`. Weights (checkpoint, safetensors) rebuild an ``nn.Module``, which can run in eval
mode or with the paper's sampling; exported programs (``.ts``, ``.pt2``, ``.onnx``) are
:class:`Program` objects whose mode was fixed at export time. Readers take a path or the file's
bytes, so the exporter verifies exactly what it is about to write, through the same code as
``translate``.

Safety: a checkpoint is read with ``torch.load(weights_only=True)``, a safetensors file holds only
tensors and text, and an ONNX graph is run by onnxruntime with its standard operators only: those
may come from a stranger. The two torch programs may not: loading a ``.pt2`` unpickles Python
objects (which can run any code), and a TorchScript program's operators can read and overwrite any
file the process may (``torch.from_file(..., shared=True)``). :func:`open_model` opens them only with
``trust_program=True`` (``--trust-program``); the exporter verifying its own bytes needs no opt-in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ...errors import CheckpointError
from . import checkpoint, onnx, safetensors, torch_export, torchscript
from .common import Opened, Program, Source


@dataclass(frozen=True)
class Format:
    """One kind of model file: its suffix, its reader, and its writer if it is an export format."""

    kind: str
    suffix: str | None  # None: a run folder or any other file (our training checkpoint)
    read: Callable[[Source, str, torch.device], Opened]
    write: Callable[..., bytes] | None = None
    half: bool = False  # --half supported
    runs_code: str | None = None  # why opening a stranger's file is unsafe (needs trust_program); None: safe


FORMATS: dict[str, Format] = {f.kind: f for f in (
    Format("checkpoint", None, checkpoint.read),
    Format("safetensors", ".safetensors", safetensors.read, safetensors.write, half=True),
    Format("torchscript", ".ts", torchscript.read, torchscript.write,
           runs_code="a TorchScript program can read and overwrite any file this process may when it runs"),
    Format("torch-export", ".pt2", torch_export.read, torch_export.write,
           runs_code="loading a .pt2 file unpickles Python objects, which can run any code"),
    Format("onnx", ".onnx", onnx.read, onnx.write, half=True),
)}
EXPORT_FORMATS = tuple(k for k, f in FORMATS.items() if f.write is not None)
SUFFIXES = {k: f.suffix for k, f in FORMATS.items() if f.suffix}


def kind_of(path: str | os.PathLike) -> str:
    """The file kind by suffix: a key of FORMATS ("checkpoint" for a folder or any other suffix)."""
    suffix = Path(path).suffix.lower()
    return next((k for k, s in SUFFIXES.items() if s == suffix), "checkpoint")


def open_model(path: str | os.PathLike, device: torch.device | str = "cpu", *, trust_program: bool = False) -> Opened:
    """Open a run folder, training checkpoint or exported file (kind by suffix). A ``.pt2`` or ``.ts``
    program is refused, before a byte of it is read, unless ``trust_program`` (see the module docstring)."""
    path, device = Path(path), torch.device(device)
    kind = kind_of(path)
    if kind != "checkpoint" and not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    risk = FORMATS[kind].runs_code
    if risk and not trust_program:
        raise CheckpointError(f"{path}: not opened: {risk}. Open it only if you trust where it came from, with "
                              "--trust-program (pix2pix.load(..., trust_program=True)); a checkpoint, .safetensors or "
                              ".onnx file is safe to open from anyone")
    return FORMATS[kind].read(path, str(path), device)


def read_bytes(kind: str, data: bytes, name: str, device: torch.device | str = "cpu") -> Opened:
    """Open an exported file from its bytes (used to verify an export before it is written)."""
    return FORMATS[kind].read(data, name, torch.device(device))


__all__ = ["FORMATS", "EXPORT_FORMATS", "SUFFIXES", "Format", "Opened", "Program", "kind_of", "open_model",
           "read_bytes"]
