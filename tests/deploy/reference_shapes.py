"""Networks with the reference implementation's module structure (the Sequential indices its
``models/networks.py`` gives ``UnetGenerator``, ``ResnetGenerator`` and ``NLayerDiscriminator``),
written from the layout in ``deploy/formats/reference_keys.py``: they produce state dicts with the
reference's keys and a second forward pass to compare ours with. The files the reference itself
wrote are in ``../shared/fixtures/reference``."""

from __future__ import annotations

import torch
import torch.nn as nn


def ref_norm(kind: str, tracked: bool = False):
    if kind == "batch":
        return lambda c: nn.BatchNorm2d(c)
    if kind == "instance":
        return lambda c: nn.InstanceNorm2d(c, affine=False, track_running_stats=tracked)
    return lambda c: nn.Identity()


class RefSkip(nn.Module):
    def __init__(self, outer, inner, norm, bias, in_nc=None, sub=None, outermost=False, innermost=False,
                 dropout=False):
        super().__init__()
        self.outermost = outermost
        down = nn.Conv2d(in_nc or outer, inner, 4, 2, 1, bias=bias)
        if outermost:
            layers = [down, sub, nn.ReLU(True), nn.ConvTranspose2d(2 * inner, outer, 4, 2, 1), nn.Tanh()]
        elif innermost:
            layers = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True),
                      nn.ConvTranspose2d(inner, outer, 4, 2, 1, bias=bias), norm(outer)]
        else:
            layers = [nn.LeakyReLU(0.2, True), down, norm(inner), sub, nn.ReLU(True),
                      nn.ConvTranspose2d(2 * inner, outer, 4, 2, 1, bias=bias), norm(outer)]
            layers += [nn.Dropout(0.5)] if dropout else []
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class RefUnet(nn.Module):
    def __init__(self, in_nc, out_nc, num_downs, ngf, norm="batch", dropout=True, tracked=False):
        super().__init__()
        nl, b = ref_norm(norm, tracked), norm == "instance"
        blk = RefSkip(ngf * 8, ngf * 8, nl, b, innermost=True)
        for _ in range(num_downs - 5):
            blk = RefSkip(ngf * 8, ngf * 8, nl, b, sub=blk, dropout=dropout)
        for m in (4, 2, 1):
            blk = RefSkip(ngf * m, ngf * m * 2, nl, b, sub=blk)
        self.model = RefSkip(out_nc, ngf, nl, b, in_nc=in_nc, sub=blk, outermost=True)

    def forward(self, x):
        return self.model(x)


class RefResBlock(nn.Module):
    def __init__(self, dim, norm, bias, dropout):
        super().__init__()
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), norm(dim), nn.ReLU(True)]
        layers += [nn.Dropout(0.5)] if dropout else []
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), norm(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv_block(x)


class RefResnet(nn.Module):
    def __init__(self, in_nc, out_nc, ngf, n_blocks, norm="batch", dropout=False, tracked=False):
        super().__init__()
        nl, b = ref_norm(norm, tracked), norm == "instance"
        L = [nn.ReflectionPad2d(3), nn.Conv2d(in_nc, ngf, 7, bias=b), nl(ngf), nn.ReLU(True)]
        for m in (1, 2):
            L += [nn.Conv2d(ngf * m, ngf * m * 2, 3, 2, 1, bias=b), nl(ngf * m * 2), nn.ReLU(True)]
        L += [RefResBlock(ngf * 4, nl, b, dropout) for _ in range(n_blocks)]
        for m in (4, 2):
            L += [nn.ConvTranspose2d(ngf * m, ngf * m // 2, 3, 2, 1, output_padding=1, bias=b), nl(ngf * m // 2),
                  nn.ReLU(True)]
        L += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*L)

    def forward(self, x):
        return self.model(x)


class RefNLayerD(nn.Module):
    """The reference's PatchGAN discriminator (what a *_net_D.pth holds)."""

    def __init__(self, in_nc=6, ndf=8, n_layers=3):
        super().__init__()
        L = [nn.Conv2d(in_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            L += [nn.Conv2d(ndf * prev, ndf * mult, 4, 2 if n < n_layers else 1, 1, bias=False),
                  nn.BatchNorm2d(ndf * mult), nn.LeakyReLU(0.2, True)]
        L += [nn.Conv2d(ndf * mult, 1, 4, 1, 1)]
        self.model = nn.Sequential(*L)


def randomize(net: nn.Module, seed: int = 0) -> nn.Module:
    """Weights and batch-norm statistics away from their initial values, so every tensor matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) / m.weight[0].numel() ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=g))
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
                m.num_batches_tracked.fill_(7)
            elif isinstance(m, nn.InstanceNorm2d) and m.track_running_stats:
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
    return net
