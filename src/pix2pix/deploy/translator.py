"""Translator: a trained generator that turns input images into output images.

    pix2pix translate --checkpoint runs/facades --input photos/ --output out/ --side-by-side

    import pix2pix
    t = pix2pix.load("runs/facades")
    out = t(Image.open("labels.png"))          # PIL in -> PIL out (same size as the input)
    out = t(torch.rand(4, 3, 256, 256) * 2 - 1)   # tensor in [-1, 1] -> tensor in [-1, 1]

Sizes: by default each image is resized to the model's training size (bicubic), translated, and the
result resized back to the input's size. With ``native_size=True`` the image is reflect-padded to a
multiple of 2**depth, translated at its own resolution, and cropped back (no resampling at all).

Modes: eval mode by default (dropout off, batch-norm running statistics) so the same input always
gives the same output. ``paper_sampling=True`` runs the paper's test-time sampling: dropout on and
batch normalisation with each image's own statistics (train mode on a batch of one), whatever the
batch size, so batching never changes an image's result (``models/sampling.py``). The dropout noise
is random from call to call, or, with ``seed``, drawn per image: the k-th image this Translator
translates (k = 0, 1, ...) uses the seed ``image_seed(seed, k)``, so a run over a dataset gives the
same outputs at any batch size. Per-image seeds need the weights (checkpoint or safetensors): an
exported program draws its noise from its runtime.

Model files: :func:`load` is the one way to open a model of any kind (a run folder, a training
checkpoint, an exported ``.safetensors``, ``.onnx``, ``.pt2`` or ``.ts`` file, a Hugging Face
folder, the reference implementation's ``*_net_G.pth``, a downloaded model's name; ``formats/`` has
one reader per kind). The Translator only needs a callable generator and the config, so every
kind goes through the same resizing, padding and batching.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Sequence, Union, overload

import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from ..config import TrainConfig
from ..data.augment import resize_unit
from ..data.convert import image_to_tensor, tensor_to_image
from ..devices import resolve_device
from ..errors import ConfigError
from ..models.sampling import image_seed, per_image_seeds, with_explicit_sampling
from .formats import open_model

ImageLike = Union[Image.Image, torch.Tensor]


class Translator:
    """Wraps a generator with its config; call it on PIL images or tensors.

    ``generator`` is any callable (B, input_nc, H, W) -> (B, output_nc, H, W) on floats in [-1, 1]
    with H, W multiples of ``2 ** depth``: an ``nn.Module`` (weights from a checkpoint or safetensors
    file; paper sampling runs an explicit-ops copy of it) or an exported :class:`~pix2pix.deploy.formats.Program` (ONNX, TorchScript,
    torch.export), whose mode was fixed when it was exported. ``paper_sampling=None`` means eval mode
    for a module and the program's own mode for a program; asking a program for the other mode is a
    :class:`ConfigError`.
    """

    def __init__(self, generator: Callable[[torch.Tensor], torch.Tensor], config: TrainConfig,
                 device: torch.device | str = "cpu", paper_sampling: bool | None = None, batch_size: int = 8,
                 kind: str = "checkpoint", meta: dict[str, Any] | None = None, seed: int | None = None):
        self.config = config
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.kind = kind  # "checkpoint", "safetensors", "onnx", "torch-export", "torchscript"
        self.meta = meta or {}
        self.is_module = isinstance(generator, nn.Module)
        self.one_at_a_time = False  # a paper-sampling program of an older export: batch statistics
        if self.is_module:
            self.paper_sampling = bool(paper_sampling)
            # the paper's sampling runs an explicit-ops copy (per-image statistics, sampled dropout);
            # the module handed in is left as it is
            self.generator = (with_explicit_sampling(generator) if self.paper_sampling else generator.eval()).to(
                self.device)
        else:
            self.generator = generator
            self.paper_sampling = bool(getattr(generator, "paper_sampling", False))
            if paper_sampling is not None and paper_sampling != self.paper_sampling:
                raise ConfigError(_fixed_mode_message(self.paper_sampling))
            self.one_at_a_time = self.paper_sampling and getattr(generator, "meta", {}).get("statistics") != "per_image"
        self.seed: int | None = None
        self.next_index = 0
        self.reseed(seed)

    # ----- properties ---------------------------------------------------------------------------
    @property
    def image_size(self) -> int:
        """Side length the model was trained at (inputs are resized to it unless native_size)."""
        return self.config.data.model_size

    @property
    def multiple(self) -> int:
        return self.config.model.multiple

    @property
    def input_channels(self) -> int:
        return self.config.model.input_nc

    def reseed(self, seed: int | None) -> None:
        """Draw the paper-sampling noise per image from ``seed`` (None: unseeded), counting images
        from 0 again."""
        if seed is not None and self.paper_sampling and not self.is_module:
            raise ConfigError("per-image seeds need the weights (a checkpoint or .safetensors file): an exported "
                              "program draws its dropout noise from its runtime")
        self.seed, self.next_index = seed, 0

    # ----- Hugging Face folders -----------------------------------------------------------------
    def save_pretrained(self, folder: str | os.PathLike, *, run_dir: str | os.PathLike | None = None,
                        half: bool = False) -> Path:
        """Write ``folder``: config.json + model.safetensors + README.md (``formats/pretrained.py``);
        ``run_dir``: where to look for evaluation scores for the model card."""
        from .export import save_pretrained

        return save_pretrained(self.generator, self.config, folder, source=self.meta.get("source"),
                               run_dir=run_dir, half=half)

    @classmethod
    def from_pretrained(cls, name: str | os.PathLike, device: str = "auto", paper_sampling: bool | None = None,
                        revision: str | None = None) -> "Translator":
        """A Hugging Face folder, or ``OWNER/NAME`` on the Hub (with the hub extra)."""
        from .hub import download, looks_like_repo_id

        if isinstance(name, str) and looks_like_repo_id(name):
            name = download(name, revision)
        return load(name, device=device, paper_sampling=paper_sampling)

    def push_to_hub(self, repo_id: str, *, private: bool | None = None, token: str | None = None) -> str:
        """save_pretrained into a temporary folder and upload it to ``repo_id`` (hub extra); its URL."""
        from .hub import push

        return push(self.save_pretrained, repo_id, private=private, token=token)

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
        y = self._run(resize_unit(x, (s, s)))
        return resize_unit(y, (h, w))

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        outs = []
        for chunk in x.split(1 if self.one_at_a_time else self.batch_size):
            if self.paper_sampling and self.seed is not None:
                seeds = [image_seed(self.seed, self.next_index + k) for k in range(len(chunk))]
                with per_image_seeds(self.generator, seeds, self.device):
                    outs.append(self.generator(chunk))
            else:
                outs.append(self.generator(chunk))
            self.next_index += len(chunk)
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
    return resize_unit(t[None], size)[0]


def load(path: str | os.PathLike, device: str = "auto", paper_sampling: bool | None = None,
         batch_size: int = 8, seed: int | None = None, *, trust_program: bool = False) -> Translator:
    """Open any trained model as a :class:`Translator`: a run folder, a training checkpoint, an
    exported ``.safetensors`` / ``.onnx`` / ``.pt2`` / ``.ts`` file (``pix2pix export``), a Hugging
    Face folder, a reference ``*_net_G.pth``, or a pretrained model's name (``pix2pix download --model``).

    ``paper_sampling=None`` means the file's own mode (eval for weights). Exported programs
    cannot change mode: asking for the other one is a :class:`ConfigError` naming the file.
    ``seed``: per-image dropout seeds for paper sampling (see the module docstring).
    ``.pt2`` and ``.ts`` files are programs that can run code or touch files: they are refused
    unless ``trust_program=True`` (checkpoints, safetensors, Hugging Face folders, reference files
    and ONNX files need no opt-in).
    """
    opened = open_model(Path(path), resolve_device(device), trust_program=trust_program)
    try:
        return Translator(opened.generator, opened.config, opened.device, paper_sampling, batch_size, opened.kind,
                          opened.meta, seed)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def _fixed_mode_message(paper_sampling: bool) -> str:
    mode = "with --paper-sampling" if paper_sampling else "in eval mode"
    other = "without" if paper_sampling else "with"
    return (f"this program was exported {mode} and its mode is fixed in the file; export again {other} "
            "--paper-sampling, or use the checkpoint or .safetensors file, which can run either way")
