"""The fill and checks stages.

``fill``: the inpainter on every frame to do; a batch inpainter gets ``fill.batch_size`` frames a
call (a failed call is retried frame by frame, so only the bad frame fails); one whose frames may be
filled at once on threads (``frame_threads``: PatchMatch, OpenCV) gets ``fill.workers`` frames at
a time, one per thread (each frame's plate is the same as when filled alone); a sequential one
(``temporal+<name>``) the window's frames in order, done frames included as context. The result is
composited into the frame (``masks.feather`` blended once, here): unmasked pixels stay the input's.
``checks``: the automatic plate checks (:meth:`~cleanplate.qa.checks.PlateChecker.check_shot`) over
the window's new plates, reusing the segment stage's saliency map.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from cleanplate import masks as M
from cleanplate.config import Config
from cleanplate.errors import FrameError
from cleanplate.fill.base import Inpainter, SequentialInpainter, create_inpainter
from cleanplate.fill.temporal import mark_refill
from cleanplate.motion.shot_model import ShotModel
from cleanplate.qa.checks import create_checker
from cleanplate.records import CheckFrame, FillResult, FrameRecord, SequenceFrame
from cleanplate.stages.base import InOrder, Window, fail, note_weights, share_time, timed
from cleanplate.stages.shots import window_model
from cleanplate.weights import WeightsUse


class Checker(Protocol):
    """Scores finished plates (:class:`~cleanplate.qa.checks.PlateChecker` is the one cleanplate ships)."""

    def check_shot(self, frames: list[CheckFrame], model: ShotModel | None = None) -> list[dict[str, object]]:
        """One result per frame, in order: scores, ``flags`` and ``detail`` (see :mod:`cleanplate.qa.checks`)."""
        ...

    def prepare_shot(self, frames: list[CheckFrame], model: ShotModel | None = None) -> Any:
        """What the shot says about each frame, from images and masks (before the plates)."""
        ...

    def check_prepared(self, ctx: Any, k: int, frame: CheckFrame) -> dict[str, object]:
        """Frame ``k``'s result, with ``prepare_shot``'s context."""
        ...

    def weights_used(self) -> list[WeightsUse]: ...


def fill_workers(config: Config) -> int:
    """Threads for a ``frame_threads`` fill: ``fill.workers``; for 0, ``run.threads`` when set, else
    one per CPU core, at most 4."""
    if config.fill.workers > 0:
        return config.fill.workers
    return config.run.threads or max(1, min(4, os.cpu_count() or 1))


def _usable(rec: FrameRecord) -> bool:
    return not rec.failed and rec.image is not None and rec.mask is not None


class FillStage:
    """Fills the removal masks; holds the inpainter (loaded once, in ``__init__``)."""

    name = "fill"

    def __init__(self, config: Config, device: str, raise_errors: bool = False,
                 inpainter: Inpainter | SequentialInpainter | None = None) -> None:
        self.inpainter = inpainter if inpainter is not None else create_inpainter(config, device)
        self.batch_size = config.fill.batch_size
        self.workers = fill_workers(config) if self.inpainter.frame_threads else 1
        self.feather = config.masks.feather
        self.raise_errors = raise_errors

    def __call__(self, window: Window) -> Window:
        for _ in self.stream(window, iter(window)):
            pass
        return window

    def stream(self, window: Window, upstream: Iterator[FrameRecord]) -> Iterator[FrameRecord]:
        """Fill the window; yield its records in order, each as soon as its plate is done (records
        with nothing to fill as soon as the ones before them are)."""
        for _ in upstream:  # the fill comes first in its group: the window is there
            pass
        upto = InOrder(window).upto

        if isinstance(self.inpainter, SequentialInpainter):
            for rec in self._sequence(window, self.inpainter):
                yield from upto(rec)
            yield from upto(None)
            return
        todo = [r for r in window if r.fill_todo and _usable(r)]
        if self.workers > 1 and len(todo) > 1:
            with ThreadPoolExecutor(min(self.workers, len(todo)), thread_name_prefix="cleanplate-fill") as pool:
                # each thread writes only its own record; map re-raises an error here, in order
                for rec in pool.map(lambda rec: (self._batch([rec]), rec)[1], todo):
                    yield from upto(rec)
        else:
            for start in range(0, len(todo), self.batch_size):
                batch = todo[start:start + self.batch_size]
                self._batch(batch)
                yield from upto(batch[-1])
        yield from upto(None)

    def _batch(self, batch: list[FrameRecord]) -> None:
        t = time.perf_counter()
        try:
            results = self.inpainter.fill([r.image for r in batch if r.image is not None],
                                          [r.mask for r in batch if r.mask is not None])
        except Exception as exc:
            if len(batch) == 1:
                fail(batch[0], exc, "fill", self.raise_errors)
                return
            if self.raise_errors and not isinstance(exc, FrameError):
                raise
            for rec in batch:
                self._batch([rec])
            return
        secs = (time.perf_counter() - t) / len(batch)
        for rec, res in zip(batch, results, strict=True):
            rec.timings["fill"] = round(rec.timings.get("fill", 0.0) + secs, 4)
            self._composite(rec, res)

    def _sequence(self, window: Window, inpainter: SequentialInpainter) -> Iterator[FrameRecord]:
        usable = [r for r in window if _usable(r)]
        by_id = {r.frame_id: r for r in usable if r.fill_todo}
        frames = [SequenceFrame(r.frame_id, r.index, r.image, r.mask, r.fill_todo, r.shot_id, r.shot)  # type: ignore[arg-type]
                  for r in usable]
        mark_refill(frames)  # the window is in memory: resumed frames rebuild what they carry on
        t = time.perf_counter()
        for frame, res in inpainter.fill_sequence(frames):
            rec = by_id[frame.frame_id]
            secs, t = time.perf_counter() - t, time.perf_counter()
            rec.timings["fill"] = round(rec.timings.get("fill", 0.0) + secs, 4)
            if isinstance(res, BaseException):
                fail(rec, res, "fill", self.raise_errors)
            else:
                self._composite(rec, res)
            yield rec

    def _composite(self, rec: FrameRecord, res: FillResult) -> None:
        """Paste the fill into the frame (unmasked pixels untouched, feather blended once)."""
        assert rec.image is not None and rec.mask is not None
        with timed(rec, "fill"):
            try:
                rec.plate = M.composite(rec.image, res.plate, rec.mask, self.feather)
                rec.fill = res
                if rec.shot is None and rec.shot_note:  # the window fell back: no shot model
                    res.extra["shot_fallback"] = rec.shot_note
            except Exception as exc:
                fail(rec, exc, "fill", self.raise_errors)
        note_weights(rec, "fill", self.inpainter.weights_used())


class ChecksStage:
    """Scores the new plates of each window; holds the checker and its saliency model."""

    name = "checks"

    def __init__(self, config: Config, device: str, raise_errors: bool = False,
                 checker: Checker | None = None) -> None:
        self.checker: Checker = checker if checker is not None else create_checker(config, device)
        self.raise_errors = raise_errors

    def __call__(self, window: Window) -> Window:
        for _ in self.stream(window, iter(window)):
            pass
        return window

    def stream(self, window: Window, ready: Iterator[FrameRecord]) -> Iterator[FrameRecord]:
        """Check each record of ``ready`` (the window's records, in order, as their plates are
        done) and yield it. What the shot says (background evidence, colours) is found once, from
        the images and masks of the window's frames to fill, before the first plate comes."""
        recs = [r for r in window if r.fill_todo and not r.failed and r.mask is not None and r.image is not None]
        ctx, index = None, {r.frame_id: k for k, r in enumerate(recs)}
        if recs:
            t = time.perf_counter()
            model = window_model(recs)
            try:
                ctx = self.checker.prepare_shot([self._frame(r) for r in recs], model)
            except Exception:  # each frame is then checked alone
                if self.raise_errors:
                    raise
            share_time(recs, "checks", time.perf_counter() - t)
        for rec in ready:
            if rec.frame_id in index and not rec.failed and rec.plate is not None:
                with timed(rec, "checks"):
                    try:
                        frame = self._frame(rec)
                        rec.checks = (self.checker.check_prepared(ctx, index[rec.frame_id], frame) if ctx is not None
                                      else self.checker.check_shot([frame])[0])
                    except Exception as exc:
                        fail(rec, exc, "checks", self.raise_errors)
                note_weights(rec, "fill", self.checker.weights_used())
            yield rec

    @staticmethod
    def _frame(rec: FrameRecord) -> CheckFrame:
        assert rec.image is not None and rec.mask is not None
        saliency = rec.segment.saliency if rec.segment is not None else None
        return CheckFrame(rec.frame_id, rec.image, rec.plate, rec.mask, saliency, rec.shot_id)
