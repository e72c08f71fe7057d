"""The shots stage: every record gets its ``shot_id`` and its link; the shot model of each window.

Shots come from :class:`~cleanplate.motion.shots.ShotLabeller` (scene ids parsed from frame ids,
frame-size changes, a PySceneDetect detector fed frame by frame). As the frames stream past, each
decoded frame is registered once onto the decoded frame before it, at ``shots.work_side``
(:func:`~cleanplate.motion.shot_model.link`, stored as ``rec.link``): the one registration of the
frame in the whole run. A detector cut between two frames whose link holds and whose common
scenery matches (a fast pan over a busy set) is vetoed. The stage is sequential by nature (a
detector keeps state across frames): the driver runs it as the frames stream past, before
segmentation. Failed frames (nothing decoded) take the shot of the frame before them (of the
first frame when they lead), so every record carries a ``shot_id``.

:class:`ShotModelStage` chains the links of a window into its
:class:`~cleanplate.motion.shot_model.ShotModel` (``rec.shot``), which the characters stage,
the temporal fill and the checks read instead of registering again.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from cleanplate.config import Config, ShotsConfig
from cleanplate.motion.registration import FrameFeatures, Registration, warp_into
from cleanplate.motion.shot_model import Link, ShotModel, link, registrar_for, small_frame
from cleanplate.motion.shots import ShotLabeller
from cleanplate.records import FrameRecord
from cleanplate.stages.base import Window, log


@dataclass
class _Item:
    rec: FrameRecord
    image: np.ndarray
    leading: list[FrameRecord]  # failed frames right before it
    features: FrameFeatures


class ShotStage:
    """Labels a stream of records with shots and links (``shots`` holds the settings)."""

    name = "shots"

    def __init__(self, config: Config | ShotsConfig) -> None:
        self.sc = config.shots if isinstance(config, Config) else config
        self.labeller = ShotLabeller(self.sc)
        self.registrar = registrar_for(self.sc)

    def __call__(self, records: Iterable[FrameRecord]) -> Iterator[FrameRecord]:
        """Yield the records in order with ``shot_id`` and ``link`` set, after a bounded delay (the detector's)."""
        trailing: list[FrameRecord] = []  # failed frames after the last decoded one
        last_shot: list[str] = []
        upstream = [0.0]  # seconds spent waiting for records (decode), not labelling
        previous: list[_Item] = []

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
                t = time.perf_counter()
                small = small_frame(rec.image, self.sc.work_side)
                item = _Item(rec, small, list(trailing), self.registrar.features(small, np.zeros(small.shape[:2], bool)))
                rec.small = small
                prev = previous[0] if previous else None
                if prev is not None and not trailing and prev.rec.image is not None \
                        and prev.rec.image.shape == rec.image.shape:
                    rec.link = link(self.registrar, prev.features, item.features, rec.image.shape[:2],
                                    prev.rec.frame_id)
                else:
                    rec.link = None
                previous[:] = [item]
                trailing.clear()
                rec.timings["shots"] = round(rec.timings.get("shots", 0.0) + time.perf_counter() - t, 4)
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

    def _same_view(self, prev: _Item, cur: _Item) -> bool:
        """Whether ``prev`` registers onto ``cur`` (their link) and matches it where both see the set."""
        lk: Link | None = cur.rec.link
        if lk is None or not lk.ok or lk.previous != prev.rec.frame_id or prev.image.shape != cur.image.shape:
            return False
        try:
            h, w = cur.image.shape[:2]
            H, W = cur.rec.image.shape[:2]  # type: ignore[union-attr]
            s = np.diag([w / W, h / H, 1.0])
            m = s @ np.linalg.inv(lk.matrix) @ np.linalg.inv(s)  # prev -> cur at work scale
            reg = Registration("homography", m / m[2, 2])
            px, valid = warp_into(prev.image, np.ones((h, w), bool), reg, (0, 0, w, h))
            if valid.mean() < 0.3:
                return False
            diff = np.abs(px.astype(np.int16) - cur.image).mean(-1)[valid]
        except (ValueError, np.linalg.LinAlgError):  # cannot tell: keep the cut, the safe side
            return False
        return float(np.median(diff)) <= self.sc.same_view_tolerance


class ShotModelStage:
    """Builds each window's :class:`ShotModel` from its records' links (no registration here).

    The model is shared by the window's records (``rec.shot``). When it cannot be built, the
    records keep ``shot`` None and ``shot_note`` says why: the shot-level stages fall back to
    per-frame results, and the fallback is recorded in the metadata.
    """

    name = "shot-model"

    def __init__(self, config: Config | ShotsConfig) -> None:
        self.sc = config.shots if isinstance(config, Config) else config

    def __call__(self, window: Window) -> Window:
        live = [r for r in window if r.image is not None and r.small is not None]
        if not live:
            return window
        t = time.perf_counter()
        try:
            shape = live[0].image.shape[:2]  # type: ignore[union-attr]
            live = [r for r in live if r.image.shape[:2] == shape]  # type: ignore[union-attr]
            model = ShotModel.from_links([r.frame_id for r in live], [r.link for r in live],
                                         [r.small for r in live], shape, self.sc.snap_px)  # type: ignore[misc]
        except Exception as exc:  # the window falls back to per-frame results
            note = f"shot model not built: {type(exc).__name__}: {exc}"[:300]
            log.warning("%s (frames %s..%s)", note, window[0].frame_id, window[-1].frame_id)
            for r in window:
                r.shot, r.shot_note = None, note
            return window
        secs = (time.perf_counter() - t) / len(live)
        for r in live:
            r.shot = model
            r.small = None  # the model holds it now
            r.timings["shots"] = round(r.timings.get("shots", 0.0) + secs, 4)
        return window


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
