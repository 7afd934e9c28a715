"""The networks: U-Net generator and PatchGAN discriminator, each built from a ModelConfig; the
paper's test-time sampling as explicit ops (``sampling``)."""

from .discriminator import PatchDiscriminator, build_discriminator
from .generator import UNet, build_generator
from .layers import init_weights, norm_layer

__all__ = ["UNet", "PatchDiscriminator", "build_generator", "build_discriminator", "init_weights", "norm_layer"]
