"""Batches for training: the decoded train split kept on the device, shuffled, sharded and jittered.

    train, samples = load_datasets(cfg)
    source = BatchSource(train, cfg, device, rank=0, world=1)
    for index in source.batches(source.order(seed)):
        src, tgt = source.batch(index, generator)     # (B, C, S, S) floats in [-1, 1] on device

When the split does not fit in GPU memory, batches are gathered from pinned host memory instead:
the same indices and the same jitter, so results do not depend on where the data lives.
"""

from __future__ import annotations

import logging
import math

import torch

from ..config import TrainConfig
from ..errors import ConfigError
from .augment import paired_jitter
from .pairs import PairedImages

log = logging.getLogger("pix2pix")


class BatchSource:
    """The train split on (or streamed to) ``device``; one rank's view of each epoch."""

    def __init__(self, data: PairedImages, cfg: TrainConfig, device: torch.device, rank: int = 0, world: int = 1,
                 resident: bool | None = None):
        """``resident``: keep the split on ``device`` (default: when it fits in 40% of free memory)."""
        self.cfg, self.device, self.n = cfg, device, len(data)
        self.rank, self.world = rank, world
        nbytes = data.source.numel() + data.target.numel()
        self.resident = _fits_on_device(nbytes, device) if resident is None else resident
        if self.resident:
            self.data = data.to(device)
        else:
            log.info("dataset (%.1f GB) stays in host memory; streaming batches to %s", nbytes / 1e9, device)
            pin = device.type == "cuda"  # page-locked memory makes the copies asynchronous
            self.data = PairedImages(data.source.pin_memory() if pin else data.source,
                                     data.target.pin_memory() if pin else data.target, data.names)
        self.per_rank = math.ceil(self.n / world)
        self.batches_per_epoch = math.ceil(self.per_rank / cfg.batch_size)

    def order(self, seed: int, start: int = 0) -> torch.Tensor:
        """This rank's sample indices for an epoch, or for its rest from global sample ``start``.

        One shuffle (from ``seed``) shared by all ranks; the samples from ``start`` on are padded
        by repeating the shuffle (as ``DistributedSampler`` does), so every rank gets as many as
        the others even with fewer pairs than ranks, then dealt out round-robin: after ``k``
        batches of every rank the first ``start + k * batch_size * world`` samples are done,
        whatever the number of ranks, which is how a run resumes on another number of processes.

        Returned on the device when the data lives there, so slicing batches needs no host copy
        (a copy from pageable host memory would make the GPU stream synchronise every step)."""
        perm = torch.randperm(self.n, generator=torch.Generator().manual_seed(seed))
        rest = perm[start:]
        if self.world > 1:
            total = math.ceil(len(rest) / self.world) * self.world
            if total > len(rest):
                repeats = math.ceil((total - len(rest)) / self.n)
                rest = torch.cat([rest, perm.repeat(repeats)[: total - len(rest)]])
            rest = rest[self.rank::self.world]
        return rest.to(self.device) if self.resident else rest

    def samples_done(self, start: int, order: torch.Tensor, batches: int) -> int:
        """The global sample position after ``batches`` batches of ``order`` (started at ``start``)."""
        return start + min(batches * self.cfg.batch_size, len(order)) * self.world

    def batch_index(self, order: torch.Tensor, b: int) -> torch.Tensor:
        bs = self.cfg.batch_size
        return order[b * bs:(b + 1) * bs]

    def batch(self, index: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Gather and jitter a batch: (src, tgt) floats in [-1, 1] on the device."""
        if self.resident:
            src, tgt = self.data.source[index], self.data.target[index]
        else:
            pin = self.device.type == "cuda"
            src, tgt = self.data.source[index], self.data.target[index]
            if pin:
                src, tgt = src.pin_memory(), tgt.pin_memory()
            src = src.to(self.device, non_blocking=pin)
            tgt = tgt.to(self.device, non_blocking=pin)
        src, tgt = paired_jitter(src, tgt, self.cfg.data, generator)
        if self.cfg.channels_last:
            src = src.contiguous(memory_format=torch.channels_last)
            tgt = tgt.contiguous(memory_format=torch.channels_last)
        return src, tgt


def _fits_on_device(nbytes: int, device: torch.device) -> bool:
    if device.type != "cuda":
        return True  # host memory (or unified memory on Apple silicon): it was decoded there already
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes < 0.4 * free


def load_datasets(cfg: TrainConfig, progress: bool = True) -> tuple[PairedImages, PairedImages]:
    """The train split and the fixed sample pairs (the val split's first ``n_samples``, else the
    first training pairs, which is said once in the log)."""
    d, m = cfg.data, cfg.model
    if not d.data_root:
        raise ConfigError("no dataset given: pass --data DIR (a folder with train/ and optionally val/)")
    kw = dict(direction=d.direction, input_nc=m.input_nc, output_nc=m.output_nc, preprocess=d.preprocess,
              load_size=d.load_size, crop_size=d.crop_size, strict=d.strict, progress=progress, cache=d.cache,
              cache_dir=d.cache_dir)
    train = PairedImages.load(d.data_root, d.train_split, max_items=d.max_items, **kw)
    if train is None:
        raise ConfigError(f"{d.data_root}: no '{d.train_split}' split (expected {d.data_root}/{d.train_split}/)")
    if d.preprocess == "none":
        h, w = train.size
        if h % m.multiple or w % m.multiple:
            raise ConfigError(f"{d.data_root}: images are {w}x{h}, but {m.netG} with --preprocess none needs "
                              f"sides that are multiples of {m.multiple}")
    samples = PairedImages.load(d.data_root, d.val_split, max_items=cfg.n_samples, **kw) if cfg.n_samples else None
    if samples is None:
        samples = train.subset(range(min(cfg.n_samples, len(train))))
        if cfg.n_samples:
            log.info("%s has no '%s' split: the sample grids show the first %d training pairs instead",
                     d.data_root, d.val_split, len(samples))
    return train, samples
