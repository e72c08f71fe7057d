"""The runner seam: where the stages run. A runner knows stages only by their callable interface.

:meth:`Runner.execute` takes the frames as thunks (each returns a decoded
:class:`~cleanplate.records.FrameRecord`), the shots stage (sequential, run where the frames
stream in), the window size, the model stages as groups of :class:`~cleanplate.stages.base.StageSpec`
(a group runs in one place, one after the other: a Ray actor pool, or the local main thread) and
the commit callback, which a runner always calls in the driver, in input order.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol, TypeVar

from cleanplate.records import FrameRecord
from cleanplate.stages.base import StageSpec, Window

T = TypeVar("T")

Thunk = Callable[[], FrameRecord]
ShotsFn = Callable[[Iterable[FrameRecord]], Iterator[FrameRecord]]
CommitFn = Callable[[FrameRecord], None]


class Runner(Protocol):
    name: str

    def execute(self, frames: Iterable[Thunk], shots: ShotsFn, max_frames: int,
                groups: list[list[StageSpec]], commit: CommitFn) -> None: ...

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
    """Commits windows on a thread, at most ``maxsize`` windows behind; its exception is raised
    at the next :meth:`put` or at :meth:`close`."""

    def __init__(self, commit: CommitFn, maxsize: int) -> None:
        self.commit = commit
        self.q: queue.Queue[Window | None] = queue.Queue(maxsize=max(1, maxsize))
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._work, name="cleanplate-writer", daemon=True)
        self.thread.start()

    def _work(self) -> None:
        while True:
            window = self.q.get()
            if window is None:
                return
            if self.error is not None:
                continue
            try:
                for rec in window:
                    self.commit(rec)
            except BaseException as exc:
                self.error = exc

    def put(self, window: Window) -> None:
        if self.error is not None:
            raise self.error
        self.q.put(window)

    def close(self) -> None:
        self.q.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error
