"""The segment, characters and masks stages.

``segment``: the per-frame model (saliency, SAM2 ...) on every frame to do, ``segment.batch_size``
frames a call when the segmenter takes batches (a failed batch is retried frame by frame, so only
the bad frame fails). ``characters``: the
shot-level segmenter (``segment.shot.method``) over the window's per-frame results. ``masks``:
the characters' masks combined and dilated (``masks.dilate``, relative to 1080 lines when
``masks.dilate_relative``); the radius used is recorded per frame as ``dilate_px``.
"""

from __future__ import annotations

import time

from cleanplate import masks as M
from cleanplate.config import Config
from cleanplate.records import FrameRecord
from cleanplate.segment.base import (
    BatchSegmenter,
    Segmenter,
    ShotSegmenter,
    create_segmenter,
    create_shot_segmenter,
)
from cleanplate.stages.base import Window, fail, note_weights, share_time, timed


def _wanted(window: Window, shot_level: bool) -> list[FrameRecord]:
    """Records the segment model must see: the frames to do, and with a shot-level stage the
    window's done frames too (context), whenever the window has one to do."""
    live = [r for r in window if not r.failed and r.image is not None]
    if shot_level and any(r.segment_todo for r in live):
        return live
    return [r for r in live if r.segment_todo]


class SegmentStage:
    """Runs the per-frame segmenter; holds it (loaded once, in ``__init__``)."""

    name = "segment"

    def __init__(self, config: Config, device: str, raise_errors: bool = False,
                 segmenter: Segmenter | None = None) -> None:
        self.segmenter = segmenter if segmenter is not None else create_segmenter(config, device)
        self.shot_level = config.segment.shot.method != "none"
        self.batch_size = config.segment.batch_size if isinstance(self.segmenter, BatchSegmenter) else 1
        self.raise_errors = raise_errors

    def __call__(self, window: Window) -> Window:
        todo = _wanted(window, self.shot_level)
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start:start + self.batch_size]
            if len(chunk) > 1 and self._batch(chunk):
                continue
            for rec in chunk:
                self._one(rec)
        return window

    def _one(self, rec: FrameRecord) -> None:
        assert rec.image is not None
        with timed(rec, "segment"):
            try:
                rec.segment = self.segmenter.segment(rec.image)
            except Exception as exc:
                fail(rec, exc, "segment", self.raise_errors)
        note_weights(rec, "segment", self.segmenter.weights_used())

    def _batch(self, chunk: list[FrameRecord]) -> bool:
        """Segment ``chunk`` in one call; False (nothing recorded) when the call fails."""
        assert isinstance(self.segmenter, BatchSegmenter)
        t = time.perf_counter()
        try:
            results = self.segmenter.segment_batch([r.image for r in chunk if r.image is not None])
            if len(results) != len(chunk):
                raise RuntimeError(f"segment_batch returned {len(results)} results for {len(chunk)} frames")
        except Exception:  # find the bad frame: frame by frame
            return False
        share_time(chunk, "segment", time.perf_counter() - t)
        for rec, res in zip(chunk, results, strict=True):
            rec.segment = res
            note_weights(rec, "segment", self.segmenter.weights_used())
        return True


class CharactersStage:
    """Runs the shot-level segmenter over each window; a no-op for ``segment.shot.method: none``."""

    name = "characters"

    def __init__(self, config: Config, device: str, raise_errors: bool = False) -> None:
        self.shot: ShotSegmenter | None = create_shot_segmenter(config, device)
        self.raise_errors = raise_errors

    def __call__(self, window: Window) -> Window:
        recs = [r for r in _wanted(window, self.shot is not None) if r.segment is not None and not r.failed]
        if self.shot is None or not recs:
            return window
        t = time.perf_counter()
        try:
            results = self.shot.segment_shot([r.image for r in recs if r.image is not None],
                                             [r.segment for r in recs if r.segment is not None])
            if len(results) != len(recs):
                raise RuntimeError(f"shot segmenter returned {len(results)} results for {len(recs)} frames")
            for rec, res in zip(recs, results, strict=True):
                rec.segment = res
                note_weights(rec, "segment", self.shot.weights_used())
        except Exception as exc:  # the window's frames fail together: one call made them
            for rec in recs:
                fail(rec, exc, "characters", self.raise_errors)
        share_time(recs, "characters", time.perf_counter() - t)
        return window


class MaskStage:
    """Combines the characters' masks of each frame to do and dilates the union."""

    name = "masks"

    def __init__(self, config: Config, raise_errors: bool = False) -> None:
        self.dilate = config.masks.dilate
        self.relative = config.masks.dilate_relative
        self.raise_errors = raise_errors

    def __call__(self, window: Window) -> Window:
        for rec in window:
            if rec.failed or not rec.segment_todo or rec.segment is None or rec.image is None:
                continue
            with timed(rec, "masks"):
                try:
                    shape = rec.image.shape
                    rec.mask_raw = M.combine((i.mask for i in rec.segment.instances if i.character), shape[:2])
                    rec.dilate_px = M.dilation_radius(self.dilate, self.relative, shape)
                    rec.mask = M.dilate(rec.mask_raw, rec.dilate_px)
                except Exception as exc:
                    fail(rec, exc, "masks", self.raise_errors)
        return window
