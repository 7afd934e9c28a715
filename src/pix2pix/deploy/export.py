"""Export a trained generator to safetensors, TorchScript, torch.export and ONNX; verify each file.

    pix2pix export --checkpoint runs/facades --output facades.onnx
    pix2pix export --checkpoint runs/facades --format all --output export/
    pix2pix export --checkpoint runs/facades --format onnx safetensors --half --output export/
    pix2pix export --checkpoint latest_net_G.pth --format pretrained --output facades-pix2pix/

    from pix2pix.deploy.export import export_model
    results = export_model("runs/facades", ["onnx"], "facades.onnx")   # -> [ExportResult]

Formats (``formats.EXPORT_FORMATS``): ``safetensors`` (weights + config, for ``pix2pix.load``
and other frameworks), ``torchscript`` (``.ts``, for libtorch C++ / plain ``torch.jit.load``),
``torch-export`` (``.pt2``, ``torch.export.load``, AOTInductor), ``onnx`` (onnxruntime and friends),
``pretrained`` (a Hugging Face folder: config.json + model.safetensors + README.md model card; not
part of ``all``). Every file carries the training config as JSON (``formats/metadata.py``).

Shapes: batch, height and width are dynamic; height and width must be multiples of ``2 ** depth``
(256 for unet_256), because the U-Net halves them ``depth`` times and its skips must line up.

Verification: before a file is written it is read back through the same code ``pix2pix translate``
uses and run on three inputs of different batch sizes and shapes; the largest absolute difference
from the PyTorch model is reported, and above ``tolerance`` (1e-3) the export fails and nothing is
written. ``--half`` files are compared with the fp32 model, so their number is the cost of fp16.

Mode: eval (dropout off, running statistics) unless ``paper_sampling``; then the program normalises
each image with its own statistics and samples dropout (see ``models/sampling.py``), so an image's
output does not depend on the other images in its batch. safetensors stores weights only: it has no mode.
"""

from __future__ import annotations

import copy
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn

from ..config import TrainConfig
from ..errors import ConfigError, ExportError
from ..fileio import atomic_write_bytes, check_writable, writing
from ..models.sampling import keep_all_dropout, with_explicit_sampling
from .formats import EXPORT_FORMATS, FILE_FORMATS, FORMATS, SUFFIXES, kind_of, open_model, read_bytes
from .formats import onnx as onnx_format
from .formats.common import min_blocks
from .formats import pretrained as pretrained_format
from .formats.metadata import export_metadata
from .model_card import find_scores, model_card

log = logging.getLogger("pix2pix")

HALF_FORMATS = tuple(k for k in EXPORT_FORMATS if FORMATS[k].half)
WEIGHT_FORMATS = ("safetensors", "pretrained")  # weights only: no mode
TOLERANCE = 1e-3  # fp32 exports: max abs difference from PyTorch on outputs in [-1, 1]
HALF_TOLERANCE = 2e-2  # --half: the file vs the fp32 model (fp16 rounding included), about 2.5 / 255


@dataclass
class ExportResult:
    """One written file and how closely it reproduces the PyTorch model."""

    format: str
    path: Path
    size_bytes: int
    max_abs_diff: float  # file vs PyTorch model (fp32), over all verification inputs
    shapes: list[tuple[int, ...]]  # the verification inputs' shapes
    mode: str  # "eval" or "paper_sampling"
    dtype: str  # "float32" or "float16"
    seconds: float

    def to_dict(self) -> dict:
        return {"format": self.format, "path": str(self.path), "size_bytes": self.size_bytes,
                "max_abs_diff": self.max_abs_diff, "shapes": [list(s) for s in self.shapes], "mode": self.mode,
                "dtype": self.dtype, "seconds": round(self.seconds, 2)}


# ----- what to write where ----------------------------------------------------------------------
def normalize_formats(formats: Sequence[str]) -> list[str]:
    """Unique formats in the order given; ``all`` means every single-file format."""
    out: list[str] = []
    for f in formats:
        for name in FILE_FORMATS if f == "all" else [f]:
            if name not in EXPORT_FORMATS:
                raise ConfigError(f"unknown export format {name!r}; choose from {', '.join(EXPORT_FORMATS)} or all")
            if name not in out:
                out.append(name)
    return out


