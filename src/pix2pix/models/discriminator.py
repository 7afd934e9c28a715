"""PatchGAN discriminator (paper section 3.2.2): classifies each N x N patch of a pair as real or fake.

It sees the input and a (real or generated) output concatenated along channels, and returns a map
of logits, one per patch. The receptive field N is set by the number of stride-2 layers:

    --patch   stride-2 layers   logits for a 256x256 input
       1          (pixel GAN: 1x1 convolutions)   256 x 256
      16              1                             126 x 126
      34              2                              62 x 62
      70              3                              30 x 30   (the paper's default)
     142              4                              14 x 14
     286              5                               6 x 6

Layers for n stride-2 layers (ndf 64, n = 3 is the paper's C64-C128-C256-C512):
Conv4s2(ndf) LReLU, then n-1 times Conv4s2 norm LReLU (width doubling, capped at 8 * ndf),
then Conv4s1 norm LReLU, then Conv4s1 -> 1 logit. The first layer has no norm.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ..config import PATCH_SIZES, ModelConfig
from .layers import NormLayer, init_weights, norm_layer


class ConvBlock(nn.Module):
    """Conv (k, stride s) -> [norm] -> LeakyReLU(0.2)."""

    def __init__(self, cin: int, cout: int, norm: NormLayer, *, kernel: int, stride: int, normed: bool,
                 bias: bool):
        super().__init__()
        padding = 1 if kernel == 4 else 0
        self.conv = nn.Conv2d(cin, cout, kernel_size=kernel, stride=stride, padding=padding, bias=bias)
        self.norm = norm(cout) if normed else nn.Identity()
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


class PatchDiscriminator(nn.Module):
    """forward: (B, in_channels, H, W) -> logits (B, 1, h, w), one per receptive-field patch."""

    def __init__(self, blocks: list[nn.Module], head: nn.Module, receptive_field: int):
        super().__init__()
        self.blocks = nn.Sequential(*blocks)
        self.head = head
        self.receptive_field = receptive_field

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x))


def patch_discriminator(in_channels: int, ndf: int, n_layers: int, norm: str) -> PatchDiscriminator:
    """The N x N PatchGAN with ``n_layers`` stride-2 convolutions (receptive field 16 ... 286)."""
    make_norm = norm_layer(norm)
    bias = norm != "batch"
    blocks: list[nn.Module] = [ConvBlock(in_channels, ndf, make_norm, kernel=4, stride=2, normed=False, bias=True)]
    width = ndf
    for i in range(1, n_layers):
        nxt = ndf * min(2**i, 8)
        blocks.append(ConvBlock(width, nxt, make_norm, kernel=4, stride=2, normed=True, bias=bias))
        width = nxt
    nxt = ndf * min(2**n_layers, 8)
    blocks.append(ConvBlock(width, nxt, make_norm, kernel=4, stride=1, normed=True, bias=bias))
    head = nn.Conv2d(nxt, 1, kernel_size=4, stride=1, padding=1)
    rf = {v: k for k, v in PATCH_SIZES.items()}[n_layers]
    return PatchDiscriminator(blocks, head, rf)


def pixel_discriminator(in_channels: int, ndf: int, norm: str) -> PatchDiscriminator:
    """The 1x1 PixelGAN: judges each pixel's colour given the input at that pixel only."""
    make_norm = norm_layer(norm)
    blocks: list[nn.Module] = [
        ConvBlock(in_channels, ndf, make_norm, kernel=1, stride=1, normed=False, bias=True),
        ConvBlock(ndf, 2 * ndf, make_norm, kernel=1, stride=1, normed=True, bias=norm != "batch"),
    ]
    return PatchDiscriminator(blocks, nn.Conv2d(2 * ndf, 1, kernel_size=1), 1)


def build_discriminator(cfg: ModelConfig) -> PatchDiscriminator:
    in_channels = cfg.input_nc + cfg.output_nc
    n_layers = PATCH_SIZES[cfg.patch]
    if n_layers == 0:
        d = pixel_discriminator(in_channels, cfg.ndf, cfg.norm)
    else:
        d = patch_discriminator(in_channels, cfg.ndf, n_layers, cfg.norm)
    init_weights(d)
    return d
