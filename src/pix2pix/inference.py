"""Translator: a trained generator that turns input images into output images.

    pix2pix translate --checkpoint runs/facades --input photos/ --output out/ --side-by-side

    from pix2pix import Translator
    t = Translator.from_checkpoint("runs/facades")
    out = t(Image.open("labels.png"))          # PIL in -> PIL out (same size as the input)
    out = t(torch.rand(4, 3, 256, 256) * 2 - 1)   # tensor in [-1, 1] -> tensor in [-1, 1]

Sizes: by default each image is resized to the model's training size (bicubic), translated, and the
result resized back to the input's size. With ``native_size=True`` the image is reflect-padded to a
multiple of 2**depth, translated at its own resolution, and cropped back (no resampling at all).

Modes: eval mode by default (dropout off, batch-norm running statistics) so the same input always
gives the same output. ``paper_sampling=True`` keeps dropout on and normalises with the statistics of
the test batch itself, as the paper does at test time; outputs then vary from call to call.

Model files: ``load()`` opens a run folder, a training checkpoint, or an exported ``.safetensors``,
``.onnx``, ``.pt2`` or ``.ts`` file (see ``backends.py``). The Translator only needs a callable
generator and the config, so every kind goes through the same resizing, padding and batching.
"""

from __future__ import annotations

import glob
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence, Union, overload

import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from .backends import Opened, open_model
from .config import TrainConfig
from .data.augment import resize
from .data.images import is_image_file, open_image, to_array
from .data.pairs import PairFile, pairs_in_folder, read_pair
from .devices import resolve_device
from .errors import CheckpointError, ConfigError, DataError, OutputError
from .fileio import save_image
from .visualize import image_to_tensor, side_by_side as side_by_side_image, tensor_to_image

log = logging.getLogger("pix2pix")

ImageLike = Union[Image.Image, torch.Tensor]


