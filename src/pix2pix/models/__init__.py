"""The two networks: U-Net generator and PatchGAN discriminator, each built from a ModelConfig."""

from .discriminator import PatchDiscriminator, build_discriminator
from .generator import UNet, build_generator, init_weights

__all__ = ["UNet", "PatchDiscriminator", "build_generator", "build_discriminator", "init_weights"]
