"""What every model-file reader returns (:class:`Opened`), exported programs (:class:`Program`),
and the small helpers the readers and writers share."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Union

import torch

from ...config import TrainConfig
from ...errors import CheckpointError

Source = Union[Path, bytes]  # a file, or the bytes an exporter is about to write


@dataclass
class Opened:
    """What a model file holds: something to call, the config that trained it, and what it says."""

    generator: Callable[[torch.Tensor], torch.Tensor]  # nn.Module (weights) or Program
    config: TrainConfig
    kind: str  # a key of FORMATS
    device: torch.device
    meta: dict[str, Any] = field(default_factory=dict)
    discriminator: dict[str, torch.Tensor] | None = None  # a training checkpoint's D weights (for fine-tuning)


class Program:
    """An exported generator: (B, C, H, W) float32 in [-1, 1] -> float32 in [-1, 1] on x's device.

    H and W must be multiples of ``2 ** depth`` (the Translator pads or resizes to them); the batch
    size is free. Mode and precision are fixed in the file (``paper_sampling``, ``meta["dtype"]``).
    """

    def __init__(self, meta: dict[str, Any], device: torch.device):
        self.meta = meta
        self.paper_sampling = meta.get("mode") == "paper_sampling"
        self.device = device

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class TorchProgram(Program):
    """A TorchScript module or a torch.export program (``ExportedProgram.module()``)."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], meta: dict[str, Any], device: torch.device):
        super().__init__(meta, device)
        self.fn = fn

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x.to(self.device, torch.float32))


def read_source(source: Source, name: str) -> bytes:
    if isinstance(source, bytes):
        return source
    try:
        return source.read_bytes()
    except OSError as e:
        raise CheckpointError(f"{name}: cannot read file ({e.strerror or e})") from None


def stream(source: Source) -> io.BytesIO | str:
    return io.BytesIO(source) if isinstance(source, bytes) else str(source)


def first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def min_blocks(cfg: TrainConfig) -> int:
    """The fewest blocks of ``multiple`` an image side may have: 1 for a U-Net; 2 for a ResNet, whose
    residual blocks reflect-pad by 1 pixel at 1/4 scale, which needs 2 pixels there (sides >= 8)."""
    return 2 if cfg.model.n_blocks is not None else 1


def example_input(cfg: TrainConfig, batch: int, blocks: int) -> torch.Tensor:
    """Zeros of (batch, input_nc, blocks * multiple, blocks * multiple): what exporters trace with
    (at least :func:`min_blocks`)."""
    m, blocks = cfg.model.multiple, max(blocks, min_blocks(cfg))
    return torch.zeros(batch, cfg.model.input_nc, blocks * m, blocks * m)


def dynamic_shapes(multiple: int, fewest: int = 1) -> tuple:
    """Batch free; height and width free multiples of ``multiple``, at least ``fewest`` of them (one
    spec for the one input)."""
    from torch.export import Dim

    return ({0: Dim("batch", min=1), 2: multiple * Dim("blocks_h", min=fewest),
             3: multiple * Dim("blocks_w", min=fewest)},)


@contextlib.contextmanager
def exporting() -> Iterator[None]:
    """Quiet exporter chatter, and let sizes of exactly one block stay dynamic.

    torch.export assumes a dynamic size is never 0 or 1 and guards against it; here ``blocks_h = 1``
    (an image of exactly the training size) is the main use. ``backed_size_oblivious`` (documented
    in the torch.export tutorial, experimental) drops that assumption; verification runs at one
    block to prove the program is right there.
    """
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._export", "onnxscript", "onnx_ir")]
    levels = [lg.level for lg in loggers]
    try:
        import torch.fx.experimental._config as fx_config

        oblivious = fx_config.patch(backed_size_oblivious=True)
    except (ImportError, AttributeError):
        oblivious = contextlib.nullcontext()
    with warnings.catch_warnings(), oblivious:
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.trace is deprecated upstream
        warnings.simplefilter("ignore", FutureWarning)
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)
