"""``pix2pix quickstart``: the whole pipeline in about two minutes on a laptop CPU, no download.

The one module above the features: it chains data (synthetic pairs) -> training -> deploy
(translate), as a user would, and is imported only by the CLI.

1. writes a procedurally generated paired set (label maps -> shaded renderings, 64x64) to OUT/data;
2. trains a small U-Net (unet_64, ngf 32) + 70x70 PatchGAN on it into OUT/run;
3. translates the held-out validation label maps into OUT/translated (input | output | target).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from .config import TrainConfig
from .data.synthetic import make_synthetic_dataset
from .deploy import load
from .deploy.files import collect_inputs, translate_files
from .errors import ConfigError
from .fileio import check_writable
from .training import train

log = logging.getLogger("pix2pix")

# Measured on a 2-core CPU: about 2 minutes (see README).
QUICKSTART = dict(netG="unet_64", ngf=32, ndf=32, load_size=72, crop_size=64, batch_size=4,
                  epochs=10, epochs_decay=5, direction="AtoB", sample_every=200, log_every=20,
                  save_every=5, n_samples=6)


def quickstart(out: str | Path = "runs/quickstart", epochs: int | None = None, device: str = "auto",
               n_train: int = 400, n_val: int = 16, progress: bool = True) -> Path:
    """Run the three steps; returns OUT. An existing OUT/run is replaced (it is a demo)."""
    out = Path(out)
    data, run, results = out / "data", out / "run", out / "translated"
    if out.exists() and not (data.exists() or run.exists()) and any(out.iterdir()):
        raise ConfigError(f"{out} exists and is not a quickstart folder; choose another --out")
    check_writable(out, folder=True, what="--out folder")
    for folder in (data, run, results):
        shutil.rmtree(folder, ignore_errors=True)
    log.info("1/3 writing %d + %d synthetic pairs to %s", n_train, n_val, data)
    make_synthetic_dataset(data, n_train=n_train, n_val=n_val, size=64)

    settings = dict(QUICKSTART, data_root=str(data), out=str(run), device=device)
    if epochs is not None:
        settings.update(epochs=max(1, epochs - epochs // 3), epochs_decay=epochs // 3)
    cfg = TrainConfig.from_flat(settings)
    log.info("2/3 training %s for %d epochs into %s", cfg.model.netG, cfg.total_epochs, run)
    train(cfg, progress=progress)

    log.info("3/3 translating the held-out label maps into %s", results)
    translator = load(run, device=device)
    report = translate_files(translator, collect_inputs([str(data / "val")], paired=True), results,
                             side_by_side=True, progress=progress)
    log.info("done: %d results (input | output | target) in %s; sample grids in %s; checkpoint %s",
             report.written, results, run / "samples", run / "latest.pt")
    return out
