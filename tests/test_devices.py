"""Precision that fits the CPU: ``auto`` takes bf16 only where the CPU has it in hardware, and an
explicit bf16 on a CPU without it warns in one line."""

from __future__ import annotations

import logging

import pytest
import torch

from pix2pix import devices

CPU, GPU = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize("flags,machine,native", [
    ({"avx2", "avx512f", "avx512_bf16"}, "x86_64", True),  # Zen 4, Cooper Lake
    ({"avx2", "amx_bf16", "amx_tile"}, "x86_64", True),  # Sapphire Rapids
    ({"avx2", "fma"}, "x86_64", False),  # Zen 3: bf16 is emulated
    ({"avx2", "avx512f"}, "x86_64", False),  # Skylake-X: AVX-512 without BF16
    ({"fp", "asimd", "bf16"}, "aarch64", True),  # Arm with the BF16 extension
    ({"fp", "asimd"}, "aarch64", False),
])
def test_native_bf16_follows_the_cpu_flags(monkeypatch, flags, machine, native):
    monkeypatch.setattr(devices, "cpu_flags", lambda: flags)
    monkeypatch.setattr(devices.platform, "machine", lambda: machine)
    assert devices.native_bf16_cpu() is native
    assert devices.resolve_precision("auto", CPU) == ("bf16" if native else "fp32")
    assert devices.resolve_precision("auto", GPU) == "fp32"  # not faster at the paper's batch 1 on an H100


def test_bf16_on_a_cpu_without_it_warns_once_in_one_line(monkeypatch, caplog):
    monkeypatch.setattr(devices, "native_bf16_cpu", lambda: False)
    with caplog.at_level(logging.WARNING, logger="pix2pix"):
        assert devices.resolve_precision("bf16", CPU) == "bf16"
    (record,) = caplog.records
    assert "without native bf16" in record.getMessage() and "\n" not in record.getMessage()
    monkeypatch.setattr(devices, "native_bf16_cpu", lambda: True)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="pix2pix"):
        assert devices.resolve_precision("bf16", CPU) == "bf16" and devices.resolve_precision("fp32", CPU) == "fp32"
    assert not caplog.records


def test_this_machines_flags_are_read():
    # every Linux machine lists its CPU flags; the answer must agree with them
    flags = devices.cpu_flags()
    if not flags:
        pytest.skip("no /proc/cpuinfo here")
    assert devices.native_bf16_cpu() == bool({"avx512_bf16", "amx_bf16"} & flags or "bf16" in flags)
