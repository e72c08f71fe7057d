"""The runner seam: where the stages run. A runner knows stages only by their callable interface.

:meth:`Runner.execute` takes the frames as thunks (each returns a decoded
:class:`~cleanplate.records.FrameRecord`), the shots stage (sequential, run where the frames
stream in), the window size, the model stages as
:class:`~cleanplate.stages.base.StageGroup` (a group runs in one place, one after the other: a Ray
actor pool, or the local main thread; its ``commits`` names the metadata stage committed when a
record leaves it) and the commit callback ``commit(rec, stage)``, which a runner always calls in
the driver, in input order per stage. ``on_work(stage, rec)``, when given, is called as a record
leaves each stage (progress that moves while a window is worked on).
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol, TypeVar

from cleanplate.records import FrameRecord
from cleanplate.stages.base import StageGroup, Window

T = TypeVar("T")

Thunk = Callable[[], FrameRecord]
ShotsFn = Callable[[Iterable[FrameRecord]], Iterator[FrameRecord]]
CommitFn = Callable[[FrameRecord, str], None]
WorkFn = Callable[[str, FrameRecord], None]


class Runner(Protocol):
    name: str

    def execute(self, frames: Iterable[Thunk], shots: ShotsFn, max_frames: int,
                groups: list[StageGroup], commit: CommitFn, on_work: WorkFn | None = None) -> None: ...

    def close(self) -> None: ...


def ordered_map(thunks: Iterable[Callable[[], T]], workers: int, ahead: int) -> Iterator[T]:
    """Run ``thunks`` on ``workers`` threads, at most ``ahead`` at a time; results in order."""
    if workers <= 1:
        for th in thunks:
            yield th()
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cleanplate-decode") as pool:
        pending: deque[Future[T]] = deque()
        for th in thunks:
            pending.append(pool.submit(th))
            if len(pending) >= ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


_END = object()


def background(items: Iterable[T], maxsize: int) -> Iterator[T]:
    """Produce ``items`` on a thread, at most ``maxsize`` ahead; its exception is raised here."""
    q: queue.Queue[object] = queue.Queue(maxsize=max(1, maxsize))
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_END)
        except BaseException as exc:  # handed to the consumer
            q.put(exc)

    thread = threading.Thread(target=produce, name="cleanplate-producer", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()


class Writer:
    """Commits (stage, records) items on a thread, at most ``maxsize`` items behind; its exception
    is raised at the next :meth:`put` or at :meth:`close`."""

    def __init__(self, commit: CommitFn, maxsize: int) -> None:
        self.commit = commit
        self.q: queue.Queue[tuple[str, Window] | None] = queue.Queue(maxsize=max(1, maxsize))
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._work, name="cleanplate-writer", daemon=True)
        self.thread.start()

    def _work(self) -> None:
        while True:
            item = self.q.get()
            if item is None:
                return
            if self.error is not None:
                continue
            stage, window = item
            try:
                for rec in window:
                    self.commit(rec, stage)
            except BaseException as exc:
                self.error = exc

    def put(self, stage: str, window: Window) -> None:
        if self.error is not None:
            raise self.error
        self.q.put((stage, window))

    def close(self) -> None:
        self.q.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error
