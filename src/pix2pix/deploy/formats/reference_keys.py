"""The reference implementation's generator layouts, read from the tensors alone, and their keys in ours.

The reference (junyanz/pytorch-CycleGAN-and-pix2pix, ``models/networks.py``) saves
``net.state_dict()`` of a ``UnetGenerator`` (nested ``UnetSkipConnectionBlock`` s, each an
``nn.Sequential`` called ``model``) or a ``ResnetGenerator`` (one flat ``model`` Sequential).
Parameters sit at Sequential indices, so the indices tell the layout:

    U-Net level L (0 = outermost) has prefix  model.model.  then  model.model.1.model.  then + 3.model.
      outermost    0 conv(in, ngf)                  3 convT(2 ngf, out) + bias           -> downs.0, out
      middle       1 conv   2 norm                  5 convT   6 norm   [7 Dropout]        -> downs.L, ups.{D-1-L}
      innermost    1 conv                           3 convT   4 norm                      -> downs.{D-1}, ups.0
    ResNet  model.1/2 stem, 4/5 and 7/8 downsampling, 10+k.conv_block.{1,2, 5|6,6|7} residual block k
            (the second conv sits at 6 when Dropout takes index 4), then two convT + norm, model.{17+n} head

Norm layers: batch norm leaves weight, bias, running_mean, running_var (and num_batches_tracked
since torch 0.4.1); instance norm leaves nothing, or running stats alone in files of the torch 0.4
era; ``norm='none'`` leaves nothing. The reference gives convolutions a bias exactly when the norm
is instance norm, so a file without norm tensors is instance norm with conv biases, none without.
U-Net dropout leaves no trace (it is the last entry of its Sequential); ResNet dropout does.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Mapping

import torch

from ...config import ModelConfig

Tensor = torch.Tensor
NORM_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")
# One row per layer with parameters: (our prefix, reference prefix, role, weight shape). role "conv":
# bias iff the reference's use_bias; "head": always a bias; "norm": a norm slot of width shape[0].
Plan = list[tuple[str, str, str, tuple[int, ...]]]
RESNET_BLOCK_CONVS = {(1, 5): False, (1, 6): True}  # conv_block indices of the two convs -> dropout


class LayoutError(ValueError):
    """The tensors are not a reference generator; the message is one line without the file name."""


@dataclass(frozen=True)
class Layout:
    """A reference generator as read from its tensors."""

    kind: str  # "unet" or "resnet"
    levels: int  # U-Net downsamplings, or ResNet residual blocks
    ngf: int
    norm: str  # batch, instance or none
    input_nc: int
    output_nc: int
    dropout: bool  # ResNet: seen in the keys; U-Net: assumed (the reference's default)
    notes: tuple[str, ...] = field(default=())

    @property
    def netG(self) -> str:
        return f"unet_{2 ** self.levels}" if self.kind == "unet" else f"resnet_{self.levels}blocks"

    def model_config(self) -> ModelConfig:
        """Our ModelConfig for it: the reference's U-Net dropout placement, its 0.5 dropout rate."""
        return ModelConfig(netG=self.netG, ngf=self.ngf, norm=self.norm, input_nc=self.input_nc,
                           output_nc=self.output_nc, dropout=0.5 if self.dropout else 0.0,
                           dropout_placement="reference")

    def plan(self) -> Plan:
        if self.kind == "unet":
            return _unet_plan(self.levels, self.ngf, self.input_nc, self.output_nc)
        return _resnet_plan(self.levels, self.ngf, self.input_nc, self.output_nc, self.dropout)


def strip_prefix(sd: Mapping[str, Tensor]) -> tuple["OrderedDict[str, Tensor]", bool]:
    """Drop a DataParallel ``module.`` prefix carried by every key; (state dict, whether it was there)."""
    if sd and all(k.startswith("module.") for k in sd):
        return OrderedDict((k[len("module."):], v) for k, v in sd.items()), True
    return OrderedDict(sd), False


