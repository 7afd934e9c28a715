"""Training: the epoch loop around the pix2pix step, ``train`` and ``resume``.

    pix2pix train --data datasets/facades --preset facades --out runs/facades
    pix2pix train --resume runs/facades              # continue exactly where it stopped

From Python::

    from pix2pix import TrainConfig, train
    run_dir = train(TrainConfig.from_flat({"data_root": "datasets/facades", "preset": "facades"}))

The loop keeps the decoded dataset on the training device, jitters batches there, reads losses back
only every ``log_every`` steps, and writes into the run folder (:class:`RunFolder`). Under
``torchrun`` it trains with DistributedDataParallel: every rank takes its shard of each epoch and
only rank 0 writes.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import TrainConfig
from ..data.augment import eval_transform
from ..data.loader import BatchSource, load_datasets
from ..devices import autocast, resolve_device
from ..errors import ConfigError, NonFiniteLoss
from ..models.size import check_fits
from . import distributed as dist
from .checkpoint import checkpoint_bytes
from .init import InitialWeights, load_initial_weights
from .losses import Objective
from .meter import LossMeter, run_clock
from .nets import build_nets, parameter_bytes
from .restart import resume_point, session_settings
from .run_folder import RunFolder
from .schedule import epoch_seed, lr_factor
from .state import Progress, all_finite, restore_training_state, training_state
from .step import LOSS_NAMES, NonFiniteGuard, train_step

log = logging.getLogger("pix2pix")


class StopFlag:
    """Set by SIGINT / SIGTERM; the loop finishes the current step, saves and exits cleanly."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> "StopFlag":
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


