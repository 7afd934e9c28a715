"""The paper's test-time sampling written as explicit tensor ops, so exported programs keep it.

The paper runs the generator at test time with dropout on and batch normalisation using the
statistics of the test batch (appendix 6.1). In PyTorch that is ``train()`` mode. Exporters do not
reliably keep train-mode behaviour: ``torch.onnx.export`` (dynamo) folds batch norm into the
convolutions with the *running* statistics and exports dropout as a no-op, silently giving an
eval-mode model. :func:`with_explicit_sampling` returns a copy whose batch norms compute the batch
mean and variance with plain reductions and whose dropouts draw their mask with ``rand_like``;
those ops survive TorchScript, torch.export and ONNX (``ReduceMean``, ``RandomUniformLike``).

Numerically the copy equals the train-mode generator (with the running statistics untouched): the
tests check this with dropout switched off, to 1e-6.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn


class BatchStatNorm(nn.Module):
    """Batch norm with the current batch's statistics: (B, C, H, W) -> same shape.

    Mean and biased variance over (B, H, W) per channel, as ``BatchNorm2d`` in train mode.
    """

    def __init__(self, bn: nn.BatchNorm2d):
        super().__init__()
        self.eps = bn.eps
        self.weight = nn.Parameter(bn.weight.detach().clone()) if bn.weight is not None else None
        self.bias = nn.Parameter(bn.bias.detach().clone()) if bn.bias is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        var = (x - mean).pow(2).mean(dim=(0, 2, 3), keepdim=True)
        y = (x - mean) * torch.rsqrt(var + self.eps)
        if self.weight is not None:
            y = y * self.weight[None, :, None, None]
        if self.bias is not None:
            y = y + self.bias[None, :, None, None]
        return y


class SampledDropout(nn.Module):
    """Dropout that is always on: keep each value with probability 1 - p, scaled by 1 / (1 - p).

    ``keep_all = True`` replaces the random mask by ones (used only to verify exports exactly).
    """

    def __init__(self, p: float):
        super().__init__()
        self.p = p
        self.keep_all = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = 1.0 / (1.0 - self.p)
        if self.keep_all:
            return x * scale
        keep = (torch.rand_like(x) >= self.p).to(x.dtype)
        return x * keep * scale


def with_explicit_sampling(generator: nn.Module) -> nn.Module:
    """A copy of ``generator`` (in eval mode) whose BatchNorm2d and Dropout layers are replaced by
    :class:`BatchStatNorm` and :class:`SampledDropout`. Instance norm needs no change: it uses each
    image's own statistics in both modes."""
    g = copy.deepcopy(generator).eval()
    for parent in list(g.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.BatchNorm2d):
                setattr(parent, name, BatchStatNorm(child))
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
