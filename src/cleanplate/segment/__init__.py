"""Segmenter backends; importing this package registers the built-in ones."""

from cleanplate.segment import saliency  # noqa: F401
from cleanplate.segment.base import SEGMENTERS, Segmenter, create_segmenter

__all__ = ["SEGMENTERS", "Segmenter", "create_segmenter"]
