"""The shots stage: every record gets its ``shot_id``; windows of one shot for the shot-level stages.

Shots come from :class:`~cleanplate.motion.shots.ShotLabeller` (scene ids parsed from frame ids,
frame-size changes, a PySceneDetect detector fed frame by frame). A detector cut between two frames
that register onto each other with matching scenery (a fast pan over a busy set) is vetoed. The
stage is sequential by nature (a detector keeps state across frames): the driver runs it as the
frames stream past, before segmentation. Failed frames (nothing decoded) take the shot of the frame
before them (of the first frame when they lead), so every record carries a ``shot_id``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np

from cleanplate.config import Config, TemporalConfig
from cleanplate.motion.registration import FrameFeatures, Registrar, warp_into
from cleanplate.motion.shots import ShotLabeller
from cleanplate.records import FrameRecord
from cleanplate.stages.base import Window

_VIEW_SIDE = 512  # the same-view check registers frames scaled to this longer side


@dataclass
class _Item:
    rec: FrameRecord
    image: np.ndarray
    leading: list[FrameRecord] = field(default_factory=list)  # failed frames right before it
    features: FrameFeatures | None = None


class ShotStage:
    """Labels a stream of records with shots (``fill.temporal`` holds the detector settings)."""

    name = "shots"

    def __init__(self, config: Config | TemporalConfig) -> None:
        self.tc = config.fill.temporal if isinstance(config, Config) else config
        self.labeller = ShotLabeller(self.tc)
        self.registrar = Registrar(self.tc)

    def __call__(self, records: Iterable[FrameRecord]) -> Iterator[FrameRecord]:
        """Yield the records in order with ``shot_id`` set, after a bounded delay (the detector's)."""
        trailing: list[FrameRecord] = []  # failed frames after the last decoded one
        last_shot: list[str] = []
        upstream = [0.0]  # seconds spent waiting for records (decode), not labelling

        def items() -> Iterator[_Item]:
            it = iter(records)
            while True:
                t = time.perf_counter()
                rec = next(it, None)
                upstream[0] += time.perf_counter() - t
                if rec is None:
                    return
                if rec.image is None:  # failed to decode: goes out just before the next decoded frame
                    trailing.append(rec)
                    continue
                item = _Item(rec, self._small(rec.image), list(trailing))
                trailing.clear()
                yield item

        labelled = self.labeller.label(items(), lambda i: i.rec.frame_id, lambda i: i.rec.image, self._same_view)
        while True:
            t, up = time.perf_counter(), upstream[0]
            got = next(labelled, None)
            if got is None:
                break
            item, shot = got
            spent = time.perf_counter() - t - (upstream[0] - up)
            item.rec.timings["shots"] = round(item.rec.timings.get("shots", 0.0) + max(spent, 0.0), 4)
            for rec in item.leading:  # the shot of the frame before them (of this one when they lead)
                rec.shot_id = last_shot[0] if last_shot else shot.shot_id
                yield rec
            item.rec.shot_id = shot.shot_id
            yield item.rec
            last_shot[:] = [shot.shot_id]
        for rec in trailing:
            rec.shot_id = last_shot[0] if last_shot else "shot0000"
            yield rec

    @staticmethod
    def _small(image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        f = _VIEW_SIDE / max(h, w)
        if f >= 1:
            return image
        return cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)

    def _features(self, item: _Item) -> FrameFeatures:
        if item.features is None:
            item.features = self.registrar.features(item.image, np.zeros(item.image.shape[:2], bool))
        return item.features

    def _same_view(self, prev: _Item, cur: _Item) -> bool:
        """Whether ``prev`` registers onto ``cur`` and matches it where both see the set (no cut)."""
        if prev.image.shape != cur.image.shape:
            return False
        try:
            reg = self.registrar.register(self._features(cur), self._features(prev))
            if not reg.ok:
                return False
            h, w = cur.image.shape[:2]
            px, valid = warp_into(prev.image, np.ones((h, w), bool), reg, (0, 0, w, h))
            if valid.mean() < 0.3:
                return False
            diff = np.abs(px.astype(np.int16) - cur.image).mean(-1)[valid]
        except (cv2.error, ValueError, np.linalg.LinAlgError):  # cannot tell: keep the cut, the safe side
            return False
        return float(np.median(diff)) <= self.tc.border_tolerance


def shot_windows(records: Iterable[FrameRecord], max_frames: int) -> Iterator[Window]:
    """Group consecutive records of one shot into windows of at most ``max_frames`` frames.

    A shot longer than that is split so that no window of it holds fewer than ``max_frames // 2``
    frames: when a full window's shot goes on, its first half is handed on and the rest starts the
    next window. (Cut at ``max_frames``, a 130-frame shot would end in a 10-frame window, too little
    for the shot-level stages: a background model and tracks need the frames around.)
    """
    window: Window = []
    for rec in records:
        if window and rec.shot_id != window[-1].shot_id:
            yield window
            window = []
        elif len(window) >= max_frames:
            cut = max(1, max_frames - max_frames // 2)
            yield window[:cut]
            window = window[cut:]
        window.append(rec)
    if window:
        yield window
