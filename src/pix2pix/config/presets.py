"""The paper's presets: overrides of the defaults (``--preset NAME``)."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError

# The defaults are the paper's setting (appendix 6.2): unet_256, 70x70 PatchGAN, batch 1, 286 -> 256
# jitter, 100 + 100 epochs. A preset says only what differs for its dataset: the direction of the
# paper's headline task, and for the large sets the shorter schedule and batch 4. Cityscapes and
# facades are both trained labels -> photo with the defaults, so their presets are the same.
PRESETS: dict[str, dict[str, Any]] = {
    "cityscapes": dict(direction="BtoA"),  # 2975 pairs, labels -> photo
    "facades": dict(direction="BtoA"),  # 400 pairs, labels -> facade
    "maps": dict(),  # 1096 pairs, aerial photo -> map: the defaults
    "edges2shoes": dict(epochs=8, epochs_decay=7, batch_size=4),  # 50k pairs, edges -> shoe, 15 epochs
    "edges2handbags": dict(epochs=8, epochs_decay=7, batch_size=4),  # 137k pairs, 15 epochs
    "night2day": dict(epochs=9, epochs_decay=8, batch_size=4),  # 17823 pairs, night -> day, 17 epochs
}


def preset_overrides(name: str) -> dict[str, Any]:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return dict(PRESETS[name])
