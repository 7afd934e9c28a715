"""Generator shapes and ranges for several depths; PatchGAN receptive fields and output sizes."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from pix2pix.config import ModelConfig
from pix2pix.errors import ConfigError
from pix2pix.models import build_discriminator, build_generator


@pytest.mark.parametrize("netG,size", [("unet_32", 32), ("unet_64", 64), ("unet_128", 128), ("unet_64", 128)])
@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_generator_shape_and_range(netG, size, norm):
    g = build_generator(ModelConfig(netG=netG, ngf=4, norm=norm, output_nc=1))
    x = torch.rand(2, 3, size, size) * 2 - 1
    y = g(x)
    assert y.shape == (2, 1, size, size)
    assert y.min() >= -1 and y.max() <= 1


def test_generator_depth_and_dropout_placement():
    g = build_generator(ModelConfig(netG="unet_256", ngf=2))
    assert len(g.downs) == 8  # unet_256: 8 downsamplings, 256 -> 1
    p = [up.dropout.p if isinstance(up.dropout, nn.Dropout) else 0.0 for up in g.ups]
    assert p == [0.5, 0.5, 0.5, 0, 0, 0, 0]  # the three innermost decoder blocks
    assert isinstance(g.downs[0].norm, nn.Identity) and isinstance(g.downs[-1].norm, nn.Identity)
    assert isinstance(g.downs[1].norm, nn.BatchNorm2d)
    ref = build_generator(ModelConfig(netG="unet_256", ngf=2, dropout_placement="reference"))
    p = [up.dropout.p if isinstance(up.dropout, nn.Dropout) else 0.0 for up in ref.ups]
    assert p == [0, 0.5, 0.5, 0.5, 0, 0, 0]  # the PyTorch reference's: one block further out


@pytest.mark.parametrize("netG,blocks", [("resnet_6blocks", 6), ("resnet_9blocks", 9)])
def test_resnet_generator_takes_any_multiple_of_four(netG, blocks):
    cfg = ModelConfig(netG=netG, ngf=4, norm="instance", input_nc=1)
    assert (cfg.n_blocks, cfg.depth, cfg.multiple) == (blocks, 2, 4)
    g = build_generator(cfg)
    assert len(g.blocks) == blocks and all(isinstance(b.dropout, nn.Dropout) for b in g.blocks)  # dropout 0.5
    for h, w in ((32, 32), (36, 20), (8, 12)):  # (reflection padding needs 2 pixels at 1/4 scale)
        y = g.eval()(torch.rand(2, 1, h, w) * 2 - 1)
        assert y.shape == (2, 3, h, w) and y.min() >= -1 and y.max() <= 1
    assert ModelConfig(netG="unet_256").n_blocks is None


def test_generator_weights_follow_the_paper_init():
    g = build_generator(ModelConfig(netG="unet_64", ngf=16))
    w = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))])
    assert abs(w.mean().item()) < 1e-3 and abs(w.std().item() - 0.02) < 1e-3


def without_skips(unet):
    """The same U-Net with every skip connection fed zeros instead of the encoder's features."""
    def forward(x):
        skips, h = [], x
        for down in unet.downs:
            h = down(h)
            skips.append(h)
        h = skips.pop()
        for up in unet.ups:
            h = torch.cat([torch.zeros_like(skips.pop()), up(h)], dim=1)
        return unet.out(h)
    return forward


def local_share(forward, size: int = 64, at: tuple[int, int] = (20, 37)) -> float:
    """Share of an output pixel's input gradient that comes from the 7x7 input window around it."""
    x = (torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1).requires_grad_(True)
    forward(x)[0, :, at[0], at[1]].sum().backward()
    g = x.grad[0].abs().sum(0)
    return float(g[at[0] - 3:at[0] + 4, at[1] - 3:at[1] + 4].sum() / g.sum())


def test_skip_connections_carry_fine_detail():
    """Through the skips an output pixel depends mostly on the input right around it; through the
    bottleneck alone (skips zeroed) that locality is gone. The same measurement tells them apart."""
    torch.manual_seed(0)
    g = build_generator(ModelConfig(netG="unet_64", ngf=8, norm="none", dropout=0.0))
    assert local_share(g) > 0.5
    assert local_share(without_skips(g)) < 0.1
    assert g.out.conv.in_channels == 2 * 8  # decoder features + encoder skip


def test_bad_generator_name_and_size_are_config_errors():
    with pytest.raises(ConfigError, match="netG: .* is not unet_N .* or resnet_Nblocks"):
        ModelConfig(netG="resnet_9")
    with pytest.raises(ConfigError, match="netG: 'vgg16' is not"):
        ModelConfig(netG="vgg16")
    with pytest.raises(ConfigError, match="power of two"):
        ModelConfig(netG="unet_100")


def receptive_field(d: nn.Module, size: int) -> int:
    """Extent of the input region that influences the centre output cell (from its gradient)."""
    x = torch.randn(1, 6, size, size, requires_grad=True)
    out = d(x)
    h, w = out.shape[-2:]
    out[0, 0, h // 2, w // 2].backward()
    rows = (x.grad.abs().sum(dim=(0, 1, 3)) > 0).nonzero().flatten()
    cols = (x.grad.abs().sum(dim=(0, 1, 2)) > 0).nonzero().flatten()
    assert rows[-1] - rows[0] == cols[-1] - cols[0]
    return int(rows[-1] - rows[0] + 1)


@pytest.mark.parametrize("patch", [1, 16, 34, 70, 142, 286])
def test_discriminator_receptive_field_is_what_the_flag_says(patch):
    d = build_discriminator(ModelConfig(patch=patch, ndf=2, norm="none"))
    size = 64 if patch == 1 else 2 * patch + 64
    assert receptive_field(d, size) == patch


@pytest.mark.parametrize("patch,map_size", [(1, 256), (16, 126), (34, 62), (70, 30), (142, 14), (286, 6)])
def test_discriminator_output_size_for_256_input(patch, map_size):
    d = build_discriminator(ModelConfig(patch=patch, ndf=2)).eval()
    assert d(torch.zeros(1, 6, 256, 256)).shape == (1, 1, map_size, map_size)


def test_discriminator_sees_input_and_output_channels():
    d = build_discriminator(ModelConfig(input_nc=1, output_nc=3, ndf=2))
    assert d.blocks[0].conv.in_channels == 4
