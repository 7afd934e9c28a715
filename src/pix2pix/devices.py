"""Choosing the device and the numeric precision; shared by training, inference, bench and serve."""

from __future__ import annotations

import contextlib
import logging
import platform
import subprocess

import torch

from .errors import ConfigError

log = logging.getLogger("pix2pix")


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


def cpu_flags() -> set[str]:
    """The CPU's feature flags as the kernel lists them (``/proc/cpuinfo``: x86 "flags", Arm
    "Features"); on macOS the Arm features sysctl reports; empty where neither can be read."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return set(value.split())
    except OSError:
        pass
    if platform.system() == "Darwin":
        try:
            out = subprocess.run(["sysctl", "-n", "hw.optional.arm.FEAT_BF16"], capture_output=True, text=True,
                                 timeout=5).stdout.strip()
            return {"bf16"} if out == "1" else set()
        except (OSError, subprocess.SubprocessError):
            pass
    return set()


def native_bf16_cpu() -> bool:
    """True when this CPU computes bfloat16 in hardware: AVX-512 BF16 or AMX on x86 (Zen 4, Cooper
    Lake, Sapphire Rapids and later), the BF16 extension on Arm. Elsewhere torch emulates bf16, and
    a 2-core Zen 3 trained unet_128 18x slower in bf16 than in fp32 (BENCHMARKS.md)."""
    flags = cpu_flags()
    return bool({"avx512_bf16", "amx_bf16"} & flags) or ("bf16" in flags and platform.machine() in ("aarch64", "arm64"))


def resolve_precision(name: str, device: torch.device) -> str:
    """The autocast precision for ``name`` on ``device``.

    ``auto``: bf16 on a CPU with native bf16, where it was measured faster than fp32 (1.5x for the
    paper's network on a Zen 4, BENCHMARKS.md); fp32 elsewhere: on CPUs without it bf16 is emulated
    and many times slower, and on a GPU at the paper's batch 1 it was not faster (H100). An explicit
    bf16 on a CPU without native support runs, with a one-line warning. fp16 needs a GPU."""
    if name == "auto":
        return "bf16" if device.type == "cpu" and native_bf16_cpu() else "fp32"
    if name == "fp16" and device.type == "cpu":
        raise ConfigError("--precision fp16 needs a GPU; use fp32 or bf16 on the CPU")
    if name == "bf16" and device.type == "cpu" and not native_bf16_cpu():
        log.warning("--precision bf16 on a CPU without native bf16 (no AVX-512 BF16 or AMX): torch emulates it, "
                    "which was measured 18x slower than fp32 on a Zen 3; use --precision fp32 (or auto)")
    return name


def autocast(device: torch.device, precision: str):
    """A context manager running the forward passes in ``precision`` (no-op for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)
