"""The segment, characters and masks stages.

``segment``: the per-frame model (saliency, SAM2 ...) on every frame to do, ``segment.batch_size``
frames a call when the segmenter takes batches (a failed batch is retried frame by frame, so only
the bad frame fails). ``characters``: the
shot-level segmenter (``segment.shot.method``) over the window's per-frame results. ``masks``:
the characters' masks combined and dilated (``masks.dilate``, relative to 1080 lines when
``masks.dilate_relative``); the radius used is recorded per frame as ``dilate_px``.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from dataclasses import replace

from cleanplate import masks as M
from cleanplate.config import Config
from cleanplate.records import FrameRecord, SegmentResult
from cleanplate.segment.base import (
    BatchSegmenter,
    Segmenter,
    ShotSegmenter,
    create_segmenter,
    create_shot_segmenter,
)
from cleanplate.stages.base import InOrder, Window, fail, failure_text, note_weights, share_time, timed
from cleanplate.stages.shots import window_model


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
        for _ in self.stream(window, iter(window)):
            pass
        return window

    def stream(self, window: Window, upstream: Iterator[FrameRecord]) -> Iterator[FrameRecord]:
        """Segment the window's frames batch by batch, yielding records in order as they are done."""
        for _ in upstream:  # the segment stage comes first in its group: the window is there
            pass
        todo = _wanted(window, self.shot_level)
        order = InOrder(window)
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start:start + self.batch_size]
            if not (len(chunk) > 1 and self._batch(chunk)):
                for rec in chunk:
                    self._one(rec)
            yield from order.upto(chunk[-1])
        yield from order.upto(None)

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
    """Runs the shot-level segmenter over each window; a no-op for ``segment.shot.method: none``.

    The segmenter reads the window's shot model (``rec.shot``). When it raises, the frame that
    makes it fail is found by halving the window (a part that fails holds it) and fails alone,
    with its reason; the rest of the window is run again without it. A window without a shot
    model, or one that fails with every frame on its own, keeps its per-frame results, and the
    fallback is recorded in each frame's metadata (``shot_fallback``).
    """

    name = "characters"
    MAX_CULPRITS = 3
    """Frames failed one by one before the window falls back to per-frame results."""

    def __init__(self, config: Config, device: str, raise_errors: bool = False) -> None:
        self.shot: ShotSegmenter | None = create_shot_segmenter(config, device)
        self.raise_errors = raise_errors

    def __call__(self, window: Window) -> Window:
        recs = [r for r in _wanted(window, self.shot is not None) if r.segment is not None and not r.failed]
        if self.shot is None or not recs:
            return window
        t = time.perf_counter()
        if any(r.shot is None for r in recs):
            note = next((r.shot_note for r in recs if r.shot_note), None) or "no shot model for this window"
            self._fallback(recs, note)
        else:
            culprits = 0
            while recs:
                try:
                    self._run(recs)
                    break
                except Exception as exc:
                    if self.raise_errors:
                        raise
                    bad = self._culprit(recs) if culprits < self.MAX_CULPRITS else None
                    if bad is None:
                        self._fallback(recs, f"shot-level stage failed: {failure_text(exc)}")
                        break
                    fail(bad[0], bad[1], "characters", False)
                    culprits += 1
                    recs = [r for r in recs if r is not bad[0]]
        share_time([r for r in window if r.segment is not None], "characters", time.perf_counter() - t)
        return window

    def _call(self, recs: list[FrameRecord]) -> list[SegmentResult]:
        """The shot segmenter over ``recs`` with their shot model."""
        assert self.shot is not None
        results = self.shot.segment_shot([r.image for r in recs if r.image is not None],
                                         [r.segment for r in recs if r.segment is not None], shot=window_model(recs))
        if len(results) != len(recs):
            raise RuntimeError(f"shot segmenter returned {len(results)} results for {len(recs)} frames")
        return results

    def _run(self, recs: list[FrameRecord]) -> None:
        """The shot segmenter over ``recs``; results are set only when the whole call succeeds."""
        assert self.shot is not None
        for rec, res in zip(recs, self._call(recs), strict=True):
            rec.segment = res
            note_weights(rec, "segment", self.shot.weights_used())

    def _culprit(self, recs: list[FrameRecord]) -> tuple[FrameRecord, BaseException] | None:
        """The first frame that alone makes the shot segmenter fail, found by halving; None when
        no single frame does (the failure needs the frames together)."""
        assert self.shot is not None
        part = recs
        while len(part) > 1:
            half = len(part) // 2
            for side in (part[:half], part[half:]):
                if self._fails(side) is not None:
                    part = side
                    break
            else:
                return None
        exc = self._fails(part)
        return (part[0], exc) if exc is not None else None

    def _fails(self, recs: list[FrameRecord]) -> BaseException | None:
        """The exception the shot segmenter raises over ``recs`` (run on copies of their results), or None."""
        copies = [replace(r, segment=copy.deepcopy(r.segment)) for r in recs]
        try:
            self._call(copies)
        except Exception as exc:
            return exc
        return None

    @staticmethod
    def _fallback(recs: list[FrameRecord], note: str) -> None:
        for rec in recs:
            if rec.segment is not None:
                rec.segment.extra["shot_fallback"] = note


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
                    if rec.keep_out is not None:  # scenery by a person's word: never grown back into
                        rec.mask_raw &= ~rec.keep_out
                        rec.mask &= ~rec.keep_out
                except Exception as exc:
                    fail(rec, exc, "masks", self.raise_errors)
        return window
