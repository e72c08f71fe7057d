"""The review stage: a person's corrections (``OUT/review.json``) applied to the shot's characters.

It runs after the characters stage, over each window whose frames a correction names (see
:mod:`cleanplate.io.review`), in the order the corrections were made: a point adds a track
followed through the *whole shot* (:mod:`cleanplate.segment.follow`: every window of it, forward
and backward from the clicked frame); the track is worked out once per correction from the shot's
frames read again from the input (``source``), whatever window comes first, and each window takes
its frames' masks from it, so a shot longer than ``shots.max_frames`` gets one track, the same in a
resumed apply. A removed region is carried along the shot model's registration into every frame,
cut out of every instance there and kept out of the removal mask (``rec.keep_out``, after dilation
too); an added region becomes a character instance in every frame. Like a point's track, a
brushed region is carried once per correction over the whole shot (a shot model registered over
all its frames read again from the input, at ``shots.work_side``), so every window of a shot
longer than ``shots.max_frames`` takes it.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from cleanplate.config import Config
from cleanplate.errors import FrameError
from cleanplate.io.frames import FolderSource, FrameSource
from cleanplate.motion.flow import FlowEstimator
from cleanplate.motion.shot_model import ShotModel, small_frame
from cleanplate.records import FrameRecord, Instance, bbox_xywh
from cleanplate.segment.corrections import brush_mask, carry_by_registration
from cleanplate.segment.follow import Follower, FollowParams, shot_evidence, upscale
from cleanplate.segment.saliency import SaliencyPredictor
from cleanplate.stages.base import Window, fail, timed

REVIEW_TRACK_BASE = 10000
"""Track ids of the tracks a person added: this plus the correction's position in review.json."""


