"""``.ts``: a TorchScript program (libtorch C++, plain ``torch.jit.load``), mode fixed at export."""

from __future__ import annotations

import io
import json
import warnings

import torch
import torch.nn as nn

from ...config import TrainConfig
from ...errors import CheckpointError
from .common import Opened, Source, TorchProgram, example_input, exporting, first_line, stream
from .metadata import META_FILE, parse_metadata


def read(source: Source, name: str, device: torch.device) -> Opened:
    extra = {META_FILE: ""}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated upstream
            fn = torch.jit.load(stream(source), map_location=device, _extra_files=extra)
    except Exception as e:  # RuntimeError from the archive reader
        raise CheckpointError(f"{name}: not a readable TorchScript file ({first_line(e)})") from None
    cfg, meta = parse_metadata(extra[META_FILE], name, "TorchScript")
    return Opened(TorchProgram(fn, meta, device), cfg, "torchscript", device, meta)


def write(module: nn.Module, cfg: TrainConfig, meta: dict, half: bool, opset: int | None) -> bytes:
    buf = io.BytesIO()
    with exporting():
        traced = torch.jit.trace(module, example_input(cfg, 1, 1), check_trace=False)
        torch.jit.save(traced, buf, _extra_files={META_FILE: json.dumps(meta)})
    return buf.getvalue()
