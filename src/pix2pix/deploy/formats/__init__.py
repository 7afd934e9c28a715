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


FORMATS: dict[str, Format] = {f.kind: f for f in (
    Format("checkpoint", None, checkpoint.read),
    Format("safetensors", ".safetensors", safetensors.read, safetensors.write, half=True),
    Format("torchscript", ".ts", torchscript.read, torchscript.write),
    Format("torch-export", ".pt2", torch_export.read, torch_export.write),
    Format("onnx", ".onnx", onnx.read, onnx.write, half=True),
)}
EXPORT_FORMATS = tuple(k for k, f in FORMATS.items() if f.write is not None)
SUFFIXES = {k: f.suffix for k, f in FORMATS.items() if f.suffix}


def kind_of(path: str | os.PathLike) -> str:
    """The file kind by suffix: a key of FORMATS ("checkpoint" for a folder or any other suffix)."""
    suffix = Path(path).suffix.lower()
    return next((k for k, s in SUFFIXES.items() if s == suffix), "checkpoint")


def open_model(path: str | os.PathLike, device: torch.device | str = "cpu") -> Opened:
    """Open a run folder, training checkpoint or exported file (kind by suffix)."""
    path, device = Path(path), torch.device(device)
    kind = kind_of(path)
    if kind != "checkpoint" and not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    return FORMATS[kind].read(path, str(path), device)


def read_bytes(kind: str, data: bytes, name: str, device: torch.device | str = "cpu") -> Opened:
    """Open an exported file from its bytes (used to verify an export before it is written)."""
    return FORMATS[kind].read(data, name, torch.device(device))


__all__ = ["FORMATS", "EXPORT_FORMATS", "SUFFIXES", "Format", "Opened", "Program", "kind_of", "open_model",
           "read_bytes"]