class ShotFrames:
    """The frames of one shot, read again from the input by frame id (``frame(t)``: HxWx3 uint8 RGB).

    A folder's frames are loaded from their files each time they are asked for; a video's are
    decoded once, as the input is read through, and kept PNG-encoded (lossless, a fraction of the
    decoded size). Frames the input does not hold, or that fail to decode, are left out."""

    def __init__(self, source: FrameSource, frame_ids: list[str]) -> None:
        wanted = set(frame_ids)
        found: dict[str, Any] = {}
        for ref, loader in source:
            if ref.frame_id not in wanted:
                continue
            if isinstance(source, FolderSource):
                found[ref.frame_id] = loader
                continue
            try:
                ok, buf = cv2.imencode(".png", cv2.cvtColor(loader(), cv2.COLOR_RGB2BGR))
            except FrameError:
                continue
            if ok:
                found[ref.frame_id] = buf
        self.ids = [f for f in frame_ids if f in found]
        self._found = found

    def __len__(self) -> int:
        return len(self.ids)

    def __call__(self, t: int) -> np.ndarray:
        got = self._found[self.ids[t]]
        if isinstance(got, np.ndarray):
            return cv2.cvtColor(cv2.imdecode(got, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        return got()


class ReviewStage:
    """Applies the review corrections to each window's segment results (no model)."""

    name = "review"

    def __init__(self, config: Config, corrections: list[dict[str, Any]], source: FrameSource | None = None,
                 device: str = "cpu", raise_errors: bool = False) -> None:
        self.config = config
        self.corrections = corrections
        self.source = source
        self.device = device
        rc, sal = config.segment.review, config.segment.saliency
        self.params = FollowParams(high=sal.threshold, low=min(sal.low_threshold, sal.threshold),
                                   search=rc.search, max_growth=rc.max_growth,
                                   work_side=config.segment.shot.work_side, chunk=config.shots.max_frames)
        self.raise_errors = raise_errors
        self._saliency: SaliencyPredictor | None = None
        # correction -> frame id -> (work-scale shape, packed bits of its mask there)
        self._tracks: dict[int, dict[str, tuple[tuple[int, int], np.ndarray]]] = {}

    def __call__(self, window: Window) -> Window:
        live = [r for r in window if not r.failed and r.image is not None and r.segment is not None]
        for n, c in enumerate(self.corrections):
            wanted = set(c["frames"])
            recs = [r for r in live if r.frame_id in wanted]
            if not recs:
                continue
            try:
                with timed(live[0], "review"):
                    if c["kind"] == "point":
                        self._point(n, c, recs)
                    else:
                        self._brush(n, c, recs)
            except Exception as exc:
                for r in recs:
                    fail(r, exc, "characters", self.raise_errors)
        return window

    def _predictor(self) -> SaliencyPredictor:
        if self._saliency is None:
            self._saliency = SaliencyPredictor.for_config(self.config, self.device)
        return self._saliency

    def _point(self, n: int, c: dict[str, Any], recs: list[FrameRecord]) -> None:
        """Add the clicked character's track (worked out over the whole shot once) to ``recs``."""
        if n not in self._tracks:
            self._tracks[n] = self.track(c)
        why = f"review: point ({c['x']:.0f}, {c['y']:.0f}) in {c['frame_id']}, followed through the shot"
        for r in recs:
            got = self._tracks[n].get(r.frame_id)
            if got is None:
                continue
            (h, w), bits = got
            small = np.unpackbits(bits, count=h * w).reshape(h, w).astype(bool)
            self._add(r, upscale(small, r.image.shape[:2]), why, REVIEW_TRACK_BASE + n)  # type: ignore[union-attr]

    def _shot_frames(self, c: dict[str, Any], what: str) -> tuple[ShotFrames, int]:
        """The frames of correction ``c``'s shot, read again from the input, and where its frame is."""
        if self.source is None:
            raise FrameError("the frames of the shot are not at hand (no input to read them from)")
        frames = ShotFrames(self.source, c["frames"])
        if c["frame_id"] not in frames.ids:
            raise FrameError(f"the {what} frame {c['frame_id']} cannot be read from the input")
        return frames, frames.ids.index(c["frame_id"])

    def track(self, c: dict[str, Any]) -> dict[str, tuple[tuple[int, int], np.ndarray]]:
        """Frame id -> the point correction ``c``'s work-scale mask in that frame of its shot: (its
        shape, its bits packed with ``np.packbits``); frames the input lacks are absent."""
        frames, k = self._shot_frames(c, "clicked")
        evidence = shot_evidence(frames, len(frames), self.config.shots, self.params,
                                 self.config.segment.shot.bg_threshold)
        predictor = self._predictor()
        follower = Follower(predictor.predict, FlowEstimator(self.config.segment.shot.flow_preset, max_side=0),
                            self.params)
        image = frames(k)
        seed = follower.seed(image, predictor.predict(image), c["x"], c["y"], evidence[k])
        masks = follower.follow(frames, len(frames), k, seed, evidence)
        return {fid: ((m.shape[0], m.shape[1]), np.packbits(m.ravel()))
                for fid, m in zip(frames.ids, masks, strict=True)}

    def brush_track(self, c: dict[str, Any]) -> dict[str, tuple[tuple[int, int], np.ndarray]]:
        """Frame id -> the brushed correction ``c``'s region in that frame of its shot (its full-size
        shape, its bits packed), carried along a shot model registered over all the shot's frames."""
        frames, k = self._shot_frames(c, "brushed")
        sc = self.config.shots
        h, w = frames(k).shape[:2]
        small = [small_frame(frames(t), sc.work_side) for t in range(len(frames))]
        model = ShotModel.build(small, sc, frames.ids) if len({im.shape for im in small}) == 1 else None
        region = brush_mask(c["points"], c["radius"], (h, w))
        return {fid: ((h, w), np.packbits(m.ravel()))
                for fid, m in zip(frames.ids, carry_by_registration(region, k, model, len(frames)), strict=True)}

    def _brush(self, n: int, c: dict[str, Any], recs: list[FrameRecord]) -> None:
        if n not in self._tracks:
            self._tracks[n] = self.brush_track(c)
        for r in recs:
            got = self._tracks[n].get(r.frame_id)
            if got is None or r.image is None:
                continue
            (h, w), bits = got
            if (h, w) != r.image.shape[:2]:
                continue  # a frame of another size than the brushed one: not the same view
            self._apply_brush(c, r, np.unpackbits(bits, count=h * w).reshape(h, w).astype(bool))

    def _apply_brush(self, c: dict[str, Any], r: FrameRecord, m: np.ndarray) -> None:
        """Frame ``r`` gets the brushed region ``m`` (HxW bool): added as a character, or removed
        from every instance and kept out of the removal mask."""
        if c["kind"] == "add":
            self._add(r, m, f"review: region brushed in on {c['frame_id']}", None)
            return
        r.keep_out = m if r.keep_out is None else r.keep_out | m
        assert r.segment is not None
        kept = []
        for inst in r.segment.instances:
            inst.mask = inst.mask.astype(bool) & ~m
            if inst.mask.any():
                inst.area, inst.bbox = int(inst.mask.sum()), bbox_xywh(inst.mask)
                kept.append(inst)
        r.segment.instances = kept

    @staticmethod
    def _add(rec: FrameRecord, mask: np.ndarray, why: str, track_id: int | None) -> None:
        if rec.keep_out is not None:
            mask = mask & ~rec.keep_out
        if not mask.any() or rec.segment is None:
            return
        ys, xs = np.nonzero(mask)
        rec.segment.instances.append(Instance(mask, bbox_xywh(mask), int(mask.sum()), 1.0,
                                              point=(float(xs.mean()), float(ys.mean())), character=True,
                                              reason=why, track_id=track_id))
