"""Typed records passed between stages: one :class:`FrameRecord` per frame."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Instance:
    """One segmented instance.

    ``mask`` is HxW bool, ``bbox`` is XYWH in pixels, ``point`` the prompt point (x, y) if any.
    ``character`` tells whether selection kept it for removal, ``reason`` says why.
    """

    mask: np.ndarray
    bbox: tuple[int, int, int, int]
    area: int
    score: float
    predicted_iou: float | None = None
    stability_score: float | None = None
    point: tuple[float, float] | None = None
    character: bool = True
    reason: str = ""
    track_id: int | None = None

    def record(self) -> dict[str, object]:
        return {
            "bbox": [int(v) for v in self.bbox],
            "area": int(self.area),
            "score": round(float(self.score), 4),
            "predicted_iou": None if self.predicted_iou is None else round(float(self.predicted_iou), 4),
            "stability_score": None if self.stability_score is None else round(float(self.stability_score), 4),
            "point": None if self.point is None else [round(float(v), 1) for v in self.point],
            "character": bool(self.character),
            "reason": self.reason,
            "track_id": self.track_id,
        }


def bbox_xywh(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding box (x, y, w, h) of the True pixels of an HxW bool mask; zeros if empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return (0, 0, 0, 0)
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()), int(ys.min()), int(ys.max())
    return (x0, y0, x1 - x0 + 1, y1 - y0 + 1)


@dataclass
class SegmentResult:
    """What a segmenter returns for one frame: instances, plus extra per-frame facts for metadata.

    ``saliency`` (optional, HxW float32 in [0, 1]): the frame's character-likeness map when the
    backend computed one, so later stages (shot tracking, plate checks) reuse it instead of
    running the saliency model again.
    """

    instances: list[Instance]
    extra: dict[str, object] = field(default_factory=dict)
    saliency: np.ndarray | None = None


@dataclass
class FillResult:
    """What an inpainter returns for one frame: the plate (HxWx3 uint8 RGB) and per-frame facts.

    ``source_map`` (optional, HxW uint8): where each pixel came from — 0 the frame itself,
    1 other frames of the shot, 2 invented by an inpainter.
    """

    plate: np.ndarray
    extra: dict[str, object] = field(default_factory=dict)
    source_map: np.ndarray | None = None


@dataclass
class FrameRecord:
    """One frame as it moves through the pipeline.

    ``image`` is HxWx3 uint8 RGB as decoded; ``mask`` the combined, dilated removal mask
    (HxW bool); ``plate`` the clean plate (HxWx3 uint8 RGB).
    """

    frame_id: str
    index: int
    source: str
    shot_id: int | None = None
    image: np.ndarray | None = None
    instances: list[Instance] = field(default_factory=list)
    mask: np.ndarray | None = None
    plate: np.ndarray | None = None
    coverage: float = 0.0
    segment_extra: dict[str, object] = field(default_factory=dict)
    fill_extra: dict[str, object] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def n_characters(self) -> int:
        return sum(1 for i in self.instances if i.character)


@dataclass
class SequenceFrame:
    """A frame given to a sequential (temporal) fill: image HxWx3 uint8 RGB, mask HxW bool.

    ``todo`` is False for frames that are only context (their plate is already done).
    """

    frame_id: str
    index: int
    image: np.ndarray
    mask: np.ndarray
    todo: bool = True


@dataclass
class CheckFrame:
    """One finished plate handed to the plate checks, with what the earlier stages know of it.

    ``image`` and ``plate`` HxWx3 uint8 RGB, ``mask`` the HxW bool mask that was filled,
    ``saliency`` the segment stage's HxW float32 map of the frame when it has one (so the checks
    need not run the saliency model on the frame again), ``shot_id`` the frame's shot.
    """

    frame_id: str
    image: np.ndarray
    plate: np.ndarray
    mask: np.ndarray
    saliency: np.ndarray | None = None
    shot_id: int | None = None
