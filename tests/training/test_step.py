"""The training step against the paper's equations, checked on tiny nets by recomputing each
update's gradient by hand:

- D's update sees only D: G's parameters and gradients are untouched when D steps;
- D's loss is half the sum of its losses on real and on detached fake pairs;
- G's gradient is the gradient of lambda_gan * L_cGAN + lambda_l1 * L_L1 through the updated D;
- the adversarial loss named in the config is the one used (the variants' gradients differ).
"""

from __future__ import annotations

import copy

import pytest
import torch

from conftest import tiny_config
from pix2pix.training.losses import Objective, discriminator_losses, generator_adversarial_loss
from pix2pix.training.nets import build_nets
from pix2pix.training.step import train_step

pytestmark = pytest.mark.usefixtures("one_thread")


def params(m: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in m.parameters()]


def grads(m: torch.nn.Module) -> list[torch.Tensor | None]:
    return [None if p.grad is None else p.grad.detach().clone() for p in m.parameters()]


def step_with_spies(tmp_path, objective: Objective):
    """One train_step on tiny nets (no dropout, so forward passes repeat exactly), recording the
    state of both networks at the moment each optimiser steps."""
    cfg = tiny_config(tmp_path, tmp_path / "r", dropout=0.0)
    nets = build_nets(cfg, torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    src, tgt = (torch.rand(2, 3, 32, 32, generator=g) * 2 - 1 for _ in range(2))
    G0, D0 = copy.deepcopy(nets.G_plain), copy.deepcopy(nets.D_plain)
    seen: dict[str, dict] = {}
    for name, opt in (("D", nets.opt_D), ("G", nets.opt_G)):
        real_step = opt.step

        def spy(*a, _name=name, _real=real_step, **k):
            seen[_name] = {"G": params(nets.G_plain), "G_grad": grads(nets.G_plain),
                           "D": copy.deepcopy(nets.D_plain), "D_grad": grads(nets.D_plain)}
            return _real(*a, **k)

        opt.step = spy
    losses = train_step(nets, src, tgt, objective)
    return nets, G0, D0, src, tgt, seen, losses


@pytest.mark.parametrize("gan_loss", ["vanilla", "lsgan", "hinge"])
def test_the_step_is_the_papers_update(tmp_path, gan_loss):
    objective = Objective(gan_loss, lambda_l1=10.0, lambda_gan=1.0)
    nets, G0, D0, src, tgt, seen, losses = step_with_spies(tmp_path, objective)

    # D's update: G untouched (same weights, no gradients) when D steps.
    assert all(torch.equal(a, b) for a, b in zip(seen["D"]["G"], params(G0)))
    assert all(gr is None for gr in seen["D"]["G_grad"])

    # D's gradient is that of 0.5 * (L(D(x, y), real) + L(D(x, G(x)), fake)), with G(x) detached.
    fake = G0(src).detach()
    d_real, d_fake = discriminator_losses(gan_loss, D0(torch.cat([src, tgt], 1)), D0(torch.cat([src, fake], 1)))
    want_D = torch.autograd.grad(0.5 * (d_real + d_fake), list(D0.parameters()))
    for got, want in zip(seen["D"]["D_grad"], want_D):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)
    assert losses["D_real"].item() == pytest.approx(d_real.item(), rel=1e-5)
    assert losses["D_fake"].item() == pytest.approx(d_fake.item(), rel=1e-5)

    # G's gradient is that of lambda_gan * L_cGAN + lambda_l1 * L1, judged by the *updated* D,
    # and G's step leaves D's gradients as D's own step left them.
    D1 = seen["G"]["D"]
    out = G0(src)
    g_gan = generator_adversarial_loss(gan_loss, D1(torch.cat([src, out], 1)))
    g_l1 = (out - tgt).abs().mean()
    want_G = torch.autograd.grad(1.0 * g_gan + 10.0 * g_l1, list(G0.parameters()))
    for got, want in zip(seen["G"]["G_grad"], want_G):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-7)
    for a, b in zip(seen["G"]["D_grad"], seen["D"]["D_grad"]):
        assert torch.equal(a, b)
    assert losses["G_gan"].item() == pytest.approx(g_gan.item(), rel=1e-5)
    assert losses["G_L1"].item() == pytest.approx(g_l1.item(), rel=1e-5)


def test_the_adversarial_loss_named_is_the_one_used(tmp_path):
    """Same nets, same batch: each variant gives G and D different gradients (a step that ignored
    ``gan_loss`` would give all three the same)."""
    got = {}
    for gan_loss in ("vanilla", "lsgan", "hinge"):
        *_, seen, _ = step_with_spies(tmp_path, Objective(gan_loss, lambda_l1=10.0))
        got[gan_loss] = (torch.cat([g.flatten() for g in seen["G"]["G_grad"]]),
                         torch.cat([g.flatten() for g in seen["D"]["D_grad"]]))
    for a, b in (("vanilla", "lsgan"), ("vanilla", "hinge"), ("lsgan", "hinge")):
        for which in (0, 1):
            assert not torch.allclose(got[a][which], got[b][which], rtol=1e-3, atol=0), (a, b, which)


def test_l1_alone_never_runs_the_discriminator(tmp_path):
    nets, G0, D0, src, tgt, seen, losses = step_with_spies(tmp_path, Objective(lambda_l1=10.0, lambda_gan=0.0))
    assert "D" not in seen  # D's optimiser never stepped
    assert all(torch.equal(a, b) for a, b in zip(params(nets.D_plain), params(D0)))
    out = G0(src)
    want = torch.autograd.grad(10.0 * (out - tgt).abs().mean(), list(G0.parameters()))
    for g, w in zip(seen["G"]["G_grad"], want):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-7)
    assert losses["G_gan"].item() == 0 and losses["D_real"].item() == 0
