"""Segmenter backends; importing this package registers the built-in ones."""

from cleanplate.segment import saliency, sam2  # noqa: F401  (torch is imported lazily inside sam2)
from cleanplate.segment.base import SEGMENTERS, Segmenter, create_segmenter

__all__ = ["SEGMENTERS", "Segmenter", "create_segmenter"]
