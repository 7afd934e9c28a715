"""Fine-tuning: a new run whose networks start from another model's weights (``--init-from MODEL``).

Opening MODEL is not training's job: it may be any model file ``pix2pix.load`` opens (a run folder,
a ``.safetensors`` export, a Hugging Face folder, the reference implementation's ``*_net_G.pth``,
a downloaded model's name), and those readers live in ``deploy/``. The caller
(``deploy/finetune.py``) opens it and hands over :class:`InitialWeights`; here the run's config
takes MODEL's architecture and the fresh networks take its weights. Optimisers, the schedule,
the epoch count and the random streams start fresh.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

import torch

from ..config import ModelConfig, TrainConfig
from ..errors import ConfigError
from .checkpoint import load_weights
from .nets import Nets

# The generator's shape, read from MODEL; the discriminator's too when MODEL carries one (our checkpoints).
GENERATOR_FIELDS = ("netG", "ngf", "norm", "input_nc", "output_nc", "dropout_placement")
DISCRIMINATOR_FIELDS = ("ndf", "patch")


@dataclass(frozen=True)
class InitialWeights:
    """What a run starts from: the architecture and weights (our key names) of MODEL."""

    source: str  # MODEL as given, for messages
    model: ModelConfig
    generator: dict[str, torch.Tensor]
    discriminator: dict[str, torch.Tensor] | None = None  # only a checkpoint of ours has one


def architecture_options(init: InitialWeights, given: Mapping[str, Any]) -> dict[str, Any]:
    """Flat options that give a run MODEL's architecture, for settings ``given`` by the user.

    Each architecture option the user gave must agree with MODEL, else a :class:`ConfigError` names
    the option and both values (the weights cannot be reshaped); the others are MODEL's. ``dropout``
    holds no weights: MODEL's unless given. ``ndf`` and ``patch`` come from MODEL only when it has a
    discriminator; otherwise D starts fresh from the run's own settings.
    """
    names = GENERATOR_FIELDS + (DISCRIMINATOR_FIELDS if init.discriminator is not None else ())
    for name in names:
        want = getattr(init.model, name)
        if name in given and given[name] != want:
            raise ConfigError(f"--init-from {init.source}: the model has {name} {want!r}, but {name} "
                              f"{given[name]!r} was asked for; leave the option out (the architecture comes "
                              "from the model)")
    out = {name: getattr(init.model, name) for name in names}
    if "dropout" not in given:
        out["dropout"] = init.model.dropout
    return out


def with_architecture(cfg: TrainConfig, init: InitialWeights) -> TrainConfig:
    """``cfg`` with MODEL's architecture (:func:`architecture_options`); the options taken as given
    are those whose value differs from the default."""
    defaults = ModelConfig()
    given = {f.name: getattr(cfg.model, f.name) for f in dataclasses.fields(ModelConfig)
             if getattr(cfg.model, f.name) != getattr(defaults, f.name)}
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, **architecture_options(init, given)))


def load_initial_weights(nets: Nets, init: InitialWeights) -> None:
    """Copy MODEL's weights into the freshly built networks (D too when MODEL has one)."""
    load_weights(nets.G_plain, init.generator, "generator", init.source)
    if init.discriminator is not None:
        load_weights(nets.D_plain, init.discriminator, "discriminator", init.source)