def output_paths(output: str | os.PathLike, formats: Sequence[str], *, paper_sampling: bool = False,
                 half: bool = False) -> dict[str, Path]:
    """Where each format goes.

    ``--output NAME.onnx`` (a format's suffix: .safetensors .ts .pt2 .onnx) is that one file, and
    ``--format`` may be left out. Anything else is a folder that receives
    ``generator[-paper][-fp16].SUFFIX`` for each format asked for (``-paper`` only on programs:
    safetensors holds weights, which have no mode).
    """
    out = Path(output)
    kind = kind_of(out)
    formats = normalize_formats(formats)
    if kind != "checkpoint" and not out.is_dir():
        if formats and formats != [kind]:
            raise ConfigError(f"--output {out} is a {kind} file name, but --format asks for {', '.join(formats)}; "
                              "give a folder as --output to write several formats")
        return {kind: out}
    if not formats:
        raise ConfigError(f"--output {out} is a folder: say which --format(s) to write there "
                          f"({', '.join(EXPORT_FORMATS)} or all), or give a file name such as model.onnx")
    if formats == ["pretrained"]:  # the Hugging Face folder is --output itself
        return {"pretrained": out}
    if out.suffix and not out.is_dir():
        raise ConfigError(f"--output {out}: {out.suffix} is not an export suffix ({', '.join(SUFFIXES.values())}); "
                          "give one of those, or a folder")
    def name(f: str) -> str:
        paper = "-paper" if paper_sampling and f not in WEIGHT_FORMATS else ""
        return f"generator{paper}{'-fp16' if half else ''}{SUFFIXES.get(f, '-pretrained')}"

    return {f: out / name(f) for f in formats}


# ----- verification -----------------------------------------------------------------------------
def sample_inputs(cfg: TrainConfig) -> list[torch.Tensor]:
    """Fixed inputs in [-1, 1]: the training size (batch 2), one block by two (batch 1), and two
    blocks by one (batch 3), so dynamic batch, height and width are all exercised."""
    m, s, c = cfg.model.multiple * min_blocks(cfg), cfg.data.model_size, cfg.model.input_nc
    gen = torch.Generator().manual_seed(0)
    return [torch.rand(shape, generator=gen) * 2 - 1 for shape in [(2, c, s, s), (1, c, m, 2 * m), (3, c, 2 * m, m)]]


def verify(fmt: str, data: bytes, reference: nn.Module, cfg: TrainConfig, *, tolerance: float,
           name: str) -> tuple[float, list[tuple[int, ...]]]:
    """Run the serialized file (read back as ``translate`` reads it) against ``reference`` (fp32).

    Paper-sampling programs are compared with the same dropout masks: torch programs draw them from
    the same seeded generator; an ONNX graph gets a copy with the masks set to ones. Returns the
    largest absolute difference and the input shapes; raises :class:`ExportError` above tolerance.
    """
    program = read_bytes(fmt, data, name).generator
    if isinstance(program, nn.Module):
        program.eval()  # safetensors: weights only, compared in eval mode
    paper = bool(getattr(program, "paper_sampling", False))
    if paper and fmt == "onnx":
        program = read_bytes(fmt, onnx_format.without_sampling(data), name).generator
        reference = keep_all_dropout(reference)
    samples = sample_inputs(cfg)
    worst = 0.0
    for i, x in enumerate(samples):
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(i)
            want = reference(x)
            torch.manual_seed(i)
            got = program(x)
        where = f"{name}: on an input of shape {tuple(x.shape)}"
        if got.shape != want.shape:
            raise ExportError(f"{where} the export returns shape {tuple(got.shape)}, PyTorch {tuple(want.shape)}")
        if not torch.isfinite(got).all():
            raise ExportError(f"{where} the export returns NaN or infinite values; nothing was written")
        diff = (got.float() - want.float()).abs().max().item()
        worst = max(worst, diff)
        if diff > tolerance:
            raise ExportError(f"{where} the export differs from PyTorch by up to {diff:.3g} (tolerance "
                              f"{tolerance:g}); nothing was written")
    if paper and cfg.model.dropout > 0:
        real = read_bytes(fmt, data, name).generator
        with torch.no_grad():
            if torch.equal(real(samples[0]), real(samples[0])):
                raise ExportError(f"{name}: exported with --paper-sampling, but its outputs do not vary between "
                                  "runs: dropout was lost in export; nothing was written")
    return worst, [tuple(x.shape) for x in samples]


