"""ResNet generator (Johnson et al. 2016), the reference implementation's ``resnet_Nblocks``.

For ``resnet_9blocks`` (ngf 64) on a 256x256 input::

    stem    reflect-pad 3, conv 7x7 -> 64, norm, ReLU                256
    down    conv 3x3 stride 2 -> 128, norm, ReLU                     128
            conv 3x3 stride 2 -> 256, norm, ReLU                      64
    blocks  9 x (x + [pad, conv 3x3, norm, ReLU, (dropout), pad, conv 3x3, norm](x))
    up      convT 3x3 stride 2 (output_padding 1) -> 128, norm, ReLU  128
            convT 3x3 stride 2 (output_padding 1) -> 64, norm, ReLU   256
    head    reflect-pad 3, conv 7x7 -> out channels (with bias), tanh

The layer order and paddings are the reference's, so its weights load one to one
(``deploy/formats/reference_keys.py`` has the key table). Input sides must be multiples of 4.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .layers import NormLayer, init_weights, norm_layer


class ConvNormReLU(nn.Module):
    """[reflect pad] -> Conv (or ConvTranspose) -> norm -> ReLU."""

    def __init__(self, conv: nn.Module, norm: nn.Module, pad: int = 0):
        super().__init__()
        self.pad = nn.ReflectionPad2d(pad) if pad else nn.Identity()
        self.conv = conv
        self.norm = norm
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(self.pad(x))))


class ResidualBlock(nn.Module):
    """x + [pad, conv 3x3, norm, ReLU, (dropout), pad, conv 3x3, norm](x): (B, C, H, W) -> same shape."""

    def __init__(self, dim: int, norm: NormLayer, *, bias: bool, dropout: float = 0.0):
        super().__init__()
        self.pad1 = nn.ReflectionPad2d(1)
        self.conv1 = nn.Conv2d(dim, dim, kernel_size=3, bias=bias)
        self.norm1 = norm(dim)
        self.act = nn.ReLU()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.pad2 = nn.ReflectionPad2d(1)
        self.conv2 = nn.Conv2d(dim, dim, kernel_size=3, bias=bias)
        self.norm2 = norm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dropout(self.act(self.norm1(self.conv1(self.pad1(x)))))
        return x + self.norm2(self.conv2(self.pad2(h)))


class OutputHead(nn.Module):
    """reflect pad 3 -> Conv 7x7 (with bias) -> tanh: values in [-1, 1]."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.pad = nn.ReflectionPad2d(3)
        self.conv = nn.Conv2d(cin, cout, kernel_size=7, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv(self.pad(x)))


class ResnetGenerator(nn.Module):
    """forward: (B, in_channels, H, W) in [-1, 1] -> (B, out_channels, H, W) in [-1, 1]; H, W multiples of 4.

    Convolutions carry a bias unless batch norm follows them (the head always has one), as in our U-Net.
    """

    def __init__(self, in_channels: int, out_channels: int, n_blocks: int = 9, ngf: int = 64,
                 norm: str = "batch", dropout: float = 0.0):
        super().__init__()
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        self.depth = 2  # stride-2 downsamplings: sides must be multiples of 4
        make_norm = norm_layer(norm)
        bias = norm != "batch"
        self.stem = ConvNormReLU(nn.Conv2d(in_channels, ngf, kernel_size=7, bias=bias), make_norm(ngf), pad=3)
        self.down = nn.ModuleList(
            ConvNormReLU(nn.Conv2d(ngf * 2**i, ngf * 2**(i + 1), kernel_size=3, stride=2, padding=1, bias=bias),
                         make_norm(ngf * 2**(i + 1)))
            for i in range(2))
        self.blocks = nn.ModuleList(
            ResidualBlock(ngf * 4, make_norm, bias=bias, dropout=dropout) for _ in range(n_blocks))
        self.up = nn.ModuleList(
            ConvNormReLU(nn.ConvTranspose2d(ngf * 2**(2 - i), ngf * 2**(1 - i), kernel_size=3, stride=2,
                                            padding=1, output_padding=1, bias=bias),
                         make_norm(ngf * 2**(1 - i)))
            for i in range(2))
        self.head = OutputHead(ngf, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)          # (B, ngf, H, W)
        for layer in self.down:   # -> (B, 4 ngf, H/4, W/4)
            h = layer(h)
        for block in self.blocks:
            h = block(h)
        for layer in self.up:     # -> (B, ngf, H, W)
            h = layer(h)
        return self.head(h)


def build_resnet(in_channels: int, out_channels: int, n_blocks: int, ngf: int, norm: str,
                 dropout: float) -> ResnetGenerator:
    g = ResnetGenerator(in_channels, out_channels, n_blocks=n_blocks, ngf=ngf, norm=norm, dropout=dropout)
    init_weights(g)
    return g
