"""``.pt2``: a ``torch.export`` program (``torch.export.load``, AOTInductor), mode fixed at export.

Loading one unpickles parts of it, so a ``.pt2`` file can run code: open only files you trust."""

from __future__ import annotations

import io
import json
import warnings

import torch
import torch.nn as nn

from ...config import TrainConfig
from ...errors import CheckpointError
from .common import (Opened, Source, TorchProgram, dynamic_shapes, example_input, exporting, first_line,
                     min_blocks, stream)
from .metadata import META_FILE, parse_metadata


def read(source: Source, name: str, device: torch.device) -> Opened:
    extra = {META_FILE: ""}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # pytree deprecations inside torch.export.load
            program = torch.export.load(stream(source), extra_files=extra)
    except Exception as e:
        raise CheckpointError(f"{name}: not a readable torch.export (.pt2) file ({first_line(e)})") from None
    cfg, meta = parse_metadata(extra[META_FILE], name, "torch.export")
    fn = program.module()
    if device.type != "cpu":
        fn = fn.to(device)
    return Opened(TorchProgram(fn, meta, device), cfg, "torch-export", device, meta)


def write(module: nn.Module, cfg: TrainConfig, meta: dict, half: bool, opset: int | None) -> bytes:
    with exporting():
        program = torch.export.export(module, (example_input(cfg, 2, 2),),
                                      dynamic_shapes=dynamic_shapes(cfg.model.multiple, min_blocks(cfg)))
        buf = io.BytesIO()
        torch.export.save(program, buf, extra_files={META_FILE: json.dumps(meta)})
    return buf.getvalue()
