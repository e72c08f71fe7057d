"""The Ray Data runner (``--runner ray``): model stages in actor pools on a Ray cluster.

The driver decodes the frames (a thread pool), runs the shots stage over them as they stream
past and groups them into shot windows (``segment.shot.max_frames``), so a shot's frames stay
together: one dataset row per window. Windows go to Ray in chunks of about
``run.ray_chunk_frames`` frames (memory on the driver stays bounded); each stage group is one
``map_batches`` over a callable class (:class:`RayStage`, which builds its stages once in
``__init__``) with ``compute=ActorPoolStrategy(size=run.ray_actors)``, ``num_gpus`` per model
actor and ``batch_size=1`` window. The driver iterates the results in input order and commits them,
a window at a time (its masks, then its plates): only the driver writes outputs, manifests and
metadata, and a kill loses the windows in flight. Ray is imported lazily.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from cleanplate.config import Config
from cleanplate.errors import BackendUnavailableError
from cleanplate.runners.base import CommitFn, ShotsFn, Thunk, WorkFn, background, ordered_map
from cleanplate.runners.local import DECODE_THREADS
from cleanplate.stages.base import Stage, StageGroup, StageSpec, Window
from cleanplate.stages.shots import shot_windows

INSTALL = "pip install 'cleanplate[ray]'"


def _import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise BackendUnavailableError(f"--runner ray needs Ray Data ({exc}): {INSTALL}") from None
    return ray


def _dumps(window: Window) -> bytes:
    return pickle.dumps(window, protocol=pickle.HIGHEST_PROTOCOL)


def _loads(blob: bytes) -> Window:
    window: Window = pickle.loads(blob)
    return window


class RayStage:
    """A Ray Data callable class: builds a group of stages once, then maps window rows through them.

    :func:`_stage_class` makes one subclass per group with the group's specs as a class attribute
    (shipped with the class), so the actors take no constructor arguments.
    """

    specs: list[StageSpec] = []

    def __init__(self) -> None:
        self.stages: list[Stage] = [spec.build() for spec in self.specs]

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = []
        for blob in batch["window"]:
            window = _loads(bytes(blob))
            for stage in self.stages:
                window = stage(window)
            out.append(_dumps(window))
        return {"window": np.array(out, dtype=object)}


def _stage_class(group: list[StageSpec]) -> type[RayStage]:
    name = "RayStage_" + "_".join(spec.name for spec in group)
    return type(name, (RayStage,), {"specs": list(group), "__module__": __name__})


def _chunks(windows: Iterable[Window], frames: int) -> Iterator[list[Window]]:
    chunk: list[Window] = []
    n = 0
    for w in windows:
        chunk.append(w)
        n += len(w)
        if n >= frames:
            yield chunk
            chunk, n = [], 0
    if chunk:
        yield chunk


class RayRunner:
    name = "ray"

    def __init__(self, config: Config, device: str) -> None:
        self.ray = _import_ray()
        rc = config.run
        self.actors, self.cpus, self.chunk = rc.ray_actors, rc.ray_num_cpus, rc.ray_chunk_frames
        self.gpus = rc.ray_num_gpus if rc.ray_num_gpus is not None else (1.0 if device == "cuda" else 0.0)
        self._owns = False
        if not self.ray.is_initialized():
            self.ray.init(address=rc.ray_address, include_dashboard=False, log_to_driver=False,
                          logging_level="ERROR")
            self._owns = True
        ctx = self.ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True  # results (and so commits) in input order
        ctx.enable_progress_bars = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)  # no per-dataset INFO lines on the console

    def execute(self, frames: Iterable[Thunk], shots: ShotsFn, max_frames: int,
                groups: list[StageGroup], commit: CommitFn, on_work: WorkFn | None = None) -> None:
        from ray.data import ActorPoolStrategy

        def chunks() -> Iterator[list[Window]]:
            decoded = ordered_map(frames, DECODE_THREADS, 2 * DECODE_THREADS)
            yield from _chunks(shot_windows(shots(decoded), max_frames), self.chunk)

        for chunk in background(chunks(), 1):  # the next chunk decodes while this one runs
            ds = self.ray.data.from_items([{"window": _dumps(w)} for w in chunk])
            for group in groups:
                model = any(spec.model for spec in group.specs)
                ds = ds.map_batches(_stage_class(group.specs), batch_size=1,
                                    batch_format="numpy", compute=ActorPoolStrategy(size=self.actors),
                                    num_cpus=self.cpus, num_gpus=self.gpus if model else 0)
            for row in ds.iter_rows():  # a window comes back whole: its masks, then its plates
                window = _loads(bytes(row["window"]))
                for group in groups:
                    for rec in window:
                        commit(rec, group.commits)

    def close(self) -> None:
        if self._owns and self.ray.is_initialized():
            self.ray.shutdown()
            self._owns = False