# ----- the two layouts ------------------------------------------------------------------------
def _unet_prefixes(depth: int) -> list[str]:
    prefixes = ["model.model.", "model.model.1.model."]  # the outermost block's submodule is at index 1
    while len(prefixes) < depth:
        prefixes.append(prefixes[-1] + "3.model.")       # every other block's submodule is at index 3
    return prefixes[:depth]


def _unet_plan(depth: int, ngf: int, cin: int, cout: int) -> Plan:
    w = [ngf * min(2**i, 8) for i in range(depth)]  # level i's inner width = our encoder widths
    p = _unet_prefixes(depth)
    plan: Plan = [("downs.0.conv", p[0] + "0", "conv", (w[0], cin, 4, 4))]
    for lv in range(1, depth):
        j = depth - 1 - lv  # our decoder index for this level (0 = innermost)
        plan.append((f"downs.{lv}.conv", p[lv] + "1", "conv", (w[lv], w[lv - 1], 4, 4)))
        if lv < depth - 1:
            plan += [(f"downs.{lv}.norm", p[lv] + "2", "norm", (w[lv],)),
                     (f"ups.{j}.conv", p[lv] + "5", "conv", (2 * w[lv], w[lv - 1], 4, 4)),
                     (f"ups.{j}.norm", p[lv] + "6", "norm", (w[lv - 1],))]
        else:
            plan += [(f"ups.{j}.conv", p[lv] + "3", "conv", (w[lv], w[lv - 1], 4, 4)),
                     (f"ups.{j}.norm", p[lv] + "4", "norm", (w[lv - 1],))]
    plan.append(("out.conv", p[0] + "3", "head", (2 * w[0], cout, 4, 4)))
    return plan


def _resnet_plan(n_blocks: int, ngf: int, cin: int, cout: int, dropout: bool) -> Plan:
    d, c2 = 4 * ngf, 6 if dropout else 5
    plan: Plan = [("stem.conv", "model.1", "conv", (ngf, cin, 7, 7)), ("stem.norm", "model.2", "norm", (ngf,)),
                  ("down.0.conv", "model.4", "conv", (2 * ngf, ngf, 3, 3)), ("down.0.norm", "model.5", "norm", (2 * ngf,)),
                  ("down.1.conv", "model.7", "conv", (d, 2 * ngf, 3, 3)), ("down.1.norm", "model.8", "norm", (d,))]
    for b in range(n_blocks):
        r = f"model.{10 + b}.conv_block."
        plan += [(f"blocks.{b}.conv1", r + "1", "conv", (d, d, 3, 3)), (f"blocks.{b}.norm1", r + "2", "norm", (d,)),
                 (f"blocks.{b}.conv2", f"{r}{c2}", "conv", (d, d, 3, 3)),
                 (f"blocks.{b}.norm2", f"{r}{c2 + 1}", "norm", (d,))]
    u = 10 + n_blocks
    plan += [("up.0.conv", f"model.{u}", "conv", (d, 2 * ngf, 3, 3)), ("up.0.norm", f"model.{u + 1}", "norm", (2 * ngf,)),
             ("up.1.conv", f"model.{u + 3}", "conv", (2 * ngf, ngf, 3, 3)), ("up.1.norm", f"model.{u + 4}", "norm", (ngf,)),
             ("head.conv", f"model.{u + 7}", "head", (cout, ngf, 7, 7))]
    return plan


def _out_channels(ours: str, shape: tuple[int, ...]) -> int:
    """A conv's output channels from its weight: ConvTranspose weights are (in, out, k, k)."""
    return shape[1] if ours.startswith(("ups.", "out.", "up.")) else shape[0]


