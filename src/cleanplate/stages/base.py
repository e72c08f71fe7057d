"""What every stage shares: the stage protocol, stage specs for the runners, failure recording.

A stage is a callable from a window of :class:`~cleanplate.records.FrameRecord` (consecutive
frames of one shot, at most ``segment.shot.max_frames``) to the same records, in the same order,
with its results set. A stage never raises for one frame's problem: it records the failure on the
record (``error``, ``failed_stage``) and later stages pass failed records on untouched.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

from cleanplate.errors import CleanplateError, FrameError
from cleanplate.records import FrameRecord, WeightsNote
from cleanplate.weights import WeightsUse

log = logging.getLogger("cleanplate")

Window = list[FrameRecord]


class Stage(Protocol):
    """A callable over a window of records; model stages load their model in ``__init__``."""

    def __call__(self, window: Window) -> Window: ...


class StageFactory(Protocol):
    def __call__(self, **kwargs: object) -> Stage: ...


@dataclass
class StageSpec:
    """How a runner builds and places a stage.

    ``cls(**kwargs)`` builds it (a Ray actor does that once, in the worker); ``model``: it holds a
    model, so it runs in an actor pool with ``num_gpus`` when the device is a GPU. ``instance``:
    one already built in this process (the local runner uses it instead of building another).
    """

    name: str
    cls: StageFactory
    kwargs: dict[str, object] = field(default_factory=dict)
    model: bool = False
    instance: Stage | None = None

    def build(self) -> Stage:
        if self.instance is None:
            self.instance = self.cls(**self.kwargs)
        return self.instance

    def __getstate__(self) -> dict[str, object]:  # a built instance stays in its process
        return {**self.__dict__, "instance": None}


@dataclass
class StageGroup:
    """Stages that run together (one Ray actor pool, or the local main thread), and the metadata
    stage whose outputs the driver commits once a record leaves the group (``segment``: the
    masks, ``fill``: the plates)."""

    commits: str
    specs: list[StageSpec]


class InOrder:
    """Releases a window's records in order: :meth:`upto` yields those not yet released up to and
    including ``rec`` (all that are left for None), so a stage that finishes records out of turn,
    or skips some, still hands them on in input order as soon as it can."""

    def __init__(self, window: Iterable[FrameRecord]) -> None:
        self._pending = iter(window)

    def upto(self, rec: FrameRecord | None) -> Iterator[FrameRecord]:
        for r in self._pending:
            yield r
            if r is rec:
                return


def run_streaming(stages: list[Stage], window: Window,
                  on_record: Callable[[str, FrameRecord], None] | None = None) -> Iterator[FrameRecord]:
    """Chain ``stages`` over ``window`` and yield each record, in order, as soon as the last stage
    is done with it. A stage with ``stream(window, upstream)`` hands records on one by one; any
    other stage takes the whole window once every record reached it. ``on_record(stage, rec)``
    is called as each record leaves each stage (progress)."""
    it: Iterator[FrameRecord] = iter(window)
    for stage in stages:
        stream = getattr(stage, "stream", None)
        it = stream(window, it) if stream is not None else _whole(stage, window, it)
        if on_record is not None:
            it = _reporting(it, getattr(stage, "name", type(stage).__name__), on_record)
    return it


def _whole(stage: Stage, window: Window, upstream: Iterator[FrameRecord]) -> Iterator[FrameRecord]:
    for _ in upstream:
        pass
    yield from stage(window)


def _reporting(it: Iterator[FrameRecord], name: str, fn: Callable[[str, FrameRecord], None]
               ) -> Iterator[FrameRecord]:
    for rec in it:
        fn(name, rec)
        yield rec


def failure_text(exc: BaseException) -> str:
    """The one-line reason recorded for a frame."""
    if isinstance(exc, CleanplateError):
        return str(exc)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"internal error: {type(exc).__name__}" + (f": {text}" if text else "")


def fail(rec: FrameRecord, exc: BaseException, stage: str, raise_errors: bool) -> None:
    """Record the frame's failure (one line) and log it as a warning.

    With ``raise_errors`` (``--debug``) internal errors propagate instead; bad input
    (:class:`FrameError`) is always only recorded.
    """
    if raise_errors and not isinstance(exc, FrameError):
        raise exc
    if rec.error is None:
        rec.error, rec.failed_stage = failure_text(exc), stage
    log.warning("%s %s failed: %s", stage, rec.frame_id, rec.error)


@contextmanager
def timed(rec: FrameRecord, name: str) -> Iterator[None]:
    """Add the seconds the block takes to ``rec.timings[name]``."""
    t = time.perf_counter()
    try:
        yield
    finally:
        rec.timings[name] = round(rec.timings.get(name, 0.0) + time.perf_counter() - t, 4)


def share_time(recs: list[FrameRecord], name: str, seconds: float) -> None:
    """Spread the seconds of a call over several frames evenly."""
    for r in recs:
        r.timings[name] = round(r.timings.get(name, 0.0) + seconds / len(recs), 4)


def note_weights(rec: FrameRecord, stage: str, used: list[WeightsUse]) -> None:
    for w in used:
        note = WeightsNote(stage, w.name, w.path, w.sha256, w.source)
        if note not in rec.weights:
            rec.weights.append(note)