class Translator:
    """Wraps a generator with its config; call it on PIL images or tensors.

    ``generator`` is any callable (B, input_nc, H, W) -> (B, output_nc, H, W) on floats in [-1, 1]
    with H, W multiples of ``2 ** depth``: an ``nn.Module`` (weights from a checkpoint or safetensors
    file; its mode is set here) or an exported :class:`~pix2pix.backends.Program` (ONNX, TorchScript,
    torch.export), whose mode was fixed when it was exported. ``paper_sampling=None`` means eval mode
    for a module and the program's own mode for a program; asking a program for the other mode is a
    :class:`ConfigError`.
    """

    def __init__(self, generator: Callable[[torch.Tensor], torch.Tensor], config: TrainConfig,
                 device: torch.device | str = "cpu", paper_sampling: bool | None = None, batch_size: int = 8,
                 kind: str = "checkpoint", meta: dict[str, Any] | None = None):
        self.config = config
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.kind = kind  # "checkpoint", "safetensors", "onnx", "torch-export", "torchscript"
        self.meta = meta or {}
        if isinstance(generator, nn.Module):
            self.generator = generator.to(self.device)
            self.paper_sampling = bool(paper_sampling)
            self._set_mode()
        else:
            self.generator = generator
            self.paper_sampling = bool(getattr(generator, "paper_sampling", False))
            if paper_sampling is not None and paper_sampling != self.paper_sampling:
                raise ConfigError(_fixed_mode_message(self.paper_sampling))

    # ----- construction -------------------------------------------------------------------------
    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str = "auto", paper_sampling: bool = False,
                        batch_size: int = 8) -> "Translator":
        """From a training checkpoint file or a run folder (its latest checkpoint)."""
        opened = open_model(Path(path), resolve_device(device))
        if opened.kind != "checkpoint":
            raise CheckpointError(f"{path}: a {opened.kind} file, not a training checkpoint; use pix2pix.load()")
        return cls._from_opened(opened, paper_sampling, batch_size)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, device: str = "auto", paper_sampling: bool = False,
                        batch_size: int = 8) -> "Translator":
        """From an exported ``.safetensors`` file (generator weights + config; no training state)."""
        if Path(path).suffix.lower() != ".safetensors":
            raise CheckpointError(f"{path}: from_pretrained reads .safetensors files (pix2pix export "
                                  "--format safetensors); pix2pix.load() opens every other kind")
        return cls._from_opened(open_model(Path(path), resolve_device(device)), paper_sampling, batch_size)

    @classmethod
    def from_file(cls, path: str | os.PathLike, device: str = "auto", paper_sampling: bool | None = None,
                  batch_size: int = 8) -> "Translator":
        """From any model file: run folder, checkpoint, ``.safetensors``, ``.onnx``, ``.pt2``, ``.ts``.

        ``paper_sampling=None`` means the file's own mode (eval for weights). Exported programs
        cannot change mode: asking for the other one is a :class:`ConfigError` naming the file.
        """
        opened = open_model(Path(path), resolve_device(device))
        try:
            return cls._from_opened(opened, paper_sampling, batch_size)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None

    @classmethod
    def _from_opened(cls, opened: Opened, paper_sampling: bool | None, batch_size: int) -> "Translator":
        return cls(opened.generator, opened.config, opened.device, paper_sampling, batch_size, opened.kind,
                   opened.meta)

    # ----- properties ---------------------------------------------------------------------------
    @property
    def image_size(self) -> int:
        """Side length the model was trained at (inputs are resized to it unless native_size)."""
        return self.config.data.image_size or self.config.data.crop_size

    @property
    def multiple(self) -> int:
        return self.config.model.multiple

    @property
    def input_channels(self) -> int:
        return self.config.model.input_nc

    def _set_mode(self) -> None:
        g = self.generator
        if not self.paper_sampling:
            g.eval()
            return
        g.train()  # dropout on, batch norm normalises with the batch's own statistics ...
        for m in g.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.momentum = 0.0  # ... without changing the stored running statistics

    # ----- translation --------------------------------------------------------------------------
    @torch.no_grad()
    def translate_tensor(self, x: torch.Tensor, native_size: bool = False) -> torch.Tensor:
        """(B, input_nc, H, W) floats in [-1, 1] -> (B, output_nc, H, W) in [-1, 1], any H, W."""
        if x.dim() == 3:
            return self.translate_tensor(x[None], native_size)[0]
        if x.shape[1] != self.input_channels:
            raise ValueError(f"the model takes {self.input_channels}-channel input, got {x.shape[1]} channels")
        h, w = x.shape[-2:]
        x = x.to(self.device, torch.float32)
        if native_size:
            ph, pw = (-h) % self.multiple, (-w) % self.multiple
            mode = "reflect" if ph < h and pw < w else "replicate"
            y = self._run(F.pad(x, (0, pw, 0, ph), mode=mode) if ph or pw else x)
            return y[:, :, :h, :w]
        s = self.image_size
        if (h, w) == (s, s):
            return self._run(x)
        small = (resize((x + 1) * 127.5, (s, s)) / 127.5 - 1)
        y = self._run(small)
        return resize((y + 1) * 127.5, (h, w)) / 127.5 - 1

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        outs = [self.generator(chunk) for chunk in x.split(self.batch_size)]
        return torch.cat(outs).clamp(-1, 1)

    def translate_images(self, images: Sequence[Image.Image], native_size: bool = False) -> list[Image.Image]:
        """PIL images of any sizes -> translated PIL images of the same sizes.

        Images are batched together; with native_size, those of equal size are batched together.
        """
        tensors = [image_to_tensor(im, self.input_channels) for im in images]
        results: list[Image.Image | None] = [None] * len(images)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, t in enumerate(tensors):
            key = tuple(t.shape[-2:]) if native_size else (self.image_size, self.image_size)
            groups.setdefault(key, []).append(i)
        s = self.image_size
        for key, idx in groups.items():
            if native_size:
                batch = torch.stack([tensors[i] for i in idx])
                out = self.translate_tensor(batch, native_size=True)
                for i, o in zip(idx, out):
                    results[i] = tensor_to_image(o)
            else:
                batch = torch.stack([_resize_one(tensors[i], s) for i in idx])
                out = self.translate_tensor(batch)
                for i, o in zip(idx, out):
                    h, w = tensors[i].shape[-2:]
                    results[i] = tensor_to_image(_resize_one(o, (h, w)))
        return results  # type: ignore[return-value]

    @overload
    def __call__(self, images: Image.Image, native_size: bool = False) -> Image.Image: ...
    @overload
    def __call__(self, images: torch.Tensor, native_size: bool = False) -> torch.Tensor: ...
    @overload
    def __call__(self, images: Sequence[Image.Image], native_size: bool = False) -> list[Image.Image]: ...

    def __call__(self, images, native_size: bool = False):
        """Translate PIL image(s) or a tensor; returns the same kind."""
        if isinstance(images, torch.Tensor):
            return self.translate_tensor(images, native_size)
        if isinstance(images, Image.Image):
            return self.translate_images([images], native_size)[0]
        return self.translate_images(list(images), native_size)


