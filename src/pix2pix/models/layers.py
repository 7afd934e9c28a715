"""Building blocks shared by the networks: normalisation layers and the paper's initialisation."""

from __future__ import annotations

from typing import Callable

import torch.nn as nn

NormLayer = Callable[[int], nn.Module]


def norm_layer(kind: str) -> NormLayer:
    """``batch``: BatchNorm with learned affine; ``instance``: InstanceNorm without; ``none``."""
    if kind == "batch":
        return lambda c: nn.BatchNorm2d(c)
    if kind == "instance":
        return lambda c: nn.InstanceNorm2d(c, affine=False, track_running_stats=False)
    return lambda c: nn.Identity()


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """The paper's initialisation: conv weights ~ N(0, 0.02), norm scales ~ N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
