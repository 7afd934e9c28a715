"""The JSON document every exported file carries: the training config and the tensor contract.

It sits in the safetensors header's metadata, in ONNX ``metadata_props`` or as the extra file
``pix2pix.json`` inside a TorchScript / ``.pt2`` archive, so a reader knows the model's size,
channels and direction whatever the file kind.
"""

from __future__ import annotations

import json
from typing import Any

import torch

from ..._version import __version__
from ...config import TrainConfig
from ...errors import CheckpointError, Pix2PixError

EXPORT_FORMAT = "pix2pix-export"
EXPORT_VERSION = 1
META_KEY = "pix2pix"  # safetensors metadata / ONNX metadata_props key
META_FILE = "pix2pix.json"  # extra file inside TorchScript and torch.export archives
MODES = ("eval", "paper_sampling")


def export_metadata(config: TrainConfig, kind: str, *, mode: str = "eval", dtype: str = "float32",
                    source: dict[str, Any] | None = None) -> dict[str, Any]:
    """The document for a file of ``kind``. ``input``/``output`` describe the tensor contract for
    users of other runtimes: NCHW float32, values in [-1, 1], sides a multiple of ``multiple``,
    trained at ``size`` x ``size``."""
    m = config.model
    # paper sampling normalises each image by its own statistics; exports written before that
    # (no "statistics" key) used the batch's, and the Translator runs those one image at a time
    statistics = {"statistics": "per_image"} if mode == "paper_sampling" else {}
    return {
        "format": EXPORT_FORMAT, "version": EXPORT_VERSION, "kind": kind, "mode": mode, **statistics, "dtype": dtype,
        "config": config.to_dict(),
        "input": {"name": "input", "layout": "NCHW", "channels": m.input_nc, "range": [-1.0, 1.0],
                  "multiple": m.multiple, "size": config.data.model_size, "direction": config.data.direction},
        "output": {"name": "output", "layout": "NCHW", "channels": m.output_nc, "range": [-1.0, 1.0]},
        "source": source or {}, "pix2pix": __version__, "torch": torch.__version__.split("+")[0],
    }


def parse_metadata(text: str | bytes | None, name: str, kind: str) -> tuple[TrainConfig, dict[str, Any]]:
    """Validate an exported file's document (the config checked as a config file is); errors name
    the file."""
    if not text:
        raise CheckpointError(f"{name}: this {kind} file was not exported by pix2pix (it has no "
                              f"'{META_KEY}' metadata with the model config)")
    try:
        meta = json.loads(text)
    except ValueError as e:
        raise CheckpointError(f"{name}: its pix2pix metadata is not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != EXPORT_FORMAT:
        raise CheckpointError(f"{name}: not a pix2pix generator export (no '{EXPORT_FORMAT}' marker)")
    try:
        version = int(meta.get("version", 0))
    except (TypeError, ValueError):
        raise CheckpointError(f"{name}: its pix2pix metadata has an invalid version") from None
    if version > EXPORT_VERSION:
        raise CheckpointError(f"{name}: written by a newer pix2pix (export version {meta['version']})")
    if meta.get("mode", "eval") not in MODES:
        raise CheckpointError(f"{name}: unknown mode {meta.get('mode')!r} in its metadata")
    try:
        config = TrainConfig.from_dict(meta.get("config") or {}, source=name)
    except Pix2PixError as e:
        raise CheckpointError(f"{name}: the settings stored in this file cannot be used "
                              f"({str(e).removeprefix(f'{name}: ')})") from None
    return config, meta
