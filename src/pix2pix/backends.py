"""Runnable generators from every kind of file pix2pix writes: the reading side of ``export.py``.

    opened = open_model("runs/facades")          # a run folder or training checkpoint (.pt)
    opened = open_model("generator.safetensors") # weights + config, rebuilt as a torch module
    opened = open_model("generator.onnx")        # onnxruntime session   (pip install 'pix2pix[export]')
    opened = open_model("generator.pt2")         # torch.export program   (plain torch)
    opened = open_model("generator.ts")          # TorchScript program    (plain torch)
    y = opened.generator(x)   # (B, input_nc, H, W) float32 in [-1, 1] -> (B, output_nc, H, W)

Every file carries the training config as one JSON document (see :func:`export_metadata`): in the
safetensors header's metadata, as ONNX metadata_props, or as the extra file ``pix2pix.json`` inside
the TorchScript / ``.pt2`` archive. So ``Translator`` knows the model's size, channels and direction
whatever the file kind.

Weights (checkpoint, safetensors) rebuild an ``nn.Module``, which can run in eval mode or with the
paper's sampling. Exported programs (``.ts``, ``.pt2``, ``.onnx``) are :class:`Program` objects whose
mode was fixed at export time (``program.paper_sampling``). Readers take a path or the file's bytes,
so the exporter verifies exactly what it is about to write, through the same code as ``translate``.
"""

from __future__ import annotations

import io
import json
import os
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Union

import torch

from .checkpoint import checkpoint_config, load_checkpoint, load_weights, resolve_checkpoint
from .config import TrainConfig
from .errors import CheckpointError, missing_extra
from .models import build_generator

EXPORT_FORMAT = "pix2pix-export"
EXPORT_VERSION = 1
META_KEY = "pix2pix"  # safetensors metadata / ONNX metadata_props key
META_FILE = "pix2pix.json"  # extra file inside TorchScript and torch.export archives
# file kind -> suffix; anything else (a run folder, a .pt file) is read as a training checkpoint
SUFFIXES = {"safetensors": ".safetensors", "torchscript": ".ts", "torch-export": ".pt2", "onnx": ".onnx"}
MODES = ("eval", "paper_sampling")

Source = Union[Path, bytes]


@dataclass
class Opened:
    """What a model file holds: something to call, the config that trained it, and what it says."""

    generator: Callable[[torch.Tensor], torch.Tensor]  # nn.Module (weights) or Program
    config: TrainConfig
    kind: str  # "checkpoint" or a key of SUFFIXES
    device: torch.device
    meta: dict[str, Any] = field(default_factory=dict)


class Program:
    """An exported generator: (B, C, H, W) float32 in [-1, 1] -> float32 in [-1, 1] on x's device.

    H and W must be multiples of ``2 ** depth`` (the Translator pads or resizes to them); the batch
    size is free. Mode and precision are fixed in the file (``paper_sampling``, ``meta["dtype"]``).
    """

    def __init__(self, kind: str, meta: dict[str, Any], device: torch.device):
        self.kind = kind
        self.meta = meta
        self.paper_sampling = meta.get("mode") == "paper_sampling"
        self.device = device

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class TorchProgram(Program):
    """A TorchScript module or a torch.export program (``ExportedProgram.module()``)."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], kind: str, meta: dict[str, Any],
                 device: torch.device):
        super().__init__(kind, meta, device)
        self.fn = fn

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x.to(self.device, torch.float32))


class OnnxProgram(Program):
    """An onnxruntime session; CUDA when asked for and available, else the CPU."""

    def __init__(self, source: Source, name: str, meta: dict[str, Any], device: torch.device):
        super().__init__("onnx", meta, device)
        import numpy as np

        ort = import_onnxruntime()
        available = ort.get_available_providers()
        providers = ["CPUExecutionProvider"]
        if device.type == "cuda" and "CUDAExecutionProvider" in available:
            providers.insert(0, "CUDAExecutionProvider")
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only
        try:
            self.session = ort.InferenceSession(source if isinstance(source, bytes) else str(source), options,
                                                providers=providers)
        except Exception as e:  # InvalidGraph, InvalidProtobuf, NotImplemented ...
            raise CheckpointError(f"{name}: onnxruntime cannot load this model ({_first_line(e)})") from None
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.input_dtype = np.float16 if inp.type == "tensor(float16)" else np.float32

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        arr = x.detach().to("cpu", torch.float32).numpy().astype(self.input_dtype, copy=False)
        (y,) = self.session.run(None, {self.input_name: arr})
        return torch.from_numpy(y).to(device=x.device, dtype=torch.float32)


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError as e:
        raise missing_extra("running .onnx models", "export", e) from None
    return onnxruntime


# ----- metadata ---------------------------------------------------------------------------------
def export_metadata(config: TrainConfig, kind: str, *, mode: str = "eval", dtype: str = "float32",
                    source: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON document every exported file carries.

    ``input``/``output`` describe the tensor contract for users of other runtimes: NCHW float32,
    values in [-1, 1], sides a multiple of ``multiple``, trained at ``size`` x ``size``.
    """
    from . import __version__

    m = config.model
    return {
        "format": EXPORT_FORMAT, "version": EXPORT_VERSION, "kind": kind, "mode": mode, "dtype": dtype,
        "config": config.to_dict(),
        "input": {"name": "input", "layout": "NCHW", "channels": m.input_nc, "range": [-1.0, 1.0],
                  "multiple": m.multiple, "size": config.data.image_size or config.data.crop_size,
                  "direction": config.data.direction},
        "output": {"name": "output", "layout": "NCHW", "channels": m.output_nc, "range": [-1.0, 1.0]},
        "source": source or {}, "pix2pix": __version__, "torch": torch.__version__.split("+")[0],
    }


