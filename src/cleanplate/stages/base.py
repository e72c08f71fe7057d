"""What every stage shares: the stage protocol, stage specs for the runners, failure recording.

A stage is a callable from a window of :class:`~cleanplate.records.FrameRecord` (consecutive
frames of one shot, at most ``segment.shot.max_frames``) to the same records, in the same order,
with its results set. A stage never raises for one frame's problem: it records the failure on the
record (``error``, ``failed_stage``) and later stages pass failed records on untouched.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
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