# ----- reading the layout ---------------------------------------------------------------------
def infer_layout(sd: Mapping[str, Tensor]) -> Layout:
    """Kind, depth or blocks, width, norm, channels and (ResNet) dropout, from the tensors alone;
    every tensor is then checked against the full layout. :class:`LayoutError` if it is none."""
    sd, prefixed = strip_prefix(sd)
    notes = ["'module.' prefix (DataParallel) stripped"] if prefixed else []
    w0, w1 = sd.get("model.model.0.weight"), sd.get("model.1.weight")
    if w0 is not None and w0.ndim == 4 and tuple(w0.shape[2:]) == (4, 4):
        depth = 1
        while _unet_prefixes(depth + 1)[-1] + "1.weight" in sd:
            depth += 1
        if depth < 2:
            raise LayoutError("a U-Net with a single level is not a reference UnetGenerator")
        head = _weight(sd, "model.model.3.weight")
        kind, levels, ngf, cin, cout = "unet", depth, int(w0.shape[0]), int(w0.shape[1]), int(head.shape[1])
        dropout = True  # invisible in the file; the reference's default (--no_dropout unset)
        notes.append("U-Net dropout leaves no trace in the file: the reference's default (on, at its placement) "
                     "is assumed; it matters only with --paper-sampling and for fine-tuning")
    elif w1 is not None and w1.ndim == 4 and tuple(w1.shape[2:]) == (7, 7):
        n = 0
        while any(k.startswith(f"model.{10 + n}.conv_block.") for k in sd):
            n += 1
        convs = tuple(sorted(int(k.split(".")[3]) for k in sd if k.startswith("model.10.conv_block.")
                             and k.endswith(".weight") and sd[k].ndim == 4))
        if n and convs not in RESNET_BLOCK_CONVS:
            raise LayoutError(f"residual blocks with convolutions at conv_block indices {list(convs)}: not the "
                              "reference's reflect-padded ResnetBlock")
        dropout = RESNET_BLOCK_CONVS.get(convs, False) if n else False
        head = _weight(sd, f"model.{17 + n}.weight")
        kind, levels, ngf, cin, cout = "resnet", n, int(w1.shape[0]), int(w1.shape[1]), int(head.shape[0])
    else:
        raise LayoutError(_not_a_generator(sd))
    layout = Layout(kind, levels, ngf, "batch", cin, cout, dropout)
    norm, more = _check(sd, layout.plan())
    return Layout(kind, levels, ngf, norm, cin, cout, dropout, tuple(notes + more))


def _weight(sd: Mapping[str, Tensor], key: str) -> Tensor:
    t = sd.get(key)
    if t is None or t.ndim != 4:
        raise LayoutError(f"expected a 4-d convolution weight at {key!r}, "
                          f"{'but it is missing' if t is None else f'got shape {tuple(t.shape)}'}")
    return t


def _not_a_generator(sd: Mapping[str, Tensor]) -> str:
    w = sd.get("model.0.weight")
    if w is not None and w.ndim == 4 and tuple(w.shape[2:]) == (4, 4) and "model.0.bias" in sd:
        return ("this is the reference's PatchGAN discriminator (NLayerDiscriminator, a *_net_D.pth), not a "
                "generator: use the *_net_G.pth beside it")
    w = sd.get("net.0.weight")
    if w is not None and w.ndim == 4 and tuple(w.shape[2:]) == (1, 1):
        return "this is the reference's PixelDiscriminator (a *_net_D.pth), not a generator: use the *_net_G.pth"
    return ("neither a pix2pix checkpoint (no 'pix2pix-checkpoint' marker) nor a generator of the reference "
            "implementation (no 'model.model.0.weight' U-Net or 'model.1.weight' ResNet convolution); its first "
            f"keys are {list(sd)[:3]}")


def _norm_slot(sd: Mapping[str, Tensor], ref: str) -> str:
    has = {s for s in ("weight", "bias", "running_mean", "running_var") if f"{ref}.{s}" in sd}
    if has == {"weight", "bias", "running_mean", "running_var"}:
        return "batch"
    if has == {"running_mean", "running_var"}:
        return "tracked"  # InstanceNorm2d(track_running_stats=True): files of the torch 0.4 era
    if not has:
        return "empty"  # InstanceNorm2d without stats, or Identity (norm 'none')
    raise LayoutError(f"unsupported norm layer at {ref!r} (it holds {', '.join(sorted(has))})")


