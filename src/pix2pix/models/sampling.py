"""The paper's test-time sampling written as explicit tensor ops, so exported programs keep it.

The paper runs the generator at test time with dropout on and batch normalisation in train mode on
a batch of one image (appendix 6.1; the reference's ``test.py`` has ``batch_size = 1``), so every
image is normalised by its own statistics. :func:`with_explicit_sampling` returns a copy of any
generator whose ``BatchNorm2d`` layers compute, per image and per channel, the mean and (biased)
variance over the image's H x W positions, and whose ``Dropout`` layers draw their mask with
``rand_like``. That is exactly ``BatchNorm2d`` in train mode applied to each image alone, so a
batch of N images gives the N results the paper's batch-of-one loop would, whatever N is.

Why explicit ops: exporters do not reliably keep train-mode behaviour. ``torch.onnx.export``
(dynamo) folds batch norm into the convolutions with the *running* statistics and exports dropout
as a no-op, silently giving an eval-mode model. Plain reductions and ``rand_like`` survive
TorchScript, torch.export and ONNX (``ReduceMean``, ``RandomUniformLike``). Instance norm needs no
change: it already uses each image's own statistics.

Seeded noise, per image: inside ``with per_image_seeds(g, seeds):`` each image of the next
forward passes draws its dropout masks from its own ``torch.Generator`` (seeded with its entry of
``seeds``), layer after layer, so an image's noise depends on its seed alone and not on the batch
it shares. :func:`image_seed` is the seed of image ``index`` of a run seeded with ``seed``.

Numerically the copy equals the train-mode generator run on one image at a time (with the running
statistics untouched): the tests check this with dropout switched off, to 1e-5.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
from typing import Iterator, Sequence

import torch
import torch.nn as nn


class PerImageNorm(nn.Module):
    """Batch norm with each image's own statistics: (B, C, H, W) -> same shape.

    Mean and biased variance over (H, W) per image and channel, i.e. ``BatchNorm2d`` in train mode
    on a batch of one, applied to every image separately; then the layer's learned scale and shift.
    """

    def __init__(self, bn: nn.BatchNorm2d):
        super().__init__()
        self.eps = bn.eps
        self.weight = nn.Parameter(bn.weight.detach().clone()) if bn.weight is not None else None
        self.bias = nn.Parameter(bn.bias.detach().clone()) if bn.bias is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(2, 3), keepdim=True)
        var = (x - mean).pow(2).mean(dim=(2, 3), keepdim=True)
        y = (x - mean) * torch.rsqrt(var + self.eps)
        if self.weight is not None:
            y = y * self.weight[None, :, None, None]
        if self.bias is not None:
            y = y + self.bias[None, :, None, None]
        return y


class SampledDropout(nn.Module):
    """Dropout that is always on: keep each value with probability 1 - p, scaled by 1 / (1 - p).

    ``keep_all = True`` replaces the random mask by ones (used only to verify exports exactly).
    ``generators`` (set by :func:`per_image_seeds`) holds one ``torch.Generator`` per image of the
    batch; without it the mask comes from ``rand_like`` (torch's global generator).
    """

    def __init__(self, p: float):
        super().__init__()
        self.p = p
        self.keep_all = False
        self.generators: list[torch.Generator] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = 1.0 / (1.0 - self.p)
        if self.keep_all:
            return x * scale
        if self.generators is None:
            u = torch.rand_like(x)
        else:
            if len(self.generators) != x.shape[0]:
                raise ValueError(f"{len(self.generators)} per-image seeds for a batch of {x.shape[0]} images")
            u = torch.stack([torch.rand(x.shape[1:], generator=g, device=x.device, dtype=x.dtype)
                             for g in self.generators])
        keep = (u >= self.p).to(x.dtype)
        return x * keep * scale


def with_explicit_sampling(generator: nn.Module) -> nn.Module:
    """A copy of ``generator`` (in eval mode) whose BatchNorm2d and Dropout layers are replaced by
    :class:`PerImageNorm` and :class:`SampledDropout`; every other layer is kept as it is, so any
    generator built from those modules (U-Net, ResNet, ...) gets the paper's sampling."""
    g = copy.deepcopy(generator).eval()
    for parent in list(g.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.BatchNorm2d):
                setattr(parent, name, PerImageNorm(child))
            elif isinstance(child, nn.Dropout) and child.p > 0:
                setattr(parent, name, SampledDropout(child.p))
    return g


def keep_all_dropout(generator: nn.Module) -> nn.Module:
    """A copy of an explicit-sampling generator with every dropout mask set to ones."""
    g = copy.deepcopy(generator)
    for m in g.modules():
        if isinstance(m, SampledDropout):
            m.keep_all = True
    return g


def image_seed(seed: int, index: int) -> int:
    """The dropout seed of image ``index`` (0, 1, ...) of a run seeded with ``seed``: the first 8
    bytes of BLAKE2b(``"seed:index"``), below 2**63. A hash rather than arithmetic such as
    ``seed * 2**32 + index`` because torch's CPU generator keeps only the low 32 bits of a seed,
    which would give every ``seed`` the same noise."""
    digest = hashlib.blake2b(f"{int(seed)}:{int(index)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % 2**63


@contextlib.contextmanager
def per_image_seeds(generator: nn.Module, seeds: Sequence[int], device: torch.device | str = "cpu") -> Iterator[None]:
    """Within the block, image i of each forward pass of an explicit-sampling ``generator`` draws
    its dropout masks from a ``torch.Generator`` seeded with ``seeds[i]`` (one forward per block:
    the generators advance as masks are drawn)."""
    gens = [torch.Generator(device=device).manual_seed(s) for s in seeds]
    layers = [m for m in generator.modules() if isinstance(m, SampledDropout)]
    for m in layers:
        m.generators = gens
    try:
        yield
    finally:
        for m in layers:
            m.generators = None
