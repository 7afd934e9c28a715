"""Multi-process training through ``torchrun`` (PyTorch DDP); everything is a no-op in one process.

    torchrun --nproc_per_node 8 -m pix2pix train --data datasets/cityscapes --preset cityscapes
    torchrun --nnodes 2 --node_rank 0 --master_addr HOST --nproc_per_node 8 -m pix2pix train ...

``pix2pix train`` notices the launch from the environment torchrun sets (``WORLD_SIZE``, ``RANK``,
``LOCAL_RANK``), joins the process group (NCCL for CUDA devices, gloo otherwise), and leaves it at
the end. Every decision that changes what the ranks do next (skip a batch, stop, save, fail) is
agreed by a collective before any rank acts on it, so no rank waits for one that went another way.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from typing import Any, Iterator

import torch
import torch.distributed as torch_dist
import torch.nn as nn

from ..errors import ConfigError, Pix2PixError


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


_JOINED: list[bool] = []  # non-empty once this process has joined a process group


def joined() -> bool:
    """Whether this process has been in a process group (see ``python -m pix2pix``'s exit)."""
    return bool(_JOINED)


def backend_for(device: torch.device) -> str:
    """NCCL for CUDA devices, gloo for everything else (``--device cpu`` on a GPU machine too)."""
    return "nccl" if device.type == "cuda" else "gloo"


@contextlib.contextmanager
def session(device: torch.device | None = None, timeout_minutes: float = 10.0) -> Iterator[None]:
    """Join the process group for the duration of a run when launched by torchrun. A collective
    that waits longer than ``timeout_minutes`` for another process fails (no hang)."""
    if not launched() or active():
        yield
        return
    backend = backend_for(device or torch.device("cpu"))
    if backend == "nccl":
        torch.cuda.set_device(local_rank())
    timeout = datetime.timedelta(minutes=timeout_minutes)
    torch_dist.init_process_group(backend=backend, timeout=timeout, **_attempt_store(timeout))
    _JOINED.append(True)
    try:
        yield
    except RuntimeError as e:  # a collective outside the training loop (start-up, the last save)
        converted = lost_contact(e, "")
        if converted is e:
            raise
        raise converted from e
    finally:
        torch_dist.destroy_process_group()


def _attempt_store(timeout: datetime.timedelta) -> dict[str, Any]:
    """Under torchrun, the agent's key-value store with a prefix per restart attempt. torch (2.13)
    hands restarted workers the store of the first attempt without one, and gloo then finds the dead
    workers' addresses there: the restarted job hangs or fails to connect. Empty elsewhere."""
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return {}
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    world = int(os.environ["WORLD_SIZE"])
    base = torch_dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world, is_master=False,
                               timeout=timeout)
    return {"store": torch_dist.PrefixStore(f"pix2pix/attempt_{attempt}", base), "rank": int(os.environ["RANK"]),
            "world_size": world}


class ProcessFailed(Pix2PixError):
    """A failure every process knows about (agreed by a collective, or contact with another
    process was lost): the command line prints it once, on rank 0."""


@contextlib.contextmanager
def all_or_none(what: str) -> Iterator[None]:
    """Run the block on every rank; when it raises on any rank, every rank raises one
    :class:`ProcessFailed` with the first failing rank's message, so no rank waits for one that
    has given up. In one process the error goes through as it is."""
    error: BaseException | None = None
    try:
        yield
    except Exception as e:  # noqa: BLE001  (reported to the other ranks, then raised again)
        if not active():
            raise
        error = e
    if not active():
        return
    text = None if error is None else (str(error) if isinstance(error, Pix2PixError)
                                       else f"{type(error).__name__}: {error}")
    failures = [(r, t) for r, t in enumerate(gather_objects(text)) if t is not None]
    if failures:
        r, t = failures[0]
        raise ProcessFailed(t if r == 0 else f"process {r} ({what}): {t}") from error


def check_same_start(mine: tuple, run_dir: Any) -> None:
    """Refuse unless every rank starts from the same point: ``mine`` = (resumed, epoch, step,
    position, checkpoint hash), the same checkpoint everywhere or a new run everywhere."""
    everyone = gather_objects(mine)
    if all(x == everyone[0] for x in everyone):
        return

    def where(r: int, x: tuple) -> str:
        return f"process {r}: " + (f"epoch {x[1]}, step {x[2]} (sha256 {str(x[4])[:12]})" if x[0] else "a new run")

    raise ProcessFailed(f"the processes did not start from the same checkpoint of {run_dir} ("
                        + "; ".join(where(r, x) for r, x in enumerate(everyone))
                        + "): every process must read the same --out, on a shared filesystem")


def lost_contact(e: BaseException, where: str) -> BaseException:
    """``e`` as one line when it is a collective that failed because another process died or hangs."""
    text = str(e)
    dist_error = getattr(torch_dist, "DistError", ())
    if active() and (isinstance(e, dist_error) or any(w in text for w in ("gloo", "NCCL", "Connection reset",
                                                                              "Timed out", "timeout"))):
        first = text.splitlines()[0][:200] if text else type(e).__name__
        return ProcessFailed(f"lost contact with the other processes{where}: another process failed, was "
                             f"killed or hangs (each waits --dist-timeout minutes); {first}")
    return e


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


def any_true(flag: bool | torch.Tensor) -> bool:
    """True on every rank if ``flag`` is true on any rank (a collective; ``flag`` may be a bool
    tensor on the training device, read back once)."""
    if not active():
        return bool(flag)
    backend_device = "cuda" if torch_dist.get_backend() == "nccl" else "cpu"
    if isinstance(flag, torch.Tensor):
        t = flag.detach().reshape(1).to(backend_device, torch.float32)
    else:
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
