"""Choosing the device and the numeric precision; shared by training, inference, bench and serve."""

from __future__ import annotations

import contextlib

import torch

from .errors import ConfigError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; an explicit device that is missing is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for, but this torch build sees no CUDA GPU")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("--device mps was asked for, but MPS is not available here")
    return device


def resolve_precision(name: str, device: torch.device) -> str:
    """``auto`` is fp32 on every device: bf16 is opt-in until a GPU run shows it loses no quality
    (see BENCHMARKS.md). fp16 needs a GPU; bf16 on the CPU works but is rarely faster there."""
    if name == "auto":
        return "fp32"
    if name == "fp16" and device.type == "cpu":
        raise ConfigError("--precision fp16 needs a GPU; use fp32 or bf16 on the CPU")
    return name


def autocast(device: torch.device, precision: str):
    """A context manager running the forward passes in ``precision`` (no-op for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)
