"""Training: the epoch loop around the pix2pix step (``steps.py``), resume, and the run folder.

    pix2pix train --data datasets/facades --preset facades --out runs/facades
    pix2pix train --resume runs/facades              # continue exactly where it stopped

From Python::

    from pix2pix import TrainConfig, train
    run_dir = train(TrainConfig.from_flat({"data_root": "datasets/facades", "preset": "facades"}))

The loop keeps the decoded dataset on the training device, jitters batches there, reads losses back
only every ``log_every`` steps, and writes into the run folder: ``config.json``, ``latest.pt``
(every epoch), ``checkpoints/epoch_NNNN.pt`` (every ``save_every`` epochs), ``losses.jsonl`` and
``samples/step_NNNNNNNN.png``. Under ``torchrun`` it trains with DistributedDataParallel: every
rank takes its shard of each epoch and only rank 0 writes.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from . import distributed as dist
from .checkpoint import (LATEST, RESUME_KEYS, check_free_space, checkpoint_config, link_or_copy, load_checkpoint,
                         load_weights, parameter_bytes, prepare_run_dir, run_folder_write, save_checkpoint,
                         trim_loss_log)
from .config import TrainConfig
from .data.augment import eval_transform
from .data.loader import BatchSource, load_datasets
from .devices import autocast, resolve_device
from .errors import CheckpointError, ConfigError
from .fileio import save_image, save_json
from .steps import LOSS_NAMES, Nets, NonFiniteLoss, _seed, build_nets, lr_factor, train_step  # (re-exported)

log = logging.getLogger("pix2pix")
# Options that may differ when a run is resumed; anything else must match the checkpoint.
RESUMABLE = {"epochs", "epochs_decay", "save_every", "latest_every", "sample_every", "log_every", "device", "time_limit",
             "n_samples", "skip_nonfinite", "compile", "tensorboard"}


class _StopFlag:
    """Set by SIGINT / SIGTERM; the loop finishes the current step, saves and exits cleanly."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> "_StopFlag":
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal is not None and signum == signal.SIGINT:  # second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.signal = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


@dataclass
class Progress:
    epoch: int = 0  # completed epochs
    step: int = 0  # optimisation steps taken
    batch_in_epoch: int = 0  # batches of the current epoch already done (mid-epoch stop)
    skipped: int = 0  # non-finite steps skipped