class Trainer:
    """One run: the nets, the data and the loop, writing into a :class:`RunFolder`. Use :func:`train`."""

    def __init__(self, cfg: TrainConfig, *, resume_state: dict[str, Any] | None = None, progress: bool = True,
                 init: InitialWeights | None = None, checkpoint_id: str | None = None):
        """``init``: fine-tuning weights (a new run only). ``checkpoint_id``: a hash of
        ``resume_state``'s file; under DDP every rank must have read the same."""
        self.cfg, self.run_dir = cfg, RunFolder(cfg.out)
        self.device = dist.device_for_rank(resolve_device(cfg.device))
        self.main = dist.rank() == 0
        self.show = progress and self.main
        check_fits(cfg.model, self.device, training=True,  # before any data is loaded
                   source=str(self.run_dir.latest) if resume_state is not None else "these settings")
        with dist.all_or_none("preparing the run folder"):
            if self.main:
                self.run_dir.prepare()
                self.run_dir.write_config(cfg.to_dict())
        train_data, self.samples = load_data(cfg, self.show)
        self.source = BatchSource(train_data, cfg, self.device, dist.rank(), dist.world_size())
        self.state, self._resume_rng = Progress(), None
        with dist.all_or_none("building the networks"):
            self.nets = build_nets(cfg, self.device)
            if init is not None and resume_state is None:  # fine-tuning: MODEL's weights, fresh optimisers
                load_initial_weights(self.nets, init)
                if self.main:
                    log.info("starting from the weights of %s (%s)", init.source, "generator and discriminator"
                             if init.discriminator is not None else "generator; the discriminator starts fresh")
            if self.main:  # a full disk is found now rather than at the end of the first epoch
                self.run_dir.check_free_space(3 * parameter_bytes(self.nets.G_plain, self.nets.D_plain),
                                              numbered=cfg.total_epochs // cfg.save_every + 1)
            if resume_state is not None:
                self.state, self._resume_rng = restore_training_state(self.nets, resume_state, self.run_dir.latest)
        self.objective = Objective.of(cfg)
        self.guard = NonFiniteGuard(self.nets.G_plain, self.nets.D_plain) if cfg.skip_nonfinite else None
        self._saved_step: int | None = self.state.step if resume_state is not None else None  # for messages
        self._last_save = time.monotonic()
        st = self.state
        dist.check_same_start((resume_state is not None, st.epoch, st.step, st.sample_in_epoch, checkpoint_id), cfg.out)
        if self.main:  # steps after the checkpoint (a run killed since) are done again: drop their log lines
            dropped = self.run_dir.trim_losses(self.state.step)
            if dropped:
                log.info("removed %d lines of %s %s", dropped, self.run_dir.losses,
                         f"written after the checkpoint (step {self.state.step})" if resume_state is not None
                         else "left by an earlier start that wrote no checkpoint")
            log.info("training %s on %d pairs (%s), %d batches/epoch, device %s, precision %s%s",
                     cfg.model.netG, len(train_data), cfg.data.direction, self.source.batches_per_epoch,
                     self.device, self.nets.precision, f", {dist.world_size()} processes" if dist.world_size() > 1 else "")
        self._tb = None

    def save(self, data_gen: torch.Generator, numbered: bool = False) -> Path | None:
        """Write ``latest.pt`` (and a numbered copy); refuses non-finite weights. Every rank calls it."""
        # batch-norm buffers differ between ranks: the answer is agreed, or a rank would wait alone
        if dist.any_true(not all_finite(self.nets.G_plain, self.nets.D_plain)):
            raise NonFiniteLoss(f"the network weights are no longer finite at step {self.state.step} (epoch "
                                f"{self.state.epoch + (self.state.batch_in_epoch > 0)}); not saving them. "
                                + self._after_nonfinite())
        state = training_state(self.cfg, self.nets, self.state, self.device, data_gen)  # collective
        self._last_save = time.monotonic()
        with dist.all_or_none("writing the checkpoint"):
            path = self.run_dir.write_checkpoint(checkpoint_bytes(state), self.state.epoch if numbered else None) \
                if self.main else None
        self._saved_step = self.state.step
        return path

    # ----- the loop -----------------------------------------------------------------------------
    def run(self) -> Path:
        cfg, st = self.cfg, self.state
        start_time = time.monotonic()
        self._first_step = st.step  # the run's pace (for its ETA) is measured from this process's steps
        self._tb = self.run_dir.tensorboard_writer() if cfg.tensorboard and self.main else None
        with StopFlag() as stop:
            while st.epoch < cfg.total_epochs:
                epoch = st.epoch
                lr = cfg.lr * lr_factor(cfg, epoch)
                for opt in (self.nets.opt_G, self.nets.opt_D):
                    for group in opt.param_groups:
                        group["lr"] = lr
                data_gen = self._epoch_randomness(epoch)
                reason = self._epoch(epoch, data_gen, lr, stop, start_time)
                if st.sample_in_epoch >= self.source.n:  # the epoch is complete
                    st.epoch += 1
                    st.batch_in_epoch = st.sample_in_epoch = 0
                    numbered = st.epoch % cfg.save_every == 0 or st.epoch == cfg.total_epochs
                    if numbered or latest_due(cfg, self._last_save) or reason is not None:
                        self.save(data_gen, numbered=numbered)
                else:
                    self.save(data_gen)
                if reason is not None and st.epoch < cfg.total_epochs:  # (else the run is simply complete)
                    if self.main:
                        log.warning("%s: stopped during epoch %d at step %d; checkpoint saved to %s. "
                                    "Continue with: pix2pix train --resume %s",
                                    reason, epoch + 1, st.step, self.run_dir.latest, self.run_dir.path)
                    break
            else:
                if self.main and st.step % cfg.sample_every != 0:  # else the loop just wrote this step's
                    self._write_samples()
        if self._tb is not None:
            self._tb.close()
        dist.barrier()
        return self.run_dir.path

    def _epoch_randomness(self, epoch: int) -> torch.Generator:
        """The jitter generator (and torch's global stream, for dropout) for ``epoch``: continued from
        the checkpoint after a mid-epoch resume, else seeded from (seed, epoch, rank) alone."""
        rng, self._resume_rng = self._resume_rng, None
        return epoch_randomness(self.cfg, self.device, epoch, rng)

    def _epoch(self, epoch: int, data_gen: torch.Generator, lr: float, stop: StopFlag,
               start_time: float) -> str | None:
        """Run the rest of ``epoch`` (from the global sample position in ``self.state``); returns a
        reason string if the run must stop early."""
        from tqdm.auto import tqdm

        cfg, st = self.cfg, self.state
        start = st.sample_in_epoch
        order = self.source.order(epoch_seed(cfg, epoch), start)
        total = math.ceil(len(order) / cfg.batch_size)  # this rank's batches left in the epoch, as every rank's
        meter = LossMeter(self.device, cfg.batch_size)
        bar = tqdm(total=st.batch_in_epoch + total, initial=st.batch_in_epoch, desc=f"epoch {epoch + 1}/"
                   f"{cfg.total_epochs}", unit="batch", disable=not self.show, leave=False, dynamic_ncols=True)
        summary: dict[str, Any] = {}
        clock = ""
        try:
            for b in range(total):
                src, tgt = self.source.batch(self.source.batch_index(order, b), data_gen)
                meter.add(train_step(self.nets, src, tgt, self.objective, self.guard))
                st.step += 1
                st.batch_in_epoch += 1
                st.sample_in_epoch = self.source.samples_done(start, order, b + 1)
                bar.update(1)
                at_log_point = st.step % cfg.log_every == 0 or b + 1 == total
                if at_log_point:
                    summary = self._log(meter, epoch, lr)
                    left = (cfg.total_epochs - epoch - 1) * total + total - b - 1  # steps still to run
                    clock = run_clock(time.monotonic() - start_time, st.step - self._first_step, left)
                    bar.set_postfix({k: _fmt(summary[k], 3) for k in LOSS_NAMES}
                                    | {"img/s": f"{summary['images_per_sec']:.1f}", "run": clock})
                if at_log_point and b + 1 < total and latest_due(cfg, self._last_save, mid_epoch=True):
                    self.save(data_gen)  # (the epoch's end saves in run)
                if st.step % cfg.sample_every == 0 and self.main:
                    self._write_samples()
                reason = self._should_stop(stop, start_time, at_log_point)
                if reason:
                    if meter.count:  # check (and log) the steps since the last log point before they are saved
                        self._log(meter, epoch, lr)
                    return reason
        finally:
            bar.close()
        if self.show and summary:
            tqdm.write(f"epoch {epoch + 1}/{cfg.total_epochs}  "
                       + "  ".join(f"{k} {_fmt(summary[k], 4)}" for k in LOSS_NAMES)
                       + f"  lr {lr:.2e}  {summary['images_per_sec']:.1f} img/s  {clock}")
        return None

    def _should_stop(self, stop: StopFlag, start_time: float, at_log_point: bool) -> str | None:
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

    def _log(self, meter: LossMeter, epoch: int, lr: float) -> dict[str, Any]:
        """Mean losses since the last log point to losses.jsonl (and TensorBoard); raises
        :class:`NonFiniteLoss` when a mean is NaN/inf (only possible without --skip-nonfinite)."""
        step = self.state.step
        means, skipped, ips, steps = meter.read(step)
        meter.reset()
        self.state.skipped += skipped
        if not LossMeter.finite(means):
            raise NonFiniteLoss(f"non-finite loss in {steps} (epoch {epoch + 1}): "
                                + ", ".join(f"{k}={v}" for k, v in means.items()) + "; stopped without saving. "
                                + self._after_nonfinite())
        if skipped and self.main:
            log.warning("%s: skipped %d batch%s with a non-finite loss (%d in this run so far)",
                        steps, skipped, "" if skipped == 1 else "es", self.state.skipped)
        record = {"step": step, "epoch": epoch + 1, **means, "lr": lr, "images_per_sec": ips,
                  "skipped_total": self.state.skipped, "time": time.time()}
        if self.main:
            self.run_dir.append_losses(record)
            if self._tb is not None:
                for k in (*LOSS_NAMES, "lr", "images_per_sec"):
                    if record[k] is not None:
                        self._tb.add_scalar(k, record[k], step)
        return record

    def _after_nonfinite(self) -> str:
        return after_nonfinite(self.run_dir, self._saved_step)

    @torch.no_grad()
    def _write_samples(self) -> Path | None:
        """Sample grid of the fixed pairs (eval mode), then the run page refreshed."""
        if len(self.samples) == 0:
            return None
        from ..pictures import sample_grid

        G = self.nets.G_plain
        was_training = G.training
        G.eval()
        src, tgt = eval_transform(self.samples.source.to(self.device), self.samples.target.to(self.device),
                                  self.cfg.data)
        with autocast(self.device, self.nets.precision):
            out = G(src).float()
        G.train(was_training)
        grid = sample_grid(src, out, tgt)
        path = self.run_dir.write_sample(grid, self.state.step)
        if self._tb is not None:
            self._tb.add_image("samples", np.asarray(grid), self.state.step, dataformats="HWC")
        self.run_dir.refresh_page()
        return path


def load_data(cfg: TrainConfig, progress: bool):
    """The train split and the sample pairs. Under DDP with the cache, local rank 0 decodes and
    writes the cache first and the other ranks of its node then map the same file, so a node
    decodes once and holds the decoded split once (the page cache) whatever its GPU count."""
    shared = dist.world_size() > 1 and cfg.data.cache
    loaded = None
    with dist.all_or_none("loading the data"):
        if not shared or dist.local_rank() == 0:
            loaded = load_datasets(cfg, progress=progress)
    with dist.all_or_none("mapping the decoded data"):
        if loaded is None:
            loaded = load_datasets(cfg, progress=False)
    return loaded


def latest_due(cfg: TrainConfig, last_save: float, mid_epoch: bool = False) -> bool:
    """Whether ``latest.pt`` is due (agreed across ranks): ``latest_every`` minutes after the last
    write, at log points and epoch ends; with 0, at every epoch end only. Every 5 minutes by
    default: a 655 MiB write of the paper's nets took 2.7 s on a 2-core Zen 4 (0.9 % of wall
    time), and a killed run loses at most those minutes (BENCHMARKS.md)."""
    if mid_epoch and cfg.latest_every == 0:
        return False
    return dist.any_true(time.monotonic() - last_save >= 60 * cfg.latest_every)


def epoch_randomness(cfg: TrainConfig, device: torch.device, epoch: int, rng: dict[str, Any] | None) -> torch.Generator:
    """See :meth:`Trainer._epoch_randomness`; ``rng``: the saved streams of a mid-epoch checkpoint."""
    data_gen = torch.Generator(device=device)
    if rng is not None:
        data_gen.set_state(rng["data"])
        torch.set_rng_state(rng["torch"])
        if "cuda" in rng:
            torch.cuda.set_rng_state(rng["cuda"], device)
    else:
        data_gen.manual_seed(epoch_seed(cfg, epoch, dist.rank(), 1))
        torch.manual_seed(epoch_seed(cfg, epoch, dist.rank(), 2))
    return data_gen


def after_nonfinite(run: RunFolder, saved_step: int | None) -> str:
    """Where a run stands after a non-finite loss, and what to do."""
    if run.has_checkpoint():
        at = f" (step {saved_step})" if saved_step is not None else ""
        where = (f"The last good checkpoint is {run.latest}{at}: continue from it with "
                 f"pix2pix train --resume {run.path} --skip-nonfinite, or ")
    else:
        where = "No checkpoint was written yet: "
    return where + "start a new run with a lower --lr or --precision fp32"


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def train(cfg: TrainConfig, *, progress: bool = True, overwrite: bool = False,
          init: InitialWeights | None = None) -> Path:
    """Train a new run in ``cfg.out``; returns the run folder. A folder holding another run's files is
    refused unless ``overwrite`` (which removes them first); one process at a time per folder (rank 0
    holds the folder's lock; every rank agrees before anyone goes on).

    ``init``: the weights of ``cfg.init_from``, opened by the caller (``pix2pix.train`` does it;
    see ``training/init.py``)."""
    if cfg.init_from and init is None:
        raise ConfigError(f"init_from {cfg.init_from!r}: open the model with pix2pix.train (or "
                          "pix2pix train --init-from), which reads every model-file kind")
    run = RunFolder(cfg.out)
    with dist.session(resolve_device(cfg.device), cfg.dist_timeout), contextlib.ExitStack() as held:
        with dist.all_or_none("checking the run folder"):
            if dist.rank() == 0:  # only rank 0 writes
                held.enter_context(run.exclusive())
                run.check_new_run(overwrite)
        return Trainer(cfg, progress=progress, init=init).run()


def resume(run_dir: str | os.PathLike, overrides: dict[str, Any] | None = None, *, progress: bool = True,
           auto: bool = False) -> Path:
    """Continue the run in ``run_dir`` from its latest checkpoint. ``overrides`` may change only the
    options whose config field says so (``resumable``; e.g. a larger ``epochs`` extends the run).
    ``auto``: see :func:`auto_resume`."""
    run = RunFolder(run_dir)
    device, timeout = session_settings(run, overrides)
    with dist.session(resolve_device(device), timeout), contextlib.ExitStack() as held:
        with dist.all_or_none("reading the checkpoint"):
            if dist.rank() == 0:
                held.enter_context(run.exclusive(create=False))
            point = resume_point(run, overrides, auto=auto)
        if point.finished:
            log.info("%s already finished its %d epochs; nothing to do", run.path, point.cfg.total_epochs)
            return run.path
        return Trainer(point.cfg, resume_state=point.state, progress=progress, checkpoint_id=point.digest).run()


def auto_resume(cfg: TrainConfig, *, progress: bool = True, init: InitialWeights | None = None) -> Path:
    """``--auto-resume``: continue ``cfg.out`` when it holds a checkpoint of the same settings (the
    resumable ones may differ), start it when it holds none, refuse naming each other difference.
    A job restarted by ``torchrun --max-restarts`` with the same command line so continues; a start
    of the same settings killed before its first checkpoint is started over."""
    run = RunFolder(cfg.out)
    if not run.has_checkpoint():
        return train(cfg, progress=progress, init=init, overwrite=run.same_settings(cfg.to_dict()))
    return resume(cfg.out, cfg.to_flat(), progress=progress, auto=True)
