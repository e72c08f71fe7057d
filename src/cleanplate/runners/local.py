"""The local runner (default): model stages in the main thread, decode and writes on threads.

Frames are decoded by a small thread pool ahead of the model stages (at most one window ahead, so
the next window is ready when the model stages finish one); finished windows go to a writer
thread that commits them (at most one window behind). Memory is bounded by about three windows
of frames (a shot window, ``segment.shot.max_frames``, where a stage needs the shot's frames together;
a few frames otherwise).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from cleanplate.runners.base import CommitFn, ShotsFn, Thunk, Writer, background, ordered_map
from cleanplate.stages.base import StageSpec
from cleanplate.stages.shots import shot_windows

DECODE_THREADS = max(1, min(4, (os.cpu_count() or 1)))


class LocalRunner:
    name = "local"

    def execute(self, frames: Iterable[Thunk], shots: ShotsFn, max_frames: int,
                groups: list[list[StageSpec]], commit: CommitFn) -> None:
        stages = [spec.build() for group in groups for spec in group]
        decoded = background(ordered_map(frames, DECODE_THREADS, 2 * DECODE_THREADS), max_frames)
        writer = Writer(commit, maxsize=1)
        try:
            for window in shot_windows(shots(decoded), max_frames):
                for stage in stages:
                    window = stage(window)
                writer.put(window)
        finally:
            writer.close()

    def close(self) -> None:
        pass
