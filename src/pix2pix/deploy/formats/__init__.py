"""Every kind of model file, one module each: how to read it (and, for export formats, write it).

    opened = open_model("runs/facades")          # a run folder or training checkpoint (.pt)
    opened = open_model("generator.safetensors") # weights + config, rebuilt as a torch module
    opened = open_model("generator.onnx")        # onnxruntime session   (pip install 'pix2pix[export]')
    opened = open_model("generator.pt2")         # torch.export program   (plain torch)
    opened = open_model("generator.ts")          # TorchScript program    (plain torch)
    opened = open_model("facades-pix2pix/")      # Hugging Face folder: config.json + model.safetensors
    opened = open_model("latest_net_G.pth")      # the reference implementation's generator state_dict
    opened = open_model("facades_label2photo")   # a pretrained generator, after pix2pix download --model
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
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ...errors import CheckpointError
from ...training.checkpoint import FORMAT as CHECKPOINT_MARKER
from ...training.run_folder import RunFolder
from . import checkpoint, onnx, pretrained, reference, safetensors, torch_export, torchscript
from .common import Opened, Program, Source


@dataclass(frozen=True)
class Format:
    """One kind of model file: its suffix, its reader, and its writer if it is an export format."""

    kind: str
    suffix: str | None  # None: a folder, or found by content (checkpoint vs reference .pth: detect_kind)
    read: Callable[[Source, str, torch.device], Opened]
    write: Callable[..., bytes] | None = None
    half: bool = False  # --half supported
    folder: bool = False  # written as a folder (pretrained.write_folder), not one file
    runs_code: str | None = None  # why opening a stranger's file is unsafe (needs trust_program); None: safe


FORMATS: dict[str, Format] = {f.kind: f for f in (
    Format("checkpoint", None, checkpoint.read),
    Format("safetensors", ".safetensors", safetensors.read, safetensors.write, half=True),
    Format("torchscript", ".ts", torchscript.read, torchscript.write,
           runs_code="a TorchScript program can read and overwrite any file this process may when it runs"),
    Format("torch-export", ".pt2", torch_export.read, torch_export.write,
           runs_code="loading a .pt2 file unpickles Python objects, which can run any code"),
    Format("onnx", ".onnx", onnx.read, onnx.write, half=True),
    Format("pretrained", None, pretrained.read, pretrained.write, half=True, folder=True),
    Format("reference", ".pth", reference.read),
)}
EXPORT_FORMATS = tuple(k for k, f in FORMATS.items() if f.write is not None)
FILE_FORMATS = tuple(k for k in EXPORT_FORMATS if not FORMATS[k].folder)  # what --format all writes
SUFFIXES = {k: f.suffix for k, f in FORMATS.items() if f.suffix and f.write}  # export suffixes


def kind_of(path: str | os.PathLike) -> str:
    """The export kind a name asks for by its suffix ("checkpoint" for a folder or any other suffix)."""
    suffix = Path(path).suffix.lower()
    return next((k for k, s in SUFFIXES.items() if s == suffix), "checkpoint")


def detect_kind(path: Path) -> str:
    """The kind of an existing model file or folder, by what it holds.

    A folder with ``latest.pt`` is a run folder, one with ``config.json`` + ``model.safetensors`` a
    Hugging Face folder. An export suffix names its kind. Any other file is a torch file: ours
    carries the ``pix2pix-checkpoint`` marker in its pickle (read without unpickling), so a ``.pth``
    or ``.pt`` without it is taken for the reference implementation's state_dict, and a file too
    damaged to tell goes by its suffix (``.pth``: reference; else checkpoint).
    """
    if path.is_dir():
        if not RunFolder.is_run_folder(path) and pretrained.is_pretrained_folder(path):
            return "pretrained"
        return "checkpoint"
    kind = kind_of(path)
    if kind != "checkpoint":
        return kind
    try:
        with open(path, "rb") as f:
            head = f.read(4)
        if head.startswith(b"PK"):
            with zipfile.ZipFile(path) as z:
                pickles = [n for n in z.namelist() if n.endswith("data.pkl")]
                ours = bool(pickles) and CHECKPOINT_MARKER.encode() in z.read(pickles[0])
            return "checkpoint" if ours else "reference"
        if head[:1] == b"\x80":  # a pickle in torch's legacy format (torch < 1.6): never one of ours
            return "reference"
    except (OSError, zipfile.BadZipFile, KeyError):
        pass
    return "reference" if path.suffix.lower() == ".pth" else "checkpoint"


def open_model(path: str | os.PathLike, device: torch.device | str = "cpu", *, trust_program: bool = False) -> Opened:
    """Open any model: a run folder, a training checkpoint, an exported file, a Hugging Face folder,
    a reference ``*_net_G.pth``, or the name of a downloaded pretrained generator. A ``.pt2`` or
    ``.ts`` program is refused, before a byte of it is read, unless ``trust_program`` (see the module
    docstring)."""
    from ..registry import resolve_name

    path, device = Path(path), torch.device(device)
    if not path.exists():
        path = resolve_name(str(path)) or path
    if path.is_dir() and not RunFolder.is_run_folder(path) and not pretrained.is_pretrained_folder(path) \
            and not (path / RunFolder.CONFIG).is_file():
        raise CheckpointError(f"{path}: neither a run folder (no {RunFolder.LATEST}) nor a Hugging Face folder "
                              f"(no {pretrained.CONFIG} + {pretrained.WEIGHTS})")
    kind = detect_kind(path)
    if kind not in ("checkpoint", "pretrained") and not path.is_file():
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


__all__ = ["FORMATS", "EXPORT_FORMATS", "FILE_FORMATS", "SUFFIXES", "Format", "Opened", "Program", "kind_of",
           "detect_kind", "open_model", "read_bytes"]
