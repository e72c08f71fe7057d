"""The local runner (default): model stages in the main thread, decode and writes on threads.

Frames are decoded by a small thread pool ahead of the model stages (at most one window ahead, so
the next window is ready when the model stages finish one). Each record goes to a writer thread
as soon as it leaves a stage group: a window's masks are committed once its characters are
decided, its plates one by one as they are filled and checked, so a kill loses at most the window
in segmentation and the plates in flight. Memory is bounded by about three windows of frames (a
shot window, ``shots.max_frames``, where a stage needs the shot's frames together; a few frames
otherwise).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from cleanplate.runners.base import CommitFn, ShotsFn, Thunk, WorkFn, Writer, background, ordered_map
from cleanplate.stages.base import StageGroup, run_streaming
from cleanplate.stages.shots import shot_windows

DECODE_THREADS = max(1, min(4, (os.cpu_count() or 1)))
WRITE_BEHIND = 256
"""Commit items the writer thread may lag behind (an item is a window's masks or one plate)."""


class LocalRunner:
    name = "local"

    def execute(self, frames: Iterable[Thunk], shots: ShotsFn, max_frames: int,
                groups: list[StageGroup], commit: CommitFn, on_work: WorkFn | None = None) -> None:
        built = [(g.commits, [spec.build() for spec in g.specs]) for g in groups]
        decoded = background(ordered_map(frames, DECODE_THREADS, 2 * DECODE_THREADS), max_frames)
        writer = Writer(commit, maxsize=WRITE_BEHIND)
        try:
            for window in shot_windows(shots(decoded), max_frames):
                for stage_name, stages in built:
                    # each record is committed as it leaves its group: a window's masks once its
                    # characters are decided, plates one by one as they are filled
                    for rec in run_streaming(stages, window, on_work):
                        writer.put(stage_name, [rec])
        finally:
            writer.close()

    def close(self) -> None:
        pass