def _resize_one(t: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Resize one (C, H, W) tensor in [-1, 1]."""
    size = (size, size) if isinstance(size, int) else size
    if tuple(t.shape[-2:]) == tuple(size):
        return t
    return resize((t[None] + 1) * 127.5, size)[0] / 127.5 - 1


def load(path: str | os.PathLike, device: str = "auto", paper_sampling: bool | None = None) -> Translator:
    """Open any trained model as a :class:`Translator`: a run folder, a training checkpoint, or an
    exported ``.safetensors`` / ``.onnx`` / ``.pt2`` / ``.ts`` file (``pix2pix export``)."""
    return Translator.from_file(Path(path), device=device, paper_sampling=paper_sampling)


def _fixed_mode_message(paper_sampling: bool) -> str:
    mode = "with --paper-sampling" if paper_sampling else "in eval mode"
    other = "without" if paper_sampling else "with"
    return (f"this program was exported {mode} and its mode is fixed in the file; export again {other} "
            "--paper-sampling, or use the checkpoint or .safetensors file, which can run either way")


# ----- files in, files out (pix2pix translate) --------------------------------------------------
@dataclass(frozen=True)
class InputItem:
    """One thing to translate: an image file, or a pair (input side + target) in a dataset layout."""

    name: str
    path: Path
    pair: PairFile | None = None


@dataclass
class TranslateReport:
    written: int = 0
    outputs: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def collect_inputs(specs: Sequence[str], paired: bool = False) -> list[InputItem]:
    """Expand FILE / DIR / GLOB arguments into items, in a stable order; errors name the argument.

    With ``paired``, a DIR may be a split in either dataset layout and files are AB images.
    """
    items: list[InputItem] = []
    for spec in specs:
        p = Path(spec)
        if p.is_dir():
            if paired:
                items += [InputItem(pf.name, pf.a, pf) for pf in pairs_in_folder(p)]
            else:
                files = sorted(f for f in p.iterdir() if f.is_file() and is_image_file(f))
                if not files:
                    raise DataError(f"{p}: no image files to translate")
                items += [InputItem(f.stem, f) for f in files]
        elif p.is_file():
            items.append(InputItem(p.stem, p, PairFile(p.stem, p) if paired else None))
        else:
            matches = sorted(Path(m) for m in glob.glob(spec, recursive=True))
            matches = [m for m in matches if m.is_file() and is_image_file(m)]
            if not matches:
                raise DataError(f"{spec}: no such file or folder, and no image files match it as a pattern")
            items += [InputItem(m.stem, m, PairFile(m.stem, m) if paired else None) for m in matches]
    return items


def _unique_names(items: Sequence[InputItem]) -> list[str]:
    """Output stems; a repeated stem gets _2, _3, ... so no result overwrites another."""
    seen: dict[str, int] = {}
    names = []
    for it in items:
        n = seen.get(it.name, 0) + 1
        seen[it.name] = n
        names.append(it.name if n == 1 else f"{it.name}_{n}")
    return names


def _read_item(item: InputItem, translator: Translator) -> tuple[Image.Image, Image.Image | None]:
    """(input image, target image or None) for one item; raises BadImage/DataError naming the file."""
    if item.pair is None:  # converted as training data is (16-bit, CMYK, palette ...): see data/images.py
        return _array_image(to_array(open_image(item.path), translator.input_channels)), None
    m, direction = translator.config.model, translator.config.data.direction
    a_nc, b_nc = (m.input_nc, m.output_nc) if direction == "AtoB" else (m.output_nc, m.input_nc)
    a, b = read_pair(item.pair, a_nc, b_nc)
    src, tgt = (a, b) if direction == "AtoB" else (b, a)
    return _array_image(src), _array_image(tgt)


def _array_image(arr) -> Image.Image:
    return Image.fromarray(arr[:, :, 0], "L") if arr.shape[2] == 1 else Image.fromarray(arr, "RGB")


def translate_files(translator: Translator, items: Sequence[InputItem], out_dir: str | os.PathLike, *,
                    side_by_side: bool = False, native_size: bool = False, strict: bool = False,
                    progress: bool = True) -> TranslateReport:
    """Translate ``items`` in batches and write ``out_dir/NAME.png`` for each (atomically).

    Unreadable inputs are skipped with a warning (or raise with ``strict``); nothing partial is
    ever written.
    """
    from tqdm.auto import tqdm

    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create the output folder {out}: {e.strerror or e}") from None
    report = TranslateReport()
    names = _unique_names(items)
    bs = max(1, translator.batch_size)
    with tqdm(total=len(items), desc="translate", unit="img", disable=not progress, leave=False) as bar:
        for start in range(0, len(items), bs):
            chunk, loaded = list(zip(items[start:start + bs], names[start:start + bs])), []
            for item, name in chunk:
                try:
                    loaded.append((name, *_read_item(item, translator)))
                except DataError as e:
                    if strict:
                        raise
                    report.skipped.append(str(e))
                    log.warning("skipped %s", e)
            if loaded:
                outputs = translator.translate_images([x[1] for x in loaded], native_size=native_size)
                for (name, src, tgt), result in zip(loaded, outputs):
                    if side_by_side:
                        result = side_by_side_image([src, result] + ([tgt] if tgt is not None else []))
                    try:
                        path = save_image(result, out / f"{name}.png")  # atomic: never a partial file
                    except OSError as e:
                        raise OutputError(f"could not write {out / f'{name}.png'}: {e.strerror or e}; "
                                          f"{report.written} results were written before it") from None
                    report.outputs.append(path)
                    report.written += 1
            bar.update(len(chunk))
    if report.skipped:
        log.warning("skipped %d of %d inputs that could not be read (use --strict to stop instead)",
                    len(report.skipped), len(items))
    return report
