"""Segmenter backends; importing this package registers the built-in ones."""

from cleanplate.segment import saliency, sam2, sam2_video, sam3, shot  # noqa: F401  (torch is imported lazily)
from cleanplate.segment.base import (
    SEGMENTERS,
    SHOT_SEGMENTERS,
    Segmenter,
    ShotSegmenter,
    create_segmenter,
    create_shot_segmenter,
)

__all__ = ["SEGMENTERS", "SHOT_SEGMENTERS", "Segmenter", "ShotSegmenter", "create_segmenter",
           "create_shot_segmenter"]
