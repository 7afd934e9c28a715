"""The networks: U-Net and ResNet generators and the PatchGAN discriminator, each built from a
ModelConfig; the paper's test-time sampling as explicit ops (``sampling``)."""

from .discriminator import PatchDiscriminator, build_discriminator
from .generator import UNet, build_generator, reference_dropout_blocks
from .layers import init_weights, norm_layer
from .resnet import ResnetGenerator

__all__ = ["UNet", "ResnetGenerator", "PatchDiscriminator", "build_generator", "build_discriminator",
           "reference_dropout_blocks", "init_weights", "norm_layer"]
