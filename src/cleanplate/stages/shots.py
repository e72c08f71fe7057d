"""The shots stage: every record gets its ``shot_id`` and its link; the shot model of each window.

Shots come from :class:`~cleanplate.motion.shots.ShotLabeller` (scene ids parsed from frame ids,
frame-size changes, a PySceneDetect detector fed frame by frame). A detector cut between two frames
that register onto each other (at ``shots.work_side``) with matching scenery (a fast pan over a busy
set) is vetoed (the shot model registers the pair again, with the characters kept out). The stage is sequential by nature (a
detector keeps state across frames): the driver runs it as the frames stream past, before
segmentation. Failed frames (nothing decoded) take the shot of the frame before them (of the
first frame when they lead), so every record carries a ``shot_id``.

:class:`ShotModelStage` registers each frame of a window once onto the frame before it and chains
the links into the window's :class:`~cleanplate.motion.shot_model.ShotModel` (``rec.shot``), which
the characters stage, the temporal fill and the checks read instead of registering again.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from cleanplate.config import Config, ShotsConfig
from cleanplate.motion.registration import FrameFeatures, Registrar, Registration, warp_into
from cleanplate.motion.shot_model import (
    FeatureCache,
    Link,
    ShotModel,
    link,
    register_chain,
    register_direct,
    small_frame,
)
from cleanplate.motion.shots import ShotLabeller
from cleanplate.records import FrameRecord
from cleanplate.stages.base import Window, log

VETO_FEATURES = 2
"""The veto of a detector's cut registers the two frames with this many times ``shots.max_features``
(with 1000 keypoints two cuts in DAVIS bmx-trees' pan stood, with 2000 none did)."""


@dataclass
class _Item:
    rec: FrameRecord
    image: np.ndarray
    leading: list[FrameRecord]  # failed frames right before it
    features: FrameFeatures | None = None


class ShotStage:
    """Labels a stream of records with shots and links (``shots`` holds the settings)."""

    name = "shots"

    def __init__(self, config: Config | ShotsConfig) -> None:
        self.sc = config.shots if isinstance(config, Config) else config
        self.labeller = ShotLabeller(self.sc)
        # a cut candidate is rare and worth care: the veto registers with twice the keypoints
        self.registrar = Registrar(self.sc.model_copy(update={"max_features": VETO_FEATURES * self.sc.max_features}))

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
                t = time.perf_counter()
                small = small_frame(rec.image, self.sc.work_side)
                item = _Item(rec, small, list(trailing))
                rec.small = small
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

    def _features(self, item: _Item) -> FrameFeatures:
        if item.features is None:
            item.features = self.registrar.features(item.image, np.zeros(item.image.shape[:2], bool))
        return item.features

    def _same_view(self, prev: _Item, cur: _Item) -> bool:
        """Whether ``prev`` registers onto ``cur`` and matches it where both see the set (no cut).
        The shot model does not reuse this registration: it was made with the characters in view."""
        if prev.image.shape != cur.image.shape or prev.rec.image is None or cur.rec.image is None:
            return False
        lk = link(self.registrar, self._features(prev), self._features(cur), cur.rec.image.shape[:2],
                  prev.rec.frame_id)
        if not lk.ok:
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
    """Builds each window's :class:`ShotModel` (``rec.shot``, shared by the window's records).

    Each frame is registered once onto the frame before it, with what is known of its characters
    kept out of the keypoints (the per-frame detector's candidates, or the masks read from disk):
    registered with the characters in view, a large moving character bends the homography (on
    DAVIS tennis the tracks' masked area grew from 1.15 to 1.44 of the truth). So the link the
    shots stage found to veto a detector's cut (characters in view) is not reused: that pair is
    registered again here, the only frames registered twice. A link this stage made is stored with
    the frame's segment record and reused by later commands (``inpaint`` after ``segment``, a
    resumed ``run``), so they fill along the same registration. A record that has its model already (built in
    the segment group of ``run``) is passed on. When the model cannot be built, the records keep
    ``shot`` None and ``shot_note`` says why: the shot-level stages fall back to per-frame
    results, and the fallback is recorded in the metadata.

    ``direct``: also register each frame directly onto the ``shots.direct_links`` frames before it
    (:func:`~cleanplate.motion.shot_model.register_direct`, with the chain's features), for the
    temporal fill; stored with the frame's segment record (``rec.direct_links``) and reused like
    its link. The pipeline sets it only where a temporal fill reads the model.
    """

    name = "shot-model"

    def __init__(self, config: Config | ShotsConfig, raise_errors: bool = False, direct: bool = True) -> None:
        self.sc = config.shots if isinstance(config, Config) else config
        self.registrar = Registrar(self.sc)
        self.raise_errors = raise_errors
        self.depth = self.sc.direct_links if direct else 0

    def __call__(self, window: Window) -> Window:
        live = [r for r in window if r.image is not None and not r.failed]
        if not live or all(r.shot is not None for r in live):
            return window
        t = time.perf_counter()
        try:
            shape = live[0].image.shape[:2]  # type: ignore[union-attr]
            live = [r for r in live if r.image.shape[:2] == shape]  # type: ignore[union-attr]
            small = [r.small if r.small is not None else small_frame(r.image, self.sc.work_side)  # type: ignore[arg-type]
                     for r in live]
            follows = [k > 0 and live[k - 1].index == r.index - 1 for k, r in enumerate(live)]
            frames = [(im, self._known(r, im)) for r, im in zip(live, small, strict=True)]
            ids = [r.frame_id for r in live]
            features = FeatureCache(self.registrar, frames)
            links = register_chain(self.registrar, frames, ids, shape, follows,
                                   [r.link if isinstance(r.link, Link) else None for r in live], features)
            for r, lk in zip(live[1:], links[1:], strict=True):
                r.link = lk  # stored with the frame's segment record
            direct = None
            if self.depth > 0:
                direct = register_direct(self.registrar, frames, ids, shape, follows, self.depth,
                                         [[lk for lk in r.direct_links if isinstance(lk, Link)] for r in live],
                                         features)
                for r, mine in zip(live, direct, strict=True):
                    r.direct_links = mine  # stored with the frame's segment record
            model = ShotModel.from_links(ids, links, small, shape, self.sc.snap_px, direct)
        except Exception as exc:  # the window falls back to per-frame results
            if self.raise_errors:
                raise
            note = f"shot model not built: {type(exc).__name__}: {exc}"[:300]
            log.warning("%s (frames %s..%s)", note, window[0].frame_id, window[-1].frame_id)
            for r in window:
                r.shot, r.shot_note = None, note
            return window
        secs = (time.perf_counter() - t) / len(live)
        for r in live:
            r.shot, r.shot_note = model, None
            r.small = None  # the model holds it now
            r.timings["shots"] = round(r.timings.get("shots", 0.0) + secs, 4)
        return window

    @staticmethod
    def _known(rec: FrameRecord, small: np.ndarray) -> np.ndarray | None:
        """What is known of a frame's characters at work scale (hxw bool; None: nothing): the
        per-frame detector's candidates, else the mask read from disk."""
        known = None
        if rec.segment is not None and rec.segment.instances:
            known = np.zeros(rec.image.shape[:2], bool)  # type: ignore[union-attr]
            for inst in rec.segment.instances:
                if inst.character:
                    known |= inst.mask
        elif rec.mask is not None:
            known = rec.mask.astype(bool)
        if known is None or not known.any():
            return None
        k = cv2.resize(known.astype(np.uint8), (small.shape[1], small.shape[0]), interpolation=cv2.INTER_NEAREST)
        return k > 0


def window_model(recs: list[FrameRecord]) -> ShotModel | None:
    """The shot model ``recs`` share, restricted to them (None when they share none)."""
    shot = recs[0].shot if recs else None
    if shot is None or any(r.shot is not shot for r in recs):
        return None
    return shot.subset([r.frame_id for r in recs])


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
