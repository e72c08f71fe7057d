"""Segmenter backends; importing this package registers the built-in ones."""

from cleanplate.segment import (  # noqa: F401  (registers the backends; torch is imported lazily)
    concept_gdino,
    concept_owlv2,
    concept_sam3,
    saliency,
    sam2,
    sam2_video,
    sam3,
    shot,
)
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