def _check(sd: Mapping[str, Tensor], plan: Plan) -> tuple[str, list[str]]:
    """Every tensor against the plan; returns (norm, notes). Missing, misshapen or extra tensors are errors."""
    used: set[str] = set()
    slots, biases = set(), set()
    for ours, ref, role, shape in plan:
        if role == "norm":
            slots.add(_norm_slot(sd, ref))
            for s in ("weight", "bias", *NORM_BUFFERS):
                t = sd.get(f"{ref}.{s}")
                if t is not None:
                    if s != "num_batches_tracked" and tuple(t.shape) != shape:
                        raise LayoutError(f"{ref}.{s} has shape {tuple(t.shape)}, expected {shape}")
                    used.add(f"{ref}.{s}")
            continue
        w = _weight(sd, f"{ref}.weight")
        if tuple(w.shape) != shape:
            raise LayoutError(f"{ref}.weight has shape {tuple(w.shape)}, expected {shape}")
        used.add(f"{ref}.weight")
        bias = sd.get(f"{ref}.bias")
        if bias is not None:
            used.add(f"{ref}.bias")
            if tuple(bias.shape) != (_out_channels(ours, shape),):
                raise LayoutError(f"{ref}.bias has shape {tuple(bias.shape)}, expected ({_out_channels(ours, shape)},)")
        if role == "conv":
            biases.add(bias is not None)
        elif bias is None:
            raise LayoutError(f"{ref}.bias is missing (the reference's last convolution always has one)")
    left = [k for k in sd if k not in used]
    if left:
        raise LayoutError(f"{len(left)} tensors do not fit the layout its other tensors describe, e.g. {left[:3]}")
    if len(slots) != 1 or len(biases) != 1:
        raise LayoutError("its layers mix norm kinds or convolutions with and without bias: not a reference generator")
    slot, bias = slots.pop(), biases.pop()
    notes = []
    if slot == "batch":
        if bias:
            raise LayoutError("batch norm after convolutions with a bias: not a layout the reference writes")
        if not any(k.endswith("num_batches_tracked") for k in sd):
            notes.append("no num_batches_tracked (written by torch < 0.4.1): set to 0, which eval mode never reads")
        return "batch", notes
    if slot == "tracked":
        notes.append("instance norm with running statistics (torch 0.4 era): dropped, as the reference's "
                     "load_networks drops them; each image is normalised with its own statistics")
        return "instance", notes
    return ("instance" if bias else "none"), notes


# ----- converting -----------------------------------------------------------------------------
def convert(sd: Mapping[str, Tensor], layout: Layout) -> "OrderedDict[str, Tensor]":
    """Reference keys -> ours, for the network ``build_generator(layout.model_config())`` builds.

    Batch norm slots keep their four tensors (``num_batches_tracked`` 0 when absent); instance-norm
    running statistics are dropped. With ``norm='none'`` the reference has no conv biases while our
    networks have them: they are filled with zeros, which is exactly the same network.
    """
    sd, _ = strip_prefix(sd)
    out: OrderedDict[str, Tensor] = OrderedDict()
    for ours, ref, role, shape in layout.plan():
        if role == "norm":
            if layout.norm == "batch":
                for s in ("weight", "bias", "running_mean", "running_var"):
                    out[f"{ours}.{s}"] = sd[f"{ref}.{s}"].float().clone()
                nbt = sd.get(f"{ref}.num_batches_tracked")
                out[f"{ours}.num_batches_tracked"] = nbt.clone() if nbt is not None else torch.tensor(0)
            continue
        out[f"{ours}.weight"] = sd[f"{ref}.weight"].float().clone()
        if f"{ref}.bias" in sd:
            out[f"{ours}.bias"] = sd[f"{ref}.bias"].float().clone()
        elif layout.norm == "none":
            out[f"{ours}.bias"] = torch.zeros(_out_channels(ours, shape))
    return out


def key_table(layout: Layout) -> dict[str, str]:
    """Reference prefix -> our prefix (docs and debugging)."""
    return {ref: ours for ours, ref, _, _ in layout.plan()}
