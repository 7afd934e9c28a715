"""U-Net generator (paper section 3.2.1 and appendix 6.1.1).

For ``unet_256`` (depth 8, ngf 64) on a 256x256 input::

    encoder  C64-C128-C256-C512-C512-C512-C512-C512        256 -> 1 (each step halves H and W)
    decoder  CD512-CD1024-CD1024-C1024-C1024-C512-C256-C128 -> 3 channels, tanh
             (decoder widths count the skip concatenation; D = dropout 0.5)

Encoder block i's output is concatenated to the decoder's output at the same resolution. The first
encoder block has no norm, the innermost has no norm either (its output is 1x1, where batch norm of
a single image would be zero), and the last decoder block ends in tanh, so outputs lie in [-1, 1].
Dropout sits in the three innermost decoder blocks, as in the paper's original Torch code
(``--dropout-placement paper``); the PyTorch reference puts it one block further out
(``reference``: decoder blocks 1 .. depth-5), which imported reference files keep.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from ..config import ModelConfig
from .layers import NormLayer, init_weights, norm_layer
from .resnet import ResnetGenerator, build_resnet


class DownBlock(nn.Module):
    """[LeakyReLU(0.2)] -> Conv 4x4 stride 2 -> [norm]: (B, cin, H, W) -> (B, cout, H/2, W/2)."""

    def __init__(self, cin: int, cout: int, norm: NormLayer, *, act: bool = True, normed: bool = True,
                 bias: bool = False):
        super().__init__()
        self.act = nn.LeakyReLU(0.2) if act else nn.Identity()
        self.conv = nn.Conv2d(cin, cout, kernel_size=4, stride=2, padding=1, bias=bias)
        self.norm = norm(cout) if normed else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(self.act(x)))


class UpBlock(nn.Module):
    """ReLU -> ConvTranspose 4x4 stride 2 -> norm -> [dropout]: (B, cin, H, W) -> (B, cout, 2H, 2W)."""

    def __init__(self, cin: int, cout: int, norm: NormLayer, *, dropout: float = 0.0, bias: bool = False):
        super().__init__()
        self.act = nn.ReLU()
        self.conv = nn.ConvTranspose2d(cin, cout, kernel_size=4, stride=2, padding=1, bias=bias)
        self.norm = norm(cout)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.norm(self.conv(self.act(x))))


class OutputBlock(nn.Module):
    """ReLU -> ConvTranspose 4x4 stride 2 -> tanh: the last decoder step, values in [-1, 1]."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.act = nn.ReLU()
        self.conv = nn.ConvTranspose2d(cin, cout, kernel_size=4, stride=2, padding=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv(self.act(x)))


class UNet(nn.Module):
    """Encoder-decoder with skips. Input sides must be multiples of ``2 ** depth``.

    forward: (B, in_channels, H, W) in [-1, 1] -> (B, out_channels, H, W) in [-1, 1].

    ``dropout_blocks``: the decoder blocks with dropout, as indices into ``ups`` (0 = innermost);
    default the ``n_dropout`` innermost.
    """

    def __init__(self, in_channels: int, out_channels: int, depth: int = 8, ngf: int = 64,
                 norm: str = "batch", dropout: float = 0.5, n_dropout: int = 3,
                 dropout_blocks: Sequence[int] | None = None):
        super().__init__()
        if depth < 2:
            raise ValueError(f"U-Net depth must be >= 2, got {depth}")
        drop_at = set(range(n_dropout) if dropout_blocks is None else dropout_blocks)
        if any(not 0 <= j < depth - 1 for j in drop_at):
            raise ValueError(f"dropout_blocks must lie in [0, {depth - 2}], got {sorted(drop_at)}")
        self.depth = depth
        make_norm = norm_layer(norm)
        bias = norm != "batch"  # batch norm has its own shift
        width = [ngf * min(2**i, 8) for i in range(depth)]  # encoder output channels per level

        downs = [DownBlock(in_channels, width[0], make_norm, act=False, normed=False, bias=bias)]
        for i in range(1, depth):
            innermost = i == depth - 1
            downs.append(DownBlock(width[i - 1], width[i], make_norm, normed=not innermost, bias=bias))
        self.downs = nn.ModuleList(downs)

        ups = []
        for j, i in enumerate(range(depth - 1, 0, -1)):  # decoder level i outputs width[i - 1]
            cin = width[i] if i == depth - 1 else 2 * width[i]
            p = dropout if j in drop_at else 0.0
            ups.append(UpBlock(cin, width[i - 1], make_norm, dropout=p, bias=bias))
        self.ups = nn.ModuleList(ups)
        self.out = OutputBlock(2 * width[0], out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        h = x
        for down in self.downs:
            h = down(h)
            skips.append(h)  # level i: (B, width[i], H / 2^(i+1), W / 2^(i+1))
        h = skips.pop()  # bottleneck: (B, width[-1], H / 2^depth, W / 2^depth)
        for up in self.ups:
            h = torch.cat([skips.pop(), up(h)], dim=1)  # (B, 2 * width[i-1], ...)
        return self.out(h)


def reference_dropout_blocks(depth: int) -> tuple[int, ...]:
    """Where the PyTorch reference's UnetGenerator puts Dropout(0.5), as ``ups`` indices.

    It adds dropout to the ``depth - 5`` intermediate ngf*8 blocks built in its loop, never to the
    innermost: ``ups[1] .. ups[depth-5]``, i.e. (1, 2, 3) for unet_256, (1, 2) for unet_128, none
    for depth 5.
    """
    return tuple(range(1, depth - 4))


def build_generator(cfg: ModelConfig) -> UNet | ResnetGenerator:
    """The generator ``cfg.netG`` names (``unet_N`` or ``resnet_Nblocks``), with the paper's init."""
    if cfg.n_blocks is not None:
        return build_resnet(cfg.input_nc, cfg.output_nc, cfg.n_blocks, cfg.ngf, cfg.norm, cfg.dropout)
    blocks = reference_dropout_blocks(cfg.depth) if cfg.dropout_placement == "reference" else None
    g = UNet(cfg.input_nc, cfg.output_nc, depth=cfg.depth, ngf=cfg.ngf, norm=cfg.norm, dropout=cfg.dropout,
             dropout_blocks=blocks)
    init_weights(g)
    return g
