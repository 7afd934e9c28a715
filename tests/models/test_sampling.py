"""The paper's test-time sampling as explicit ops: per-image statistics for any generator built
from BatchNorm2d / Dropout, and dropout noise seeded per image."""

from __future__ import annotations

import torch
import torch.nn as nn

from pix2pix.models import UNet
from pix2pix.models.sampling import (PerImageNorm, SampledDropout, image_seed, keep_all_dropout, per_image_seeds,
                                     with_explicit_sampling)


class ResidualNet(nn.Module):
    """A ResNet-style generator (not the U-Net): conv, norm, residual blocks with dropout, tanh."""

    def __init__(self):
        super().__init__()
        self.head = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.block = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Dropout(0.5),
                                   nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8))
        self.tail = nn.Conv2d(8, 3, 3, padding=1)

    def forward(self, x):
        h = self.head(x)
        return torch.tanh(self.tail(h + self.block(h)))


def _scrambled(g: nn.Module) -> nn.Module:
    for m in g.modules():  # running statistics far from any image's, so eval and train mode differ
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    return g


def _train_mode_one_at_a_time(g: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """What the paper ran: train mode on a batch of one, dropout masks of ones (scaled)."""
    ref = g.train()
    for m in ref.modules():
        if isinstance(m, nn.Dropout):
            m.forward = lambda t, p=m.p: t / (1 - p)
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 0.0
    return torch.cat([ref(x[i:i + 1]) for i in range(len(x))])


def test_explicit_sampling_is_train_mode_on_each_image_alone():
    torch.manual_seed(0)
    for g, x in ((UNet(3, 3, depth=5, ngf=8, dropout=0.5), torch.rand(3, 3, 64, 32) * 2 - 1),
                 (ResidualNet(), torch.rand(3, 3, 16, 24) * 2 - 1)):
        g = _scrambled(g)
        explicit = keep_all_dropout(with_explicit_sampling(g))
        assert not any(isinstance(m, (nn.BatchNorm2d, nn.Dropout)) for m in explicit.modules())
        assert any(isinstance(m, PerImageNorm) for m in explicit.modules())
        with torch.no_grad():
            eval_out = g.eval()(x)
            want = _train_mode_one_at_a_time(g, x)
            got = explicit(x)
            torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
            torch.testing.assert_close(explicit(x[1:2])[0], got[1], atol=1e-5, rtol=0)  # alone = in a batch
            assert (got - eval_out).abs().max() > 1e-2
            pooled = g.train()(x)  # batch statistics over all three images: not the paper's
            assert (pooled - want).abs().max() > 1e-3


def test_sampled_dropout_keeps_half_and_scales():
    y = SampledDropout(0.5)(torch.ones(100_000))
    assert abs((y == 0).float().mean().item() - 0.5) < 0.01 and set(y.unique().tolist()) == {0.0, 2.0}


def test_per_image_seeds_give_each_image_its_own_noise_whatever_the_batch():
    torch.manual_seed(0)
    g = with_explicit_sampling(_scrambled(ResidualNet()))
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    seeds = [image_seed(3, i) for i in range(4)]
    with torch.no_grad():
        with per_image_seeds(g, seeds):
            together = g(x)
        with per_image_seeds(g, seeds[2:3]):
            alone = g(x[2:3])
        with per_image_seeds(g, [image_seed(4, 2)]):
            other_seed = g(x[2:3])
        unseeded = [g(x[2:3]) for _ in range(2)]
    torch.testing.assert_close(alone[0], together[2], atol=1e-6, rtol=0)
    assert (other_seed - alone).abs().max() > 1e-3
    assert (unseeded[0] - unseeded[1]).abs().max() > 1e-3  # outside the block: torch's generator again
    assert all(m.generators is None for m in g.modules() if isinstance(m, SampledDropout))
    assert len({image_seed(s, i) for s in range(20) for i in range(50)}) == 1000
    assert len({image_seed(s, i) % 2**32 for s in range(20) for i in range(50)}) == 1000  # CPU keeps 32 bits