def parse_metadata(text: str | bytes | None, name: str, kind: str) -> tuple[TrainConfig, dict[str, Any]]:
    """Validate an exported file's JSON document; errors name the file."""
    if not text:
        raise CheckpointError(f"{name}: this {kind} file was not exported by pix2pix (it has no "
                              f"'{META_KEY}' metadata with the model config)")
    try:
        meta = json.loads(text)
    except ValueError as e:
        raise CheckpointError(f"{name}: its pix2pix metadata is not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != EXPORT_FORMAT:
        raise CheckpointError(f"{name}: not a pix2pix generator export (no '{EXPORT_FORMAT}' marker)")
    if int(meta.get("version", 0)) > EXPORT_VERSION:
        raise CheckpointError(f"{name}: written by a newer pix2pix (export version {meta['version']})")
    if meta.get("mode", "eval") not in MODES:
        raise CheckpointError(f"{name}: unknown mode {meta.get('mode')!r} in its metadata")
    return TrainConfig.from_dict(meta["config"]), meta


# ----- readers ----------------------------------------------------------------------------------
def read_checkpoint(path: Path, device: torch.device) -> Opened:
    state = load_checkpoint(path, map_location="cpu", require=("config", "generator"))
    file = resolve_checkpoint(path)
    cfg = checkpoint_config(state, file)
    g = build_generator(cfg.model)
    load_weights(g, state["generator"], "generator", file)
    meta = {"mode": "eval", "dtype": "float32",
            "source": {"file": file.name, "epoch": state.get("epoch"), "step": state.get("step")}}
    return Opened(g.to(device), cfg, "checkpoint", device, meta)


def read_safetensors(source: Source, name: str, device: torch.device) -> Opened:
    """Weights + config; fp16 files are cast back to float32 (the network computes in fp32)."""
    from safetensors.torch import load as load_tensors

    data = _read_bytes(source, name)
    try:
        header_len = struct.unpack("<Q", data[:8])[0]
        header = json.loads(data[8:8 + header_len])
        tensors = load_tensors(data)
    except Exception as e:  # struct.error, JSON errors, SafetensorError
        raise CheckpointError(f"{name}: not a readable safetensors file ({_first_line(e)})") from None
    cfg, meta = parse_metadata((header.get("__metadata__") or {}).get(META_KEY), name, "safetensors")
    g = build_generator(cfg.model)
    weights = {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}
    load_weights(g, weights, "generator", name)
    return Opened(g.to(device), cfg, "safetensors", device, meta)


def read_torchscript(source: Source, name: str, device: torch.device) -> Opened:
    extra = {META_FILE: ""}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated upstream
            fn = torch.jit.load(_stream(source), map_location=device, _extra_files=extra)
    except Exception as e:  # RuntimeError from the archive reader
        raise CheckpointError(f"{name}: not a readable TorchScript file ({_first_line(e)})") from None
    cfg, meta = parse_metadata(extra[META_FILE], name, "TorchScript")
    return Opened(TorchProgram(fn, "torchscript", meta, device), cfg, "torchscript", device, meta)


def read_torch_export(source: Source, name: str, device: torch.device) -> Opened:
    extra = {META_FILE: ""}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # pytree deprecations inside torch.export.load
            program = torch.export.load(_stream(source), extra_files=extra)
    except Exception as e:
        raise CheckpointError(f"{name}: not a readable torch.export (.pt2) file ({_first_line(e)})") from None
    cfg, meta = parse_metadata(extra[META_FILE], name, "torch.export")
    fn = program.module()
    if device.type != "cpu":
        fn = fn.to(device)
    return Opened(TorchProgram(fn, "torch-export", meta, device), cfg, "torch-export", device, meta)


def read_onnx(source: Source, name: str, device: torch.device) -> Opened:
    program = OnnxProgram(source, name, {}, device)
    text = program.session.get_modelmeta().custom_metadata_map.get(META_KEY)
    cfg, meta = parse_metadata(text, name, "ONNX")
    program.meta, program.paper_sampling = meta, meta.get("mode") == "paper_sampling"
    return Opened(program, cfg, "onnx", device, meta)


READERS: dict[str, Callable[[Source, str, torch.device], Opened]] = {
    "safetensors": read_safetensors, "torchscript": read_torchscript, "torch-export": read_torch_export,
    "onnx": read_onnx,
}


def kind_of(path: str | os.PathLike) -> str:
    """The file kind by suffix: a key of SUFFIXES, or "checkpoint" for anything else."""
    suffix = Path(path).suffix.lower()
    return next((k for k, s in SUFFIXES.items() if s == suffix), "checkpoint")


def open_model(path: str | os.PathLike, device: torch.device | str = "cpu") -> Opened:
    """Open a run folder, training checkpoint or exported file (kind by suffix, see SUFFIXES)."""
    path, device = Path(path), torch.device(device)
    kind = kind_of(path)
    if kind == "checkpoint":
        return read_checkpoint(path, device)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    return READERS[kind](path, str(path), device)


def read_bytes(kind: str, data: bytes, name: str, device: torch.device | str = "cpu") -> Opened:
    """Open an exported file from its bytes (used to verify an export before it is written)."""
    return READERS[kind](data, name, torch.device(device))


def _read_bytes(source: Source, name: str) -> bytes:
    if isinstance(source, bytes):
        return source
    try:
        return source.read_bytes()
    except OSError as e:
        raise CheckpointError(f"{name}: cannot read file ({e.strerror or e})") from None


def _stream(source: Source) -> io.BytesIO | str:
    return io.BytesIO(source) if isinstance(source, bytes) else str(source)


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__
