"""The segmenter protocol and registry.

A segmenter is a class holding a loaded model. ``segment(image)`` takes HxWx3 uint8 RGB and
returns a :class:`~cleanplate.records.SegmentResult` whose instances have ``character`` set.
"""

from __future__ import annotations

from typing import Protocol

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


SEGMENTERS: Registry[Segmenter] = Registry("segmenter")


def create_segmenter(config: Config, device: str) -> Segmenter:
    import cleanplate.segment  # noqa: F401  (registers the built-in backends)

    cls = SEGMENTERS.get(config.segment.backend)
    return cls(config, device)
