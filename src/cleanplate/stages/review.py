"""The review stage: a person's corrections (``OUT/review.json``) applied to the shot's characters.

It runs after the characters stage, over each window whose frames a correction names (see
:mod:`cleanplate.io.review`), in the order the corrections were made: a point adds a track
followed over the window along optical flow; a removed region is carried along the shot model's
registration into every frame, cut out of every instance there and kept out of the removal mask
(``rec.keep_out``, after dilation too); an added region becomes a character instance in every
frame. A correction whose clicked frame is not in the window (a shot longer than a window) is
left to the window that holds it.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from cleanplate import masks as M
from cleanplate.config import Config
from cleanplate.motion.flow import FlowEstimator
from cleanplate.records import FrameRecord, Instance, bbox_xywh
from cleanplate.segment.corrections import brush_mask, carry_by_registration, point_track
from cleanplate.segment.shot.background import build_background
from cleanplate.stages.base import Window, fail, timed

REVIEW_TRACK_BASE = 10000
"""Track ids of the tracks a person added: this plus the correction's position in review.json."""


class ReviewStage:
    """Applies the review corrections to each window's segment results (no model)."""

    name = "review"

    def __init__(self, config: Config, corrections: list[dict[str, Any]], raise_errors: bool = False) -> None:
        self.corrections = corrections
        self.low = min(config.segment.saliency.low_threshold, config.segment.saliency.threshold)
        self.work_side = config.segment.shot.work_side
        self.bg_threshold = config.segment.shot.bg_threshold
        self.flow = FlowEstimator(config.segment.shot.flow_preset, max_side=0)
        self.raise_errors = raise_errors

    def __call__(self, window: Window) -> Window:
        live = [r for r in window if not r.failed and r.image is not None and r.segment is not None]
        index = {r.frame_id: k for k, r in enumerate(live)}
        for n, c in enumerate(self.corrections):
            k = index.get(c["frame_id"])
            if k is None:
                continue
            recs = [r for r in live if r.frame_id in set(c["frames"])]
            k = recs.index(live[k])
            try:
                with timed(live[0], "review"):
                    self._apply(n, c, recs, k)
            except Exception as exc:
                for r in recs:
                    fail(r, exc, "characters", self.raise_errors)
        return window

    def _apply(self, n: int, c: dict[str, Any], recs: list[FrameRecord], k: int) -> None:
        images = [r.image for r in recs]
        shape = images[k].shape[:2]  # type: ignore[union-attr]
        if c["kind"] == "point":
            sal = [r.segment.saliency if r.segment is not None else None for r in recs]
            masks = point_track(images, sal, k, c["x"], c["y"], self.low, self.flow, self.work_side,  # type: ignore[arg-type]
                                self._moving(recs))
            why = f"review: point ({c['x']:.0f}, {c['y']:.0f}) in {c['frame_id']}, followed by optical flow"
            for r, m in zip(recs, masks, strict=True):
                self._add(r, m, why, REVIEW_TRACK_BASE + n)
            return
        region = brush_mask(c["points"], c["radius"], shape)
        shot = recs[k].shot
        model = shot.subset([r.frame_id for r in recs]) if shot is not None and all(r.shot is shot for r in recs) \
            else None
        masks = carry_by_registration(region, k, model, len(recs))
        for r, m in zip(recs, masks, strict=True):
            if c["kind"] == "add":
                self._add(r, m, f"review: region brushed in on {c['frame_id']}", None)
                continue
            r.keep_out = m if r.keep_out is None else r.keep_out | m
            assert r.segment is not None
            kept = []
            for inst in r.segment.instances:
                inst.mask = inst.mask.astype(bool) & ~m
                if inst.mask.any():
                    inst.area, inst.bbox = int(inst.mask.sum()), bbox_xywh(inst.mask)
                    kept.append(inst)
            r.segment.instances = kept

    def _moving(self, recs: list[FrameRecord]) -> list[np.ndarray] | None:
        """Per frame, HxW bool: what moves against the window's background model (None without one)."""
        if len(recs) < 3:
            return None
        shape = recs[0].image.shape[:2]  # type: ignore[union-attr]
        shot = recs[0].shot
        model = shot.subset([r.frame_id for r in recs]) if shot is not None and all(r.shot is shot for r in recs) \
            else None
        chars = [M.combine([i.mask for i in r.instances if i.character], shape) for r in recs]
        bg = build_background([r.image for r in recs], chars, self.work_side, self.bg_threshold, model=model)  # type: ignore[misc]
        return [cv2.resize(f.astype(np.uint8), (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST).astype(bool)
                for f in bg.foreground]

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
