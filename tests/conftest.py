"""Shared fixtures: tiny synthetic datasets and tiny configs, all generated inside the tests."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pix2pix.config import TrainConfig
from pix2pix.data.synthetic import make_synthetic_dataset

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """Tests (and the processes they start) keep decoded pairs in a temporary cache folder, never
    in the user's."""
    os.environ["PIX2PIX_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield Path(os.environ["PIX2PIX_CACHE"])


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module (``pytestmark = pytest.mark.usefixtures("one_thread")``): tiny
    models gain nothing from two, and on a shared 2-core machine two threads per process made
    training runs up to ten times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True, scope="session")
def no_inception_download(tmp_path_factory):
    """Tests never download the 91 MB FID weights, nor find a real copy in the user's caches: torch's
    hub folder points to an empty temporary one and a download fails as it does offline."""
    from pix2pix.errors import DownloadError
    from pix2pix.evaluate import inception

    old_env = {k: os.environ.get(k) for k in ("TORCH_HOME",)}  # (PIX2PIX_CACHE: private_cache)
    for key in old_env:
        os.environ[key] = str(tmp_path_factory.mktemp(key.lower()))
    old_download = inception.download_weights

    def offline(progress: bool = True):
        raise DownloadError("downloads are off in the tests")

    inception.download_weights = offline
    yield
    inception.download_weights = old_download
    for key, value in old_env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


TINY = dict(netG="unet_32", ngf=8, ndf=8, load_size=36, crop_size=32, batch_size=2, epochs=1, precision="fp32",
            epochs_decay=0, log_every=2, sample_every=1000, save_every=1, n_samples=2, device="cpu")


def cli_flags(settings: dict) -> list[str]:
    """Config settings as ``pix2pix train`` flags: {"batch_size": 2} -> ["--batch-size", "2"]."""
    out = []
    for k, v in settings.items():
        out += ["--netG" if k == "netG" else f"--{k.replace('_', '-')}", str(v)]
    return out


@contextlib.contextmanager
def serving(server):
    """Run a socketserver-style ``server`` in a background thread for the block, then close it."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def tiny_config(data_root: Path, out: Path, **overrides) -> TrainConfig:
    """A model small enough to train a step in milliseconds (unet_32, ngf 8, 32x32 crops)."""
    return TrainConfig.from_flat({**TINY, "data_root": str(data_root), "out": str(out), **overrides})


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """16 train + 4 val side-by-side pairs of 32x32 (label map | rendering)."""
    return make_synthetic_dataset(tmp_path_factory.mktemp("synthetic"), n_train=16, n_val=4, size=32)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, synthetic_root) -> Path:
    """A run folder with a checkpoint from one short epoch."""
    from pix2pix.training import train

    out = tmp_path_factory.mktemp("run") / "run"
    train(tiny_config(synthetic_root, out), progress=False)
    return out


def noise_image(h: int, w: int, seed: int = 0, channels: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(h, w, channels), dtype=np.uint8)


def write_ab(path: Path, a: np.ndarray, b: np.ndarray, **save_kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate([a, b], axis=1)).save(path, **save_kw)
    return path


@pytest.fixture(scope="session")
def exported(tmp_path_factory, trained_run) -> dict:
    """Every export format in eval mode, written through the CLI, with the verification JSON, and the
    Hugging Face folder beside them (needs the export extra: the tests that use it skip without it)."""
    from pix2pix.cli import main

    out = tmp_path_factory.mktemp("export")
    report = out / "export.json"
    assert main(["export", "--checkpoint", str(trained_run), "--format", "all", "--output", str(out / "all"),
                 "--json", str(report)]) == 0
    assert main(["export", "--checkpoint", str(trained_run), "--format", "pretrained",
                 "--output", str(out / "pretrained")]) == 0  # a Hugging Face folder
    return {"dir": out / "all", "pretrained": out / "pretrained", "report": json.loads(report.read_text())}


@pytest.fixture(scope="session")
def reference(trained_run):
    """The trained run's generator as a Translator: what every model file must reproduce."""
    from pix2pix import load

    return load(trained_run, device="cpu")


def reference_fixture_dir() -> Path | None:
    """``shared/fixtures/reference`` beside the repository or a folder above it (CI has ``../shared``):
    generators written by the reference implementation itself (never committed here)."""
    for folder in Path(__file__).resolve().parents[1:]:
        candidate = folder / "shared" / "fixtures" / "reference"
        if candidate.is_dir():
            return candidate
    return None


@pytest.fixture(scope="session")
def reference_files() -> Path:
    """The folder of the reference's own files: NAME/latest_net_G.pth, input.npy, output_eval.npy, options.json."""
    folder = reference_fixture_dir()
    if folder is None:
        pytest.skip("the reference implementation's fixtures (../shared/fixtures/reference) are not here")
    return folder