class Trainer:
    """One run: owns the run folder, the nets, the data and the loop. Use :func:`train`."""

    def __init__(self, cfg: TrainConfig, *, resume_state: dict[str, Any] | None = None, progress: bool = True):
        self.cfg = cfg
        self.run_dir = Path(cfg.out)
        self.device = dist.device_for_rank(resolve_device(cfg.device))
        self.main = dist.rank() == 0
        self.show = progress and self.main
        if self.main:
            prepare_run_dir(self.run_dir)
            save_json(cfg.to_dict(), self.run_dir / "config.json")
        train_data, self.samples = load_datasets(cfg, progress=self.show)
        self.source = BatchSource(train_data, cfg, self.device, dist.rank(), dist.world_size())
        self.nets = build_nets(cfg, self.device)
        if self.main:  # a full disk is found now rather than at the end of the first epoch
            check_free_space(self.run_dir, 3 * parameter_bytes(self.nets.G_plain, self.nets.D_plain),
                             numbered=cfg.total_epochs // cfg.save_every + 1)
        self.state = Progress()
        self._saved_step: int | None = None  # step of the checkpoint in latest.pt, for messages
        self.loss_log = self.run_dir / "losses.jsonl"
        self._resume_rng: dict[str, Any] | None = None
        self._last_save = time.monotonic()
        if resume_state is not None:
            self._restore(resume_state)
        if self.main:  # steps after the checkpoint (a run killed since) are done again: drop their log lines
            dropped = trim_loss_log(self.loss_log, self.state.step)
            if dropped:
                log.info("removed %d lines of %s %s", dropped, self.loss_log,
                         f"written after the checkpoint (step {self.state.step})" if resume_state is not None
                         else "left by an earlier start that wrote no checkpoint")
        if self.main:
            log.info("training %s on %d pairs (%s), %d batches/epoch, device %s, precision %s%s",
                     cfg.model.netG, len(train_data), cfg.data.direction, self.source.batches_per_epoch,
                     self.device, self.nets.precision, f", {dist.world_size()} processes" if dist.world_size() > 1 else "")

    # ----- checkpoint state ---------------------------------------------------------------------
    def _state_dict(self, data_gen: torch.Generator) -> dict[str, Any]:
        rng = {"torch": torch.get_rng_state(), "data": data_gen.get_state().cpu()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        all_rng = dist.gather_objects(rng)  # one entry per rank
        n = self.nets
        return {
            "config": self.cfg.to_dict(),
            "generator": n.G_plain.state_dict(),
            "discriminator": n.D_plain.state_dict(),
            "opt_G": n.opt_G.state_dict(),
            "opt_D": n.opt_D.state_dict(),
            "scaler": n.scaler.state_dict(),
            "epoch": self.state.epoch,
            "step": self.state.step,
            "batch_in_epoch": self.state.batch_in_epoch,
            "skipped": self.state.skipped,
            "rng": all_rng,
            "world_size": dist.world_size(),
        }

    def _restore(self, state: dict[str, Any]) -> None:
        n, file = self.nets, self.run_dir / LATEST
        load_weights(n.G_plain, state["generator"], "generator", file)
        load_weights(n.D_plain, state["discriminator"], "discriminator", file)
        try:
            n.opt_G.load_state_dict(state["opt_G"])
            n.opt_D.load_state_dict(state["opt_D"])
            if state.get("scaler"):
                n.scaler.load_state_dict(state["scaler"])
        except (KeyError, ValueError, RuntimeError, TypeError) as e:
            raise CheckpointError(f"{file}: the optimiser state does not fit the networks ({e})") from None
        self.state = Progress(state["epoch"], state["step"], state["batch_in_epoch"], state.get("skipped", 0))
        self._saved_step = state["step"]
        rngs = state.get("rng") or []
        if state.get("batch_in_epoch") and state.get("world_size") == dist.world_size() and rngs:
            self._resume_rng = rngs[dist.rank()]
        elif state.get("batch_in_epoch"):
            log.warning("resuming mid-epoch with a different number of processes: the rest of this epoch "
                        "uses fresh random numbers")

    def save(self, data_gen: torch.Generator, numbered: bool = False) -> Path | None:
        if not _all_finite(self.nets.G_plain, self.nets.D_plain):  # same weights, same answer on every rank
            raise NonFiniteLoss(f"the network weights are no longer finite at step {self.state.step} (epoch "
                                f"{self.state.epoch + (self.state.batch_in_epoch > 0)}); not saving them. "
                                + self._after_nonfinite())
        state = self._state_dict(data_gen)  # collective under DDP: every rank takes part
        self._last_save = time.monotonic()
        if not self.main:
            return None
        path = save_checkpoint(self.run_dir / LATEST, state)
        self._saved_step = self.state.step
        if numbered:
            keep = self.run_dir / "checkpoints" / f"epoch_{self.state.epoch:04d}.pt"
            keep.parent.mkdir(exist_ok=True)
            link_or_copy(path, keep)
        return path

    # ----- the loop -----------------------------------------------------------------------------
    def run(self) -> Path:
        cfg, st = self.cfg, self.state
        start_time = time.monotonic()
        tb = _tensorboard(self.run_dir) if cfg.tensorboard and self.main else None
        self._tb = tb  # sample grids go to TensorBoard too
        with _StopFlag() as stop:
            while st.epoch < cfg.total_epochs:
                epoch = st.epoch
                lr = cfg.lr * lr_factor(cfg, epoch)
                for opt in (self.nets.opt_G, self.nets.opt_D):
                    for group in opt.param_groups:
                        group["lr"] = lr
                order = self.source.order(_seed(cfg, epoch))
                data_gen = torch.Generator(device=self.device)
                if self._resume_rng is not None:  # mid-epoch resume: continue the saved streams
                    data_gen.set_state(self._resume_rng["data"])
                    torch.set_rng_state(self._resume_rng["torch"])
                    if "cuda" in self._resume_rng:
                        torch.cuda.set_rng_state(self._resume_rng["cuda"], self.device)
                    self._resume_rng = None
                else:  # each epoch's randomness depends only on (seed, epoch, rank)
                    data_gen.manual_seed(_seed(cfg, epoch, dist.rank(), 1))
                    torch.manual_seed(_seed(cfg, epoch, dist.rank(), 2))
                reason = self._epoch(epoch, order, data_gen, lr, stop, start_time, tb)
                if st.batch_in_epoch == self.source.batches_per_epoch:  # the epoch is complete
                    st.epoch += 1
                    st.batch_in_epoch = 0
                    numbered = st.epoch % cfg.save_every == 0 or st.epoch == cfg.total_epochs
                    due = time.monotonic() - self._last_save >= 60 * cfg.latest_every
                    if numbered or dist.any_true(due) or reason is not None:
                        self.save(data_gen, numbered=numbered)
                else:
                    self.save(data_gen)
                if reason is not None and st.epoch < cfg.total_epochs:  # (else the run is simply complete)
                    if self.main:
                        log.warning("%s: stopped during epoch %d at step %d; checkpoint saved to %s. "
                                    "Continue with: pix2pix train --resume %s",
                                    reason, epoch + 1, st.step, self.run_dir / LATEST, self.run_dir)
                    break
            else:
                if self.main and st.step % cfg.sample_every != 0:  # else the loop just wrote this step's
                    self._write_samples()
        if tb is not None:
            tb.close()
        dist.barrier()
        return self.run_dir

    def _epoch(self, epoch: int, order: torch.Tensor, data_gen: torch.Generator, lr: float, stop: _StopFlag,
               start_time: float, tb: Any) -> str | None:
        """Run the rest of ``epoch``; returns a reason string if the run must stop early."""
        from tqdm.auto import tqdm

        cfg, st, bs = self.cfg, self.state, self.cfg.batch_size
        total = self.source.batches_per_epoch
        sums = {k: torch.zeros((), device=self.device) for k in (*LOSS_NAMES, "skipped")}
        count, t_last, step_last = 0, time.monotonic(), st.step
        bar = tqdm(total=total, initial=st.batch_in_epoch, desc=f"epoch {epoch + 1}/{cfg.total_epochs}",
                   unit="batch", disable=not self.show, leave=False, dynamic_ncols=True)
        summary: dict[str, float] = {}
        try:
            for b in range(st.batch_in_epoch, total):
                src, tgt = self.source.batch(self.source.batch_index(order, b), data_gen)
                losses = train_step(self.nets, src, tgt, cfg.gan_loss, cfg.lambda_l1, cfg.skip_nonfinite,
                                    cfg.lambda_gan)
                for k in sums:
                    sums[k] += losses[k]
                count += 1
                st.step += 1
                st.batch_in_epoch = b + 1
                bar.update(1)
                last = b + 1 == total
                if st.step % cfg.log_every == 0 or last:
                    now = time.monotonic()
                    ips = (st.step - step_last) * bs * dist.world_size() / max(now - t_last, 1e-9)
                    summary = self._log(sums, count, epoch, lr, ips, tb)
                    bar.set_postfix({k: _fmt(summary[k], 3) for k in LOSS_NAMES} | {"img/s": f"{ips:.1f}"})
                    sums = {k: torch.zeros((), device=self.device) for k in sums}
                    count, t_last, step_last = 0, now, st.step
                if st.step % cfg.sample_every == 0 and self.main:
                    self._write_samples()
                reason = self._should_stop(stop, start_time, at_log_point=st.step % cfg.log_every == 0 or last)
                if reason:
                    if count:  # check (and log) the steps since the last log point before they are saved
                        ips = count * bs * dist.world_size() / max(time.monotonic() - t_last, 1e-9)
                        self._log(sums, count, epoch, lr, ips, tb)
                    return reason
        finally:
            bar.close()
        if self.show and summary:
            tqdm.write(f"epoch {epoch + 1}/{cfg.total_epochs}  "
                       + "  ".join(f"{k} {_fmt(summary[k], 4)}" for k in LOSS_NAMES)
                       + f"  lr {lr:.2e}  {summary['images_per_sec']:.1f} img/s")
        return None

    def _should_stop(self, stop: _StopFlag, start_time: float, at_log_point: bool) -> str | None:
        """Signals and the time limit; under DDP the ranks agree at log points only."""
        reason = None
        if stop.signal is not None:
            reason = f"received {signal.Signals(stop.signal).name}"
        elif self.cfg.time_limit is not None and time.monotonic() - start_time > 60 * self.cfg.time_limit:
            reason = f"time limit of {self.cfg.time_limit:g} minutes reached"
        if dist.world_size() > 1:  # every rank must leave the loop at the same step
            if not at_log_point:
                return None
            if dist.any_true(reason is not None):
                return reason or "stop requested on another process"
            return None
        return reason

    def _log(self, sums: dict[str, torch.Tensor], count: int, epoch: int, lr: float, ips: float,
             tb: Any) -> dict[str, Any]:
        """Mean losses of the last ``count`` steps (over the batches not skipped) to losses.jsonl.

        Raises :class:`NonFiniteLoss` when a mean is NaN/inf (only possible without --skip-nonfinite).
        """
        stacked = torch.stack([sums[k] for k in (*LOSS_NAMES, "skipped")])
        stacked = dist.all_reduce_mean(stacked)  # one host sync here, none inside the step
        values = stacked.tolist()
        world, step = dist.world_size(), self.state.step
        skipped = round(values[-1] * world)
        used = count * world - skipped  # batches whose losses are in the sums
        means: dict[str, float | None] = {k: v * world / used if used else None for k, v in zip(LOSS_NAMES, values)}
        self.state.skipped += skipped
        steps = f"step {step}" if count == 1 else f"steps {step - count + 1}-{step}"
        if not all(v is None or math.isfinite(v) for v in means.values()):
            raise NonFiniteLoss(
                f"non-finite loss in {steps} (epoch {epoch + 1}): "
                + ", ".join(f"{k}={v}" for k, v in means.items()) + "; stopped without saving. "
                + self._after_nonfinite())
        if skipped and self.main:
            log.warning("%s: skipped %d batch%s with a non-finite loss (%d in this run so far)",
                        steps, skipped, "" if skipped == 1 else "es", self.state.skipped)
        record = {"step": step, "epoch": epoch + 1, **means, "lr": lr, "images_per_sec": ips,
                  "skipped_total": self.state.skipped, "time": time.time()}
        if self.main:
            with run_folder_write(self.loss_log, self.run_dir), open(self.loss_log, "a") as f:
                f.write(json.dumps(record) + "\n")
            if tb is not None:
                for k in (*LOSS_NAMES, "lr", "images_per_sec"):
                    if record[k] is not None:
                        tb.add_scalar(k, record[k], step)
        return record

    def _after_nonfinite(self) -> str:
        """Where the run stands after a non-finite loss, and what to do."""
        latest = self.run_dir / LATEST
        if latest.exists():
            at = f" (step {self._saved_step})" if self._saved_step is not None else ""
            where = (f"The last good checkpoint is {latest}{at}: continue from it with "
                     f"pix2pix train --resume {self.run_dir} --skip-nonfinite, or ")
        else:
            where = "No checkpoint was written yet: "
        return where + "start a new run with a lower --lr or --precision fp32"

    @torch.no_grad()
    def _write_samples(self) -> Path | None:
        """Sample grid of the fixed pairs, then the run page (curves.png + index.html) refreshed."""
        if len(self.samples) == 0:
            return None
        from .visualize import sample_grid

        G = self.nets.G_plain
        was_training = G.training
        G.eval()
        src, tgt = eval_transform(self.samples.source.to(self.device), self.samples.target.to(self.device),
                                  self.cfg.data)
        with autocast(self.device, self.nets.precision):
            out = G(src).float()
        G.train(was_training)
        folder = self.run_dir / "samples"
        path = folder / f"step_{self.state.step:08d}.png"
        grid = sample_grid(src, out, tgt)
        with run_folder_write(path, self.run_dir):
            folder.mkdir(exist_ok=True)
            save_image(grid, path)
        if getattr(self, "_tb", None) is not None:
            self._tb.add_image("samples", np.asarray(grid), self.state.step, dataformats="HWC")
        from .report import refresh_run_report

        refresh_run_report(self.run_dir)
        return path


def _all_finite(*modules: nn.Module) -> bool:
    """True when every parameter and buffer is finite (one host sync)."""
    flags = [torch.isfinite(t).all() for m in modules for t in (*m.parameters(), *m.buffers()) if t.is_floating_point()]
    return bool(torch.stack(flags).all()) if flags else True


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError("--tensorboard needs the tensorboard package: pip install -e .[tensorboard]") from None
    return SummaryWriter(str(run_dir / "tensorboard"))


def train(cfg: TrainConfig, *, progress: bool = True) -> Path:
    """Train a new run in ``cfg.out`` (which must not hold a checkpoint already); returns the run folder."""
    if (Path(cfg.out) / LATEST).exists() and dist.rank() == 0:
        raise ConfigError(f"{cfg.out} already holds a run; continue it with --resume {cfg.out} "
                          "or choose another --out")
    with dist.session():
        return Trainer(cfg, progress=progress).run()


def resume(run_dir: str | os.PathLike, overrides: dict[str, Any] | None = None, *, progress: bool = True) -> Path:
    """Continue the run in ``run_dir`` from its latest checkpoint. ``overrides`` may change only the
    options in :data:`RESUMABLE` (e.g. a larger ``epochs`` extends the run)."""
    run_dir = Path(run_dir)
    state = load_checkpoint(run_dir, map_location="cpu", require=RESUME_KEYS)
    cfg = checkpoint_config(state, run_dir / LATEST)
    overrides = dict(overrides or {})
    bad = sorted(k for k, v in overrides.items() if k not in RESUMABLE and cfg.to_flat().get(k) != v)
    if bad:
        raise ConfigError(f"cannot change {', '.join(bad)} when resuming {run_dir}; "
                          f"only {', '.join(sorted(RESUMABLE))} may change")
    cfg = TrainConfig.from_flat({**overrides, "out": str(run_dir)}, base=cfg)
    if state["epoch"] >= cfg.total_epochs:
        raise ConfigError(f"{run_dir} already finished {state['epoch']} of {cfg.total_epochs} epochs; "
                          f"pass a larger --epochs to extend it")
    with dist.session():
        return Trainer(cfg, resume_state=state, progress=progress).run()


def config_from_checkpoint(path: str | os.PathLike) -> TrainConfig:
    return checkpoint_config(load_checkpoint(path), path)


__all__ = ["train", "resume", "train_step", "lr_factor", "Trainer", "Nets", "build_nets",
           "NonFiniteLoss"]
