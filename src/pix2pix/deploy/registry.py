"""Pretrained generators by name: the reference implementation's released pix2pix models.

    pix2pix download --model facades_label2photo            # fetched, checked, converted, cached
    pix2pix translate --checkpoint facades_label2photo --input labels/ --output out/
    pix2pix download --model sat2map --from ~/Downloads/sat2map.pth   # a file fetched elsewhere

The names and the address pattern are those of the reference's ``scripts/download_pix2pix_model.sh``.
A download goes through the datasets' resumable fetch (``NAME.pth.part``, HTTP Range) into
``CACHE/models/``; the file is then opened as a reference generator (``weights_only``: no code
runs; every tensor checked against the layout), converted once to our ``NAME.safetensors`` (weights
+ config, with the direction the model was trained for) and the ``.pth`` is deleted. After that the
name works wherever a model is accepted (:func:`resolve_name`), with no network.

Checksums: no SHA-256 of these files is published, so none can be enforced on the first download.
The SHA-256 of each file is recorded on first use in ``CACHE/models/sha256.json``; a later download
or ``--from FILE`` of the same name must match it. ``PIX2PIX_MODELS_URL`` replaces the server (a
mirror, or a local server in the tests). ``CACHE`` is :func:`~pix2pix.fileio.user_cache_dir`.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..data.download import ServerUnreachable, fetch, sha256_file
from ..errors import CheckpointError, ConfigError, DownloadError
from ..fileio import atomic_write_bytes, save_json, user_cache_dir

log = logging.getLogger("pix2pix")

BASE_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch"
BASE_URL_ENV = "PIX2PIX_MODELS_URL"


@dataclass(frozen=True)
class PretrainedModel:
    """One released generator: what it translates, and the dataset layout it was trained on."""

    name: str
    dataset: str  # the paper's dataset (``pix2pix download DATASET``)
    direction: str  # AtoB or BtoA on that dataset's pairs
    task: str

    def url(self) -> str:
        return f"{(os.environ.get(BASE_URL_ENV) or BASE_URL).rstrip('/')}/{self.name}.pth"


MODELS: dict[str, PretrainedModel] = {m.name: m for m in (
    PretrainedModel("facades_label2photo", "facades", "BtoA", "architectural label map -> facade photo"),
    PretrainedModel("sat2map", "maps", "AtoB", "aerial photo -> map"),
    PretrainedModel("map2sat", "maps", "BtoA", "map -> aerial photo"),
    PretrainedModel("edges2shoes", "edges2shoes", "AtoB", "edge map -> shoe photo"),
    PretrainedModel("day2night", "night2day", "BtoA", "day photo -> night photo"),
)}


def models_dir() -> Path:
    return user_cache_dir() / "models"


def cached_path(name: str) -> Path:
    return models_dir() / f"{name}.safetensors"


def resolve_name(name: str) -> Path | None:
    """The cached file of a pretrained model's name; None if ``name`` is no such name."""
    if name not in MODELS:
        return None
    path = cached_path(name)
    if not path.is_file():
        raise CheckpointError(f"{name}: this pretrained model is not downloaded yet; run: pix2pix download "
                              f"--model {name} (it is then cached in {models_dir()})")
    return path


def recorded_hashes() -> dict[str, dict]:
    path = models_dir() / "sha256.json"
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        log.warning("%s is unreadable; starting a new record of model checksums", path)
        return {}


def install_model(name: str, *, from_file: str | os.PathLike | None = None, url: str | None = None,
                  progress: bool = True) -> Path:
    """Download (or take ``from_file``), check and convert pretrained model ``name``; returns the
    cached ``.safetensors``. Already installed: nothing to do (delete the file to fetch it again)."""
    from .formats import reference, safetensors
    from .formats.metadata import export_metadata

    if name not in MODELS:
        raise ConfigError(f"unknown pretrained model {name!r}; known models: {', '.join(MODELS)}")
    model, target = MODELS[name], cached_path(name)
    if target.is_file() and from_file is None:
        log.info("%s is already installed: %s", name, target)
        return target
    models_dir().mkdir(parents=True, exist_ok=True)
    address = url or model.url()
    if from_file is not None:
        raw, ours = Path(from_file), False
        if not raw.is_file():
            raise CheckpointError(f"{raw}: no such file")
    else:
        raw, ours = models_dir() / f"{name}.pth", True
        if not raw.is_file():
            try:
                fetch(address, raw, progress=progress)
            except ServerUnreachable as e:
                raise DownloadError(f"{e}. Fetch {address} some other way and install it with: pix2pix download "
                                    f"--model {name} --from FILE") from None
    digest = _check_hash(name, raw, address, sha256_file(raw, progress=progress), delete=ours)
    try:
        opened = reference.read(raw, str(raw), torch.device("cpu"), direction=model.direction)
    except CheckpointError:
        if ours:
            raw.unlink()
            log.warning("the downloaded %s was deleted", raw)
        raise
    source = {"file": raw.name, "url": address, "sha256": digest, "format": "reference implementation state_dict",
              "pretrained": name, "task": model.task, "dataset": model.dataset}
    meta = export_metadata(opened.config, "safetensors", source=source)
    atomic_write_bytes(target, safetensors.write(opened.generator, opened.config, meta, False, None))
    if ours:
        raw.unlink()
    log.info("installed %s (%s, %s) in %s; use it with --checkpoint %s", name, model.task,
             opened.config.model.netG, target, name)
    return target


def _check_hash(name: str, raw: Path, address: str, digest: str, delete: bool) -> str:
    """Record the SHA-256 of the first file seen for ``name``; later ones must match it."""
    record = recorded_hashes()
    known = record.get(name, {}).get("sha256")
    if known is None:
        record[name] = {"sha256": digest, "url": address, "recorded": time.strftime("%Y-%m-%d")}
        save_json(record, models_dir() / "sha256.json")
        log.info("%s: SHA-256 %s recorded on first use (no published checksum exists to compare it with)",
                 raw, digest)
    elif known != digest:
        if delete:
            raw.unlink()
        raise DownloadError(f"{raw}: SHA-256 {digest} differs from {known}, recorded for {name} on "
                            f"{record[name].get('recorded', 'first use')}; the file changed or is damaged"
                            + ("; it was deleted" if delete else "") + f" (remove {name} from "
                            f"{models_dir() / 'sha256.json'} to accept a new file)")
    return digest


def describe_models() -> str:
    """A table for ``pix2pix download --list``."""
    record = recorded_hashes()
    rows = [f"{'model':<20} {'dataset':<12} {'direction':<10} {'task':<40} installed"]
    for m in MODELS.values():
        state = "yes" if cached_path(m.name).is_file() else "no"
        rows.append(f"{m.name:<20} {m.dataset:<12} {m.direction:<10} {m.task:<40} {state}"
                    + (f" (sha256 {record[m.name]['sha256'][:12]}...)" if m.name in record else ""))
    return "\n".join(rows) + f"\nserver: {os.environ.get(BASE_URL_ENV) or BASE_URL} (set {BASE_URL_ENV} for a mirror)"
