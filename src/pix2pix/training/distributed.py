"""Multi-process training through ``torchrun`` (PyTorch DDP); everything is a no-op in one process.

    torchrun --nproc_per_node 8 -m pix2pix train --data datasets/cityscapes --preset cityscapes
    torchrun --nnodes 2 --node_rank 0 --master_addr HOST --nproc_per_node 8 -m pix2pix train ...

``pix2pix train`` notices the launch from the environment torchrun sets (``WORLD_SIZE``, ``RANK``,
``LOCAL_RANK``), joins the process group (NCCL on GPUs, gloo on the CPU), and leaves it at the end.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

import torch
import torch.distributed as torch_dist
import torch.nn as nn

from ..errors import ConfigError


def launched() -> bool:
    """True when started by torchrun (or another launcher that sets WORLD_SIZE > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    return torch_dist.is_available() and torch_dist.is_initialized()


def world_size() -> int:
    return torch_dist.get_world_size() if active() else 1


def rank() -> int:
    return torch_dist.get_rank() if active() else int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


@contextlib.contextmanager
def session() -> Iterator[None]:
    """Join the process group for the duration of a run when launched by torchrun."""
    if not launched() or active():
        yield
        return
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank())
    torch_dist.init_process_group(backend=backend)
    try:
        yield
    finally:
        torch_dist.destroy_process_group()


def device_for_rank(device: torch.device) -> torch.device:
    """Each process on a node takes its own GPU (cuda:LOCAL_RANK)."""
    if launched() and device.type == "cuda":
        return torch.device("cuda", local_rank())
    return device


def wrap(module: nn.Module, device: torch.device, sync_bn: bool) -> nn.parallel.DistributedDataParallel:
    """DDP-wrap ``module`` (converting BatchNorm to SyncBatchNorm first when ``sync_bn``)."""
    if sync_bn:
        if device.type != "cuda":
            raise ConfigError("--sync-bn needs CUDA GPUs: PyTorch's SyncBatchNorm has no CPU implementation")
        module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids)


def all_reduce_mean(t: torch.Tensor) -> torch.Tensor:
    if not active():
        return t
    t = t.clone()
    torch_dist.all_reduce(t)
    return t / world_size()


def any_true(flag: bool) -> bool:
    """True on every rank if ``flag`` is true on any rank (a collective)."""
    if not active():
        return flag
    backend_device = "cuda" if torch_dist.get_backend() == "nccl" else "cpu"
    t = torch.tensor([1.0 if flag else 0.0], device=backend_device)
    torch_dist.all_reduce(t, op=torch_dist.ReduceOp.MAX)
    return bool(t.item())


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (a collective); ``[obj]`` in one process."""
    if not active():
        return [obj]
    out: list[Any] = [None] * world_size()
    torch_dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    if active():
        torch_dist.barrier()
