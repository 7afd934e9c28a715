"""Hugging Face folders: ``config.json`` + ``model.safetensors`` + ``README.md`` (the model card).

    pix2pix export --checkpoint runs/facades --format pretrained --output facades-pix2pix/
    translator.save_pretrained("facades-pix2pix")      # the same folder from Python
    pix2pix.load("facades-pix2pix")                     # reads it back, same outputs

``config.json`` is the training config (``TrainConfig.to_dict()``, the same dict as a run's
``config.json``) plus one key, ``pix2pix``, holding the export metadata every exported file carries
(format marker, version, the tensor contract, mode, where it came from). ``model.safetensors`` is
the generator's weights, exactly as ``--format safetensors`` writes them (so it also opens alone).
A run folder is a folder too: it has ``latest.pt``; this one has ``config.json`` + ``model.safetensors``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ...config import TrainConfig
from ...errors import CheckpointError, OutputError
from ...fileio import atomic_write_bytes
from . import safetensors as safetensors_format
from .common import Opened, Source, first_line
from .metadata import META_KEY, parse_metadata

CONFIG, WEIGHTS, CARD = "config.json", "model.safetensors", "README.md"


def is_pretrained_folder(path: str | os.PathLike) -> bool:
    path = Path(path)
    return (path / CONFIG).is_file() and (path / WEIGHTS).is_file()


def read(source: Source, name: str, device: torch.device) -> Opened:
    """A folder; or the bytes of its ``model.safetensors`` (how the exporter verifies one)."""
    if isinstance(source, bytes):
        opened = safetensors_format.read(source, name, device)
        opened.kind = "pretrained"
        return opened
    folder = Path(source)
    try:
        doc = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{folder / CONFIG}: not readable as JSON ({first_line(e)})") from None
    if not isinstance(doc, dict):
        raise CheckpointError(f"{folder / CONFIG}: expected a JSON object")
    meta = doc.pop(META_KEY, None)
    if isinstance(meta, dict):
        meta = {**meta, "config": doc}
    cfg, meta = parse_metadata(json.dumps(meta) if isinstance(meta, dict) else None, str(folder / CONFIG),
                               "Hugging Face config.json")
    weights = folder / WEIGHTS
    opened = safetensors_format.read(weights, str(weights), device, config=cfg)
    return Opened(opened.generator, cfg, "pretrained", device, meta)


def write(module: nn.Module, cfg: TrainConfig, meta: dict, half: bool, opset: int | None) -> bytes:
    """The ``model.safetensors`` bytes (verified before :func:`write_folder` puts the folder in place)."""
    return safetensors_format.write(module, cfg, meta, half, opset)


def config_json(cfg: TrainConfig, meta: dict[str, Any]) -> str:
    return json.dumps({**cfg.to_dict(), META_KEY: {k: v for k, v in meta.items() if k != "config"}}, indent=2) + "\n"


def write_folder(folder: str | os.PathLike, weights: bytes, cfg: TrainConfig, meta: dict[str, Any], card: str) -> Path:
    """Write the three files into a fresh folder beside ``folder`` and rename it into place, so a
    reader sees the old folder or the complete new one. An existing ``folder`` must be empty or a
    Hugging Face folder (which is replaced); anything else is refused."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not is_pretrained_folder(folder):
        raise OutputError(f"{folder}: exists and is not empty; give a new or empty folder (or one written "
                          "by save_pretrained, which is replaced)")
    parent = folder.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=parent))
    except OSError as e:
        raise OutputError(f"cannot create {folder}: {e.strerror or e}") from None
    try:
        atomic_write_bytes(tmp / WEIGHTS, weights)
        atomic_write_bytes(tmp / CONFIG, config_json(cfg, meta).encode())
        atomic_write_bytes(tmp / CARD, card.encode())
        os.chmod(tmp, 0o777 & ~_umask())
        old = None
        if folder.exists():
            old = parent / f".{folder.name}.old-{os.getpid()}"
            os.rename(folder, old)
        os.rename(tmp, folder)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise OutputError(f"could not write {folder}: {e.strerror or e}") from None
    return folder


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
