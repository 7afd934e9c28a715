"""Paired image data: discovery and decoding (pairs), batched jitter (augment), dataset sources."""

from .pairs import PairedImages, PairFile, find_pairs, read_pair

__all__ = ["PairedImages", "PairFile", "find_pairs", "read_pair"]
