"""A Vision Transformer that reads an image as a sequence of tiles, and the tools to explain it."""

from .model import ViT

__all__ = ["ViT"]
