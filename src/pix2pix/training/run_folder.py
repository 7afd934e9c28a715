"""A training run's folder: the one owner of its layout and of every file in it.

    RUN/config.json               the resolved TrainConfig (written when the run starts)
    RUN/latest.pt                 the newest checkpoint (atomic; what --resume continues)
    RUN/checkpoints/epoch_NNNN.pt numbered checkpoints (hard links to latest.pt where possible)
    RUN/losses.jsonl              one JSON record per log point (mean losses, lr, images/s)
    RUN/samples/step_NNNNNNNN.png sample grids: input | output | target
    RUN/curves.png                the loss curves, redrawn with each sample grid
    RUN/index.html                the run page (settings, latest losses, curves, samples)
    RUN/tensorboard/              with --tensorboard
    RUN/.lock                     held by the training process writing here (see ownership.py)

Every write is atomic (a temporary file renamed into place) and a failed write is one
:class:`~pix2pix.errors.OutputError` that says whether a checkpoint is safe.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any, Iterator

from PIL import Image

from ..errors import CheckpointError, OutputError
from ..fileio import atomic_write_bytes, remove_stale_temporaries, save_image, save_json
from .ownership import hold_lock, present, refuse_or_clear

log = logging.getLogger("pix2pix")
_SAMPLE = re.compile(r"step_(\d+)\.png$")


class RunFolder:
    """Paths and files of one run folder (see the module docstring for the layout)."""

    CONFIG, LATEST, LOSSES, CURVES, PAGE = "config.json", "latest.pt", "losses.jsonl", "curves.png", "index.html"

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    # ----- paths --------------------------------------------------------------------------------
    @property
    def config(self) -> Path:
        return self.path / self.CONFIG

    @property
    def latest(self) -> Path:
        return self.path / self.LATEST

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def losses(self) -> Path:
        return self.path / self.LOSSES

    @property
    def samples(self) -> Path:
        return self.path / "samples"

    @property
    def curves(self) -> Path:
        return self.path / self.CURVES

    @property
    def page(self) -> Path:
        return self.path / self.PAGE

    @property
    def tensorboard(self) -> Path:
        return self.path / "tensorboard"

    def numbered(self, epoch: int) -> Path:
        return self.checkpoints / f"epoch_{epoch:04d}.pt"

    def sample(self, step: int) -> Path:
        return self.samples / f"step_{step:08d}.png"

    @staticmethod
    def is_run_folder(path: str | os.PathLike) -> bool:
        return (Path(path) / RunFolder.LATEST).is_file()

    def has_checkpoint(self) -> bool:
        return self.latest.is_file()

    def numbered_checkpoints(self) -> list[Path]:
        """The numbered checkpoints, oldest first."""
        return sorted(self.checkpoints.glob("epoch_*.pt"))

    def sample_grids(self) -> list[tuple[int, Path]]:
        """(step, path) of every sample grid, newest first."""
        found = ((int(m.group(1)), p) for p in self.samples.glob("step_*.png") if (m := _SAMPLE.search(p.name)))
        return sorted(found, reverse=True)

    def exclusive(self, create: bool = True) -> contextlib.AbstractContextManager[None]:
        """Hold ``RUN/.lock`` (rank 0 trains inside it); a second process stops at once naming the holder."""
        return hold_lock(self.path, create)

    def previous_run(self) -> list[Path]:
        """The files that make this folder another run's: latest.pt, checkpoints/, losses.jsonl, samples/."""
        return present([self.latest, self.checkpoints, self.losses, self.samples])

    def same_settings(self, config: dict[str, Any]) -> bool:
        """True when ``config.json`` holds exactly ``config`` (a start of these settings was here)."""
        try:
            return json.loads(self.config.read_text()) == json.loads(json.dumps(config))
        except (OSError, ValueError):
            return False

    def check_new_run(self, overwrite: bool = False) -> None:
        """Refuse a new run over :meth:`previous_run`; ``overwrite`` removes the layout's files, nothing else."""
        refuse_or_clear(self.path, self.previous_run(), [self.latest, self.checkpoints, self.losses, self.samples,
                                                         self.curves, self.page, self.config, self.tensorboard], overwrite)

    # ----- starting (and who may write here: ownership.py) -------------------------------------
    def prepare(self) -> None:
        """Create the folder, check it is writable before any work is done, and remove temporary
        files a killed process left behind."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            probe = self.path / ".write-test"
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as e:
            raise CheckpointError(f"run folder {self.path} is not writable: {e.strerror or e}") from None
        remove_stale_temporaries(self.path)
        if self.checkpoints.is_dir():
            remove_stale_temporaries(self.checkpoints)

    def check_free_space(self, checkpoint_bytes: int, numbered: int) -> None:
        """Refuse to start when the folder cannot hold even one checkpoint; warn when it cannot hold
        the ``numbered`` copies this run will keep (plus latest.pt and the one being written)."""
        check_free_space(self.path, checkpoint_bytes, numbered)

    def write_config(self, config: dict[str, Any]) -> None:
        with self.writing(self.config):
            save_json(config, self.config)

    # ----- checkpoints --------------------------------------------------------------------------
    def write_checkpoint(self, data: bytes, numbered_epoch: int | None = None) -> Path:
        """Atomically replace ``latest.pt`` with ``data``; with ``numbered_epoch`` also keep it as
        ``checkpoints/epoch_NNNN.pt`` (a hard link: no second write)."""
        try:
            atomic_write_bytes(self.latest, data)
        except OSError as e:
            raise CheckpointError(f"could not write checkpoint {self.latest}: {e.strerror or e}; the previous "
                                  "checkpoint is unchanged") from None
        if numbered_epoch is not None:
            keep_copy(self.latest, self.numbered(numbered_epoch))
        return self.latest

    # ----- the loss log -------------------------------------------------------------------------
    def append_losses(self, record: dict[str, Any]) -> None:
        with self.writing(self.losses), open(self.losses, "a") as f:
            f.write(json.dumps(record) + "\n")

    def trim_losses(self, step: int) -> int:
        """Keep the whole lines of ``losses.jsonl`` up to ``step`` (the checkpoint being resumed).

        A run killed after its last checkpoint logged steps the resumed run will do again, and may
        have left half a line. Returns the number of lines dropped; the file is rewritten atomically.
        """
        with self.writing(self.losses):
            return trim_loss_log(self.losses, step)

    def read_losses(self) -> list[dict]:
        """Records of ``losses.jsonl`` in step order; when a step appears twice (a run resumed from an
        earlier checkpoint logs it again) the later line wins. Unreadable lines are skipped."""
        return read_loss_log(self.losses)

    # ----- pictures and the page ----------------------------------------------------------------
    def write_sample(self, grid: Image.Image, step: int) -> Path:
        path = self.sample(step)
        with self.writing(path):
            self.samples.mkdir(exist_ok=True)
            save_image(grid, path)
        return path

    def refresh_page(self) -> None:
        """Redraw ``curves.png`` from the loss log and rewrite ``index.html``. A failure here (a full
        disk, a broken matplotlib) is logged as a warning and never stops training."""
        try:
            records = self.read_losses()
            if records:
                from ..pictures import plot_loss_curves

                plot_loss_curves(records, self.curves)
            self.write_page(records)
        except Exception as e:  # reporting must never end a long training run
            log.warning("could not refresh %s: %s: %s", self.page, type(e).__name__, e)

    def write_page(self, records: list[dict] | None = None) -> Path:
        """``index.html``: the run's settings, its latest losses, ``curves.png`` and every sample
        grid, newest first. Only reads the folder; cheap enough to call often."""
        from ..pages import run_page

        records = self.read_losses() if records is None else records
        try:
            settings = json.loads(self.config.read_text())
        except (OSError, ValueError):
            settings = None
        samples = [(step, f"samples/{p.name}") for step, p in self.sample_grids()]
        text = run_page(self.path.name, settings, records, samples, self.CURVES if self.curves.exists() else None)
        atomic_write_bytes(self.page, text.encode())
        return self.page

    def tensorboard_writer(self):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            from ..errors import missing_extra

            raise missing_extra("--tensorboard", "tensorboard", ImportError(name="tensorboard")) from None
        return SummaryWriter(str(self.tensorboard))

    # ----- failures -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def writing(self, path: Path) -> Iterator[None]:
        """Turn a failed write of a log or sample file into one error that says whether the
        checkpoint is safe."""
        try:
            yield
        except OSError as e:
            kept = (f"the last checkpoint {self.latest} is complete" if self.has_checkpoint()
                    else "no checkpoint was written yet")
            raise OutputError(f"could not write {path}: {e.strerror or e}; {kept}") from None


def check_free_space(path: Path, checkpoint_bytes: int, numbered: int) -> None:
    """See :meth:`RunFolder.check_free_space`."""
    try:
        free = shutil.disk_usage(path).free
    except OSError:
        return  # unknown: the first write will tell
    need_now = int(checkpoint_bytes * 1.1) + (16 << 20)  # one checkpoint, samples and logs
    if free < need_now:
        raise CheckpointError(
            f"run folder {path} has {free / 2**20:.0f} MB free, but needs at least {need_now / 2**20:.0f} "
            f"MB (a checkpoint of about {checkpoint_bytes / 2**20:.0f} MB, samples and logs); free some space "
            "or choose another --out")
    need_all = checkpoint_bytes * (numbered + 2)
    if free < need_all:
        log.warning("run folder %s has %.1f GB free; this run keeps %d numbered checkpoints of about %.2f GB "
                    "each (%.1f GB with latest.pt): it will stop with an error when the disk is full (raise "
                    "--save-every to keep fewer)", path, free / 2**30, numbered, checkpoint_bytes / 2**30,
                    need_all / 2**30)


def keep_copy(latest: Path, dst: Path) -> None:
    """``dst`` as a hard link to ``latest`` (no second write), or a copy where links fail."""
    tmp = dst.with_name(f".{dst.name}.link.tmp")
    try:
        dst.parent.mkdir(exist_ok=True)
        if tmp.exists():
            tmp.unlink()
        os.link(latest, tmp)
        os.replace(tmp, dst)
    except OSError:
        try:
            atomic_write_bytes(dst, latest.read_bytes())
        except OSError as e:
            raise CheckpointError(f"could not write checkpoint {dst}: {e.strerror or e}; {latest} is "
                                  "complete") from None


def trim_loss_log(path: Path, step: int) -> int:
    """Drop the lines of a ``losses.jsonl`` after ``step`` and any cut short (see
    :meth:`RunFolder.trim_losses`); returns how many were dropped."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return 0
    keep, dropped = [], 0
    for line in raw.split(b"\n"):
        if not line.strip():
            continue
        try:
            ok = int(json.loads(line)["step"]) <= step
        except (ValueError, KeyError, TypeError):
            ok = False  # a line cut short by the crash
        if ok:
            keep.append(line + b"\n")
        else:
            dropped += 1
    if dropped:
        atomic_write_bytes(path, b"".join(keep))
    return dropped


def read_loss_log(path: str | os.PathLike) -> list[dict]:
    """The records of a ``losses.jsonl`` file (see :meth:`RunFolder.read_losses`)."""
    by_step: dict[int, dict] = {}
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        return []
    for line in lines:
        try:
            rec = json.loads(line)
            by_step[int(rec["step"])] = rec
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by a crash
    return [by_step[s] for s in sorted(by_step)]
