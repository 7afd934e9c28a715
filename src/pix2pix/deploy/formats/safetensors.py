"""``.safetensors``: generator weights + the config in the header's metadata (weights only, safe
to open from anyone; no mode: it runs in eval mode or with the paper's sampling)."""

from __future__ import annotations

import json
import struct

import torch
import torch.nn as nn

from ...config import TrainConfig
from ...errors import CheckpointError, ConfigError
from ...models import build_generator
from ...models.size import check_fits
from ...training.checkpoint import load_weights
from .common import Opened, Source, first_line, read_source
from .metadata import META_KEY, parse_metadata


def read(source: Source, name: str, device: torch.device, config: TrainConfig | None = None) -> Opened:
    """Weights + config; fp16 files are cast back to float32 (the network computes in fp32).
    ``config``: the config kept beside the file (a Hugging Face folder's config.json) instead of its own."""
    from safetensors.torch import load as load_tensors

    data = read_source(source, name)
    try:
        header_len = struct.unpack("<Q", data[:8])[0]
        header = json.loads(data[8:8 + header_len])
        tensors = load_tensors(data)
    except Exception as e:  # struct.error, JSON errors, SafetensorError
        raise CheckpointError(f"{name}: not a readable safetensors file ({first_line(e)})") from None
    if config is not None:
        cfg, meta = config, {}
    else:
        cfg, meta = parse_metadata((header.get("__metadata__") or {}).get(META_KEY), name, "safetensors")
    try:
        check_fits(cfg.model, device, training=False, source=name)
    except ConfigError as e:
        raise CheckpointError(str(e)) from None
    g = build_generator(cfg.model)
    weights = {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}
    load_weights(g, weights, "generator", name)
    return Opened(g.to(device), cfg, "safetensors", device, meta)


def write(module: nn.Module, cfg: TrainConfig, meta: dict, half: bool, opset: int | None) -> bytes:
    from safetensors.torch import save

    def prepare(t: torch.Tensor) -> torch.Tensor:
        t = t.detach().cpu().contiguous()
        return t.half() if half and t.is_floating_point() else t

    tensors = {k: prepare(v) for k, v in module.state_dict().items()}
    return save(tensors, metadata={META_KEY: json.dumps(meta)})
