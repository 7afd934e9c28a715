"""The graph-capturable step (fixed buffers, no host syncs) computes what the eager step computes."""

from __future__ import annotations

import pytest
import torch

from conftest import tiny_config
from pix2pix.training.losses import Objective
from pix2pix.training.nets import build_nets
from pix2pix.training.static_step import StaticStep
from pix2pix.training.step import LOSS_NAMES, train_step

pytestmark = pytest.mark.usefixtures("one_thread")


def batches(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.rand(2, 3, 32, 32, generator=g) * 2 - 1, torch.rand(2, 3, 32, 32, generator=g) * 2 - 1)
            for _ in range(n)]


@pytest.mark.parametrize("over", [{}, {"lambda_gan": 0.0}, {"gan_loss": "lsgan", "channels_last": True}])
def test_static_step_equals_the_eager_step_over_several_steps(tmp_path, over):
    cfg = tiny_config(tmp_path, tmp_path / "r", **over)  # dropout on: both draw it from torch's generator
    eager, static = build_nets(cfg, torch.device("cpu")), build_nets(cfg, torch.device("cpu"))
    step = StaticStep(static, Objective.of(cfg), 2, (3, 32, 32), (3, 32, 32))
    for i, (src, tgt) in enumerate(batches(5)):
        torch.manual_seed(100 + i)
        want = train_step(eager, src, tgt, Objective.of(cfg))
        torch.manual_seed(100 + i)
        got = step(src, tgt)
        for k in LOSS_NAMES:
            torch.testing.assert_close(got[k], want[k], msg=f"step {i} {k}")
    for (name, a), b in zip(eager.G_plain.state_dict().items(), static.G_plain.state_dict().values()):
        torch.testing.assert_close(b, a, msg=name)
    for (name, a), b in zip(eager.D_plain.state_dict().items(), static.D_plain.state_dict().values()):
        torch.testing.assert_close(b, a, msg=name)


def test_static_step_keeps_its_memory_and_reads_nothing_back(tmp_path, monkeypatch):
    cfg = tiny_config(tmp_path, tmp_path / "r")
    nets = build_nets(cfg, torch.device("cpu"))
    step = StaticStep(nets, Objective.of(cfg), 2, (3, 32, 32), (3, 32, 32))
    (src, tgt), (src2, tgt2) = batches(2)
    first = step(src, tgt)
    where = [step.src.data_ptr(), step.tgt.data_ptr(), *(t.data_ptr() for t in first.values()),
             *(p.grad.data_ptr() for p in nets.G_plain.parameters())]

    def forbidden(*a, **k):
        raise AssertionError("host read-back inside the static step")

    for name in ("item", "tolist", "__bool__"):
        monkeypatch.setattr(torch.Tensor, name, forbidden)
    second = step(src2, tgt2)
    monkeypatch.undo()
    assert second is first  # the same tensors, overwritten: what a replayed graph gives
    assert where == [step.src.data_ptr(), step.tgt.data_ptr(), *(t.data_ptr() for t in second.values()),
                     *(p.grad.data_ptr() for p in nets.G_plain.parameters())]
    with pytest.raises(ValueError, match="static step takes batches of"):
        step(src[:1], tgt[:1])  # a short last batch does not fit a captured graph
