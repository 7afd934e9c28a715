"""The training step in a form a CUDA graph can capture: fixed buffers, no host syncs, no Python
decisions on tensor values.

    step = StaticStep(nets, objective, batch_size=1, src_shape=(3, 256, 256), tgt_shape=(3, 256, 256))
    losses = step(src, tgt)          # copies into step.src / step.tgt, runs, returns step.losses

At the paper's batch 1 a step on an H100 took ~17 ms of kernel launches for well under 1 ms of
arithmetic (BENCHMARKS.md), which capture into a graph (``torch.cuda.graphs`` or
``torch.compile(mode="reduce-overhead")``) would remove. A graph replays the same kernels on the
same memory, so this step only ever reads its own input buffers, writes its losses into the same
output tensors, keeps gradients allocated (``zero_grad(set_to_none=False)``), draws dropout from
torch's device generator, and has no branch that depends on a tensor's value. It computes the
paper's update exactly as :func:`~pix2pix.training.step.train_step` does (tested on the CPU).

Not here yet: the capture itself, which only a GPU run can measure; ``--skip-nonfinite`` (its
decision is a host sync) and fp16 (the grad scaler reads its inf check back to the host).
"""

from __future__ import annotations

import torch

from ..devices import autocast
from ..errors import ConfigError
from .losses import Objective, discriminator_losses, generator_adversarial_loss, l1_loss
from .nets import Nets
from .step import LOSS_NAMES, frozen, pair


class StaticStep:
    """One D update then one G update on ``self.src`` / ``self.tgt``; see the module docstring."""

    def __init__(self, nets: Nets, objective: Objective, batch_size: int, src_shape: tuple[int, int, int],
                 tgt_shape: tuple[int, int, int]):
        if nets.precision == "fp16":
            raise ConfigError("the graph-capturable step supports fp32 and bf16 (fp16's grad scaler syncs)")
        self.nets, self.objective = nets, objective
        device = nets.device
        fmt = torch.channels_last if _is_channels_last(nets.G_plain) else torch.contiguous_format
        self.src = torch.zeros(batch_size, *src_shape, device=device).contiguous(memory_format=fmt)
        self.tgt = torch.zeros(batch_size, *tgt_shape, device=device).contiguous(memory_format=fmt)
        self.losses = {k: torch.zeros((), device=device) for k in (*LOSS_NAMES, "skipped")}
        for opt in (nets.opt_G, nets.opt_D):  # gradients stay allocated: a graph writes into them
            for group in opt.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        p.grad = torch.zeros_like(p)

    def __call__(self, src: torch.Tensor, tgt: torch.Tensor) -> dict[str, torch.Tensor]:
        """Copy a batch of the fixed shape into the buffers and run :meth:`run` (the part a graph
        would replay). Returns the same loss tensors every call, overwritten."""
        if src.shape != self.src.shape or tgt.shape != self.tgt.shape:
            raise ValueError(f"a static step takes batches of {tuple(self.src.shape)} and {tuple(self.tgt.shape)}, "
                             f"not {tuple(src.shape)} and {tuple(tgt.shape)}")
        self.src.copy_(src)
        self.tgt.copy_(tgt)
        self.run()
        return self.losses

    def run(self) -> None:
        nets, obj, src, tgt = self.nets, self.objective, self.src, self.tgt
        with autocast(nets.device, nets.precision):
            fake = nets.G(src)  # G(x)
        if obj.adversarial:
            with autocast(nets.device, nets.precision):
                d_real, d_fake = discriminator_losses(obj.gan_loss, nets.D(pair(src, tgt)), nets.D(pair(src, fake.detach())))
                loss_D = 0.5 * (d_real + d_fake)
            nets.opt_D.zero_grad(set_to_none=False)
            loss_D.backward()
            nets.opt_D.step()
            self.losses["D_real"].copy_(d_real.detach())
            self.losses["D_fake"].copy_(d_fake.detach())
        with frozen(nets.D_for_G):
            with autocast(nets.device, nets.precision):
                g_gan = generator_adversarial_loss(obj.gan_loss, nets.D_for_G(pair(src, fake))) if obj.adversarial \
                    else torch.zeros((), device=src.device)
                g_l1 = l1_loss(fake.float(), tgt)
                loss_G = obj.lambda_gan * g_gan + obj.lambda_l1 * g_l1
            nets.opt_G.zero_grad(set_to_none=False)
            loss_G.backward()
            nets.opt_G.step()
        self.losses["G_gan"].copy_(g_gan.detach())
        self.losses["G_L1"].copy_(g_l1.detach())


def _is_channels_last(module: torch.nn.Module) -> bool:
    weight = next((p for p in module.parameters() if p.dim() == 4), None)
    return weight is not None and weight.is_contiguous(memory_format=torch.channels_last) \
        and not weight.is_contiguous()
