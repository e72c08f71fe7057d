"""The segmenter protocol and registry.

A segmenter is a class holding a loaded model. ``segment(image)`` takes HxWx3 uint8 RGB and
returns a :class:`~cleanplate.records.SegmentResult` whose instances have ``character`` set.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from cleanplate.config import Config
from cleanplate.records import SegmentResult
from cleanplate.registry import Registry
from cleanplate.weights import WeightsUse


class Segmenter(Protocol):
    name: str

    def __init__(self, config: Config, device: str) -> None: ...

    def segment(self, image: np.ndarray) -> SegmentResult:
        """Find instances in one HxWx3 uint8 RGB frame."""
        ...

    def weights_used(self) -> list[WeightsUse]:
        """Weights this segmenter loaded (name, path, sha256), for run.json."""
        ...


@runtime_checkable
class BatchSegmenter(Protocol):
    """A segmenter that can take several frames in one call (its models batch them where they can)."""

    def segment_batch(self, images: list[np.ndarray]) -> list[SegmentResult]:
        """:meth:`Segmenter.segment` of each HxWx3 uint8 RGB frame, in order (same results)."""
        ...


class ShotSegmenter(Protocol):
    """Finds characters across the frames of one shot (or a window of one), given each frame's
    per-frame result: links instances into tracks, carries masks into frames where the per-frame
    backend missed them, drops detections of scenery, adds what moves with a character."""

    name: str

    def __init__(self, config: Config, device: str) -> None: ...

    def segment_shot(self, images: list[np.ndarray], results: list[SegmentResult],
                     shot: Any = None) -> list[SegmentResult]:
        """``images``: the shot's frames in order, HxWx3 uint8 RGB; ``results``: their per-frame
        results (same order); ``shot``: their :class:`~cleanplate.motion.shot_model.ShotModel`
        (same frames; None: the segmenter registers them itself if it needs to). Returns one
        refined result per frame, same order."""
        ...

    def weights_used(self) -> list[WeightsUse]: ...


SEGMENTERS: Registry[Segmenter] = Registry("segmenter")
SHOT_SEGMENTERS: Registry[ShotSegmenter] = Registry("shot segmenter")


def create_segmenter(config: Config, device: str) -> Segmenter:
    import cleanplate.segment  # noqa: F401  (registers the built-in backends)

    cls = SEGMENTERS.get(config.segment.backend)
    return cls(config, device)


def create_shot_segmenter(config: Config, device: str) -> ShotSegmenter | None:
    """The shot-level segmenter of ``config.segment.shot.method``, or None for ``none``."""
    import cleanplate.segment  # noqa: F401  (registers the built-in backends)

    if config.segment.shot.method == "none":
        return None
    return SHOT_SEGMENTERS.get(config.segment.shot.method)(config, device)