# ----- the whole export -------------------------------------------------------------------------
def export_model(checkpoint: str | os.PathLike, formats: Sequence[str], output: str | os.PathLike, *,
                 paper_sampling: bool = False, half: bool = False, tolerance: float | None = None,
                 opset: int | None = None) -> list[ExportResult]:
    """Export the generator of ``checkpoint`` (any model ``pix2pix.load`` opens whose generator is a
    module: run folder, .pt, .safetensors, Hugging Face folder, reference .pth) in each format.

    Each file is verified before it is written (see :func:`verify`); a failure raises
    :class:`ExportError` and leaves that file unwritten (formats before it are already written).
    """
    paths = output_paths(output, formats, paper_sampling=paper_sampling, half=half)
    if half and (bad := [f for f in paths if f not in HALF_FORMATS]):
        raise ConfigError(f"--half applies to {', '.join(HALF_FORMATS[:-1])} and {HALF_FORMATS[-1]}, "
                          f"not {', '.join(bad)} "
                          "(TorchScript and torch.export programs are written in fp32)")
    for path in paths.values():  # an unwritable place is found now, not after the export and its checks
        check_writable(path, what="export file")
    if "onnx" in paths:
        onnx_format.require_exporter()
    if kind_of(checkpoint) in ("torchscript", "torch-export", "onnx"):  # refused unopened: a program may run code
        raise ConfigError(f"{checkpoint}: an exported {kind_of(checkpoint)} program cannot be exported again; export "
                          "from the training checkpoint (run folder) or a .safetensors file")
    opened = open_model(checkpoint, "cpu")
    generator, cfg = opened.generator.eval(), opened.config
    return [export_one(fmt, path, generator, cfg, source=opened.meta.get("source"), paper_sampling=paper_sampling,
                       half=half, tolerance=tolerance, opset=opset, run_dir=checkpoint, name=str(checkpoint))
            for fmt, path in paths.items()]


def export_one(fmt: str, path: Path, generator: nn.Module, cfg: TrainConfig, *, source: dict | None = None,
               paper_sampling: bool = False, half: bool = False, tolerance: float | None = None,
               opset: int | None = None, run_dir: str | os.PathLike | None = None,
               name: str = "the model") -> ExportResult:
    """Write ``generator`` as one ``fmt`` file (or folder) at ``path``, verified first."""
    start = time.perf_counter()
    tolerance = tolerance if tolerance is not None else (HALF_TOLERANCE if half else TOLERANCE)
    log.info("exporting %s to %s ...", fmt, path)
    mode = "paper_sampling" if paper_sampling and fmt not in WEIGHT_FORMATS else "eval"
    if paper_sampling and fmt in WEIGHT_FORMATS:
        log.info("%s holds weights only: choose the mode when loading it (--paper-sampling)", fmt)
    reference = with_explicit_sampling(generator) if mode == "paper_sampling" else copy.deepcopy(generator).eval()
    meta = export_metadata(cfg, fmt, mode=mode, dtype="float16" if half else "float32", source=source)
    try:
        data = FORMATS[fmt].write(reference, cfg, meta, half, opset)
    except (ExportError, ConfigError):
        raise
    except Exception as e:  # exporter failures: unsupported op, opset, ...
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ExportError(f"{fmt} export of {name} failed ({type(e).__name__}: {first})") from e
    diff, shapes = verify(fmt, data, reference, cfg, tolerance=tolerance, name=str(path))
    if FORMATS[fmt].folder:
        card = model_card(cfg, meta, find_scores(run_dir), sum(p.numel() for p in generator.parameters()))
        pretrained_format.write_folder(path, data, cfg, meta, card)
    else:
        with writing(path, "nothing was written"):
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, data)
    return ExportResult(fmt, path, len(data), diff, shapes, mode, meta["dtype"], time.perf_counter() - start)


def save_pretrained(generator: object, cfg: TrainConfig, folder: str | os.PathLike, *, source: dict | None = None,
                    run_dir: str | os.PathLike | None = None, half: bool = False) -> Path:
    """``Translator.save_pretrained``: the Hugging Face folder, verified as ``--format pretrained`` is."""
    if not isinstance(generator, nn.Module):
        raise ConfigError("this model is an exported program: save_pretrained needs weights (a checkpoint, "
                          ".safetensors file, Hugging Face folder or reference .pth)")
    generator = copy.deepcopy(generator).cpu()
    return export_one("pretrained", Path(folder), generator, cfg, source=source, half=half, run_dir=run_dir).path


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 2**10:.0f} kB"


def format_results(results: Sequence[ExportResult]) -> str:
    """A table: format, file, size, max abs difference from PyTorch (fp16: from the fp32 model), time."""
    rows = [("format", "file", "size", "max |diff|", "mode", "dtype", "time")]
    for r in results:
        rows.append((r.format, str(r.path), _size(r.size_bytes), f"{r.max_abs_diff:.2e}", r.mode, r.dtype,
                     f"{r.seconds:.1f} s"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)
