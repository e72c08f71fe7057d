"""Typed records passed between stages: one :class:`FrameRecord` per frame."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
    evidence: dict[str, object] | None = None  # what decided ``character`` (concept, motion, change ...)

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
            "evidence": self.evidence,
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


@dataclass(frozen=True)
class WeightsNote:
    """Weights a stage used on a frame (what run.json lists): registry name, file, sha256, origin.

    ``stage`` is the metadata stage it belongs to: ``segment`` or ``fill`` (the checks count as fill).
    """

    stage: str
    name: str
    path: str
    sha256: str | None
    source: str


@dataclass
class FrameRecord:
    """One frame as it moves through the stages; the only thing that passes between them.

    Identity: ``frame_id``, ``index`` (position in the input), ``source`` (where it came from),
    ``path`` (the file, for folder input). ``shot_id`` is set by the shots stage.
    Arrays: ``image`` HxWx3 uint8 RGB as decoded; ``mask`` the combined, dilated removal mask
    (HxW bool); ``mask_raw`` the combined mask before dilation; ``plate`` the clean plate
    (HxWx3 uint8 RGB, unmasked pixels are ``image``'s). ``segment`` / ``fill`` hold the backends'
    results, ``checks`` the plate checks' scores. ``segment_todo`` / ``fill_todo`` say which
    stages still have to commit this frame (False: done in an earlier run, the frame is context).
    ``error`` and ``failed_stage`` record the first failure; later stages pass a failed record on.
    ``timings`` are seconds per stage; ``weights`` the weights the stages used on it.
    ``link`` the frame's registration onto the decoded frame before it (shots stage; a
    :class:`~cleanplate.motion.shot_model.Link`), ``direct_links`` its direct links onto the few
    frames before that (the shot model's, for the temporal fill), ``small`` the frame at the shot model's work
    scale, ``shot`` the shot model of its window (shared by the window's records; None when it
    could not be built, ``shot_note`` then says why and the shot-level stages fall back).
    ``keep_out`` (HxW bool): pixels a person marked as scenery (``OUT/review.json``), carried into
    this frame: kept out of the removal mask, after its dilation too.
    """

    frame_id: str
    index: int
    source: str
    path: str | None = None
    shot_id: str | None = None
    image: np.ndarray | None = None
    segment: SegmentResult | None = None
    mask_raw: np.ndarray | None = None
    mask: np.ndarray | None = None
    dilate_px: int | None = None
    fill: FillResult | None = None
    plate: np.ndarray | None = None
    checks: dict[str, object] | None = None
    segment_todo: bool = True
    fill_todo: bool = True
    error: str | None = None
    failed_stage: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    weights: list[WeightsNote] = field(default_factory=list)
    link: Any = None
    direct_links: list[Any] = field(default_factory=list)
    small: np.ndarray | None = None
    shot: Any = None
    shot_note: str | None = None
    keep_out: np.ndarray | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def instances(self) -> list[Instance]:
        return self.segment.instances if self.segment is not None else []

    @property
    def n_characters(self) -> int:
        return sum(1 for i in self.instances if i.character)


@dataclass
class SequenceFrame:
    """A frame given to a sequential (temporal) fill: image HxWx3 uint8 RGB, mask HxW bool.

    ``todo`` is False for frames that are only context (their plate is already done).
    ``shot_id`` is the frame's shot (from the shots stage); a temporal fill never borrows pixels
    across a change of it. None: the frame belongs to the same shot as the frame before it.
    ``shot`` the shot model of its window (:class:`~cleanplate.motion.shot_model.ShotModel`), whose
    registration the fill reads; None: the fill registers the frames itself.
    ``refill``: a context frame a later frame of its shot builds on (the temporal fill carries the
    pixels it invented on): filled again in memory, never yielded.
    """

    frame_id: str
    index: int
    image: np.ndarray
    mask: np.ndarray
    todo: bool = True
    shot_id: str | None = None
    shot: Any = None
    refill: bool = False


@dataclass
class CheckFrame:
    """One finished plate handed to the plate checks, with what the earlier stages know of it.

    ``image`` and ``plate`` HxWx3 uint8 RGB, ``mask`` the HxW bool mask that was filled,
    ``saliency`` the segment stage's HxW float32 map of the frame when it has one (so the checks
    need not run the saliency model on the frame again), ``shot_id`` the frame's shot.
    """

    frame_id: str
    image: np.ndarray
    plate: np.ndarray | None
    mask: np.ndarray
    saliency: np.ndarray | None = None
    shot_id: str | None = None
