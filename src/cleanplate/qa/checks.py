"""Automatic plate checks: residue (character left), flat blocks, seams.

:func:`create_checker` builds a :class:`PlateChecker` once per run; ``check(image, plate, mask)``
scores one plate. The pipeline stores the returned dict as the fill record's ``checks``::

    {"residue": 0.004, "flat": 0.52, "seam": 0.83, "flags": ["flat"],
     "detail": {"residue_kept": ..., "residue_left_over": ..., "flat_fill": ..., "flat_ring": ...}}

A check is flagged when its score is above its threshold (``qa.*_threshold``). What the scores
mean is documented in :mod:`cleanplate.qa.metrics`. Frames larger than ``work_side`` are
scored on a copy scaled down to that longer side, so the checks cost the same on 4K frames.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from cleanplate.config import Config, QAConfig
from cleanplate.motion.shot_model import ShotModel
from cleanplate.qa.appearance import ShotColours
from cleanplate.qa.metrics import flat_score, residue_score, seam_score
from cleanplate.qa.residue import shot_residue_score
from cleanplate.qa.shot import ShotEvidence, shot_evidence
from cleanplate.records import CheckFrame
from cleanplate.weights import WeightsUse, resolve

CHECKS = ("residue", "flat", "seam")
"""The checks, in the order the report shows them."""

CHECK_HELP = {
    "residue": "character left: share of the removed character the plate still shows "
               "(kept in the fill, or left outside the mask: moving and salient, attached to it, "
               "or in the characters' colours)",
    "flat": "flat blocks: share of the fill that is flat, minus that share in the ring around it",
    "seam": "seam: colour step across the mask border relative to the steps 8 px either side",
}


def _scaled(image: np.ndarray, plate: np.ndarray, mask: np.ndarray, side: int
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    h, w = mask.shape
    if max(h, w) <= side:
        return image, plate, mask.astype(bool)
    f = side / max(h, w)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    small_mask = cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_AREA) >= 0.5
    return (cv2.resize(image, size, interpolation=cv2.INTER_AREA),
            cv2.resize(plate, size, interpolation=cv2.INTER_AREA), small_mask)


@dataclass
class ShotContext:
    """:meth:`PlateChecker.prepare_shot`'s result: per frame the background evidence (None: checked
    alone), saliency map and reference mask fraction, and the shot's colours."""

    evidence: list[ShotEvidence | None] | None
    saliency: list[np.ndarray | None]
    colours: ShotColours | None
    refs: list[float]
    alone: bool


class PlateChecker:
    """Scores plates; holds the saliency model the residue check runs on original and plate."""

    name = "plate-checks"

    def __init__(self, qa: QAConfig, device: str = "cpu", threads: int | None = None,
                 work_side: int = 1024) -> None:
        self.thresholds = {"residue": qa.residue_threshold, "flat": qa.flat_threshold, "seam": qa.seam_threshold}
        self.residue_alone = qa.residue_threshold_alone  # the frame-only score has its own scale
        self.model = qa.saliency_model
        self.device = device
        self.threads = threads
        self.work_side = work_side
        self._predictor: Any = None
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.model_matches_segment = True  # a segment-stage map is only reused when it came from this model
        self._maps_reused = False  # the checks judged with this model's maps from the segment stage

    def load(self) -> PlateChecker:
        """Load the saliency model now (it is loaded on the first check otherwise)."""
        if self._predictor is None:
            from cleanplate.segment.saliency import SaliencyPredictor

            self._predictor = SaliencyPredictor(self.model, self.device, threads=self.threads)
        return self

    def _saliency(self, image: np.ndarray, cache: bool = False) -> np.ndarray:
        self.load()
        if not cache:
            return self._predictor.predict(image)
        key = hashlib.blake2b(np.ascontiguousarray(image).data, digest_size=16).hexdigest() + str(image.shape)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._predictor.predict(image)
            self._cache[key] = hit
            while len(self._cache) > 4:
                self._cache.popitem(last=False)
        return hit

    def check_shot(self, frames: list[CheckFrame], model: ShotModel | None = None) -> list[dict[str, Any]]:
        """Score the plates of (part of) one shot, frames in order; one result dict per frame.

        With three or more frames of one size, the residue check also uses the shot: each frame's
        registered neighbours (read off ``model``, the shot model of these frames; built here
        when not given) give a background model (:mod:`cleanplate.qa.shot`) and the frames'
        masks the characters' colours (:mod:`cleanplate.qa.appearance`), so a plate that matches
        the background is not residue and a character part the mask missed is
        (:func:`cleanplate.qa.residue.shot_residue_score`). The result's ``detail`` then holds
        ``residue_missed``, ``residue_attached``, ``residue_appearance`` and ``shot_neighbours``.
        Fewer frames: each is checked alone. The same as :meth:`prepare_shot` then
        :meth:`check_prepared` for each frame (what the pipeline does, plate by plate).
        """
        ctx = self.prepare_shot(frames, model)
        return [self.check_prepared(ctx, k, f) for k, f in enumerate(frames)]

    def prepare_shot(self, frames: list[CheckFrame], model: ShotModel | None = None) -> ShotContext:
        """What the shot says about each frame, before its plate exists: the background evidence,
        the saliency maps, the characters' colours and each frame's reference mask size. Reads
        only the frames' images and masks (``plate`` may be None)."""
        if len(frames) < 3 or len({f.image.shape for f in frames}) != 1 or not any(f.mask.any() for f in frames):
            # (a shot with nothing removed anywhere has no character to leave behind: its plates are
            # the input, and a salient prop the shot keeps is not residue)
            return ShotContext(None, [f.saliency for f in frames], None, [0.0] * len(frames), alone=True)
        evidence = shot_evidence([f.image for f in frames], [f.mask for f in frames], model=model)
        saliency: list[np.ndarray | None] = [self._frame_saliency(f.image, f.saliency) for f in frames]
        colours = self._colours(frames, saliency, evidence)  # type: ignore[arg-type]
        areas = [float(f.mask.mean()) for f in frames]
        refs = []
        for k in range(len(frames)):
            others = [a for j, a in enumerate(areas) if j != k and a > 0]
            refs.append(float(np.median(others)) if others else 0.0)
        return ShotContext(evidence, saliency, colours, refs, alone=False)

    def check_prepared(self, ctx: ShotContext, k: int, frame: CheckFrame) -> dict[str, Any]:
        """Score frame ``k``'s plate (``frame.plate``) with what :meth:`prepare_shot` found."""
        if frame.plate is None:
            raise ValueError(f"no plate to check for {frame.frame_id}")
        if ctx.alone or ctx.evidence is None:
            return self.check(frame.image, frame.plate, frame.mask, saliency=ctx.saliency[k])
        return self.check(frame.image, frame.plate, frame.mask, saliency=ctx.saliency[k], evidence=ctx.evidence[k],
                          ref_fraction=ctx.refs[k], colours=ctx.colours)

    @staticmethod
    def _colours(frames: list[CheckFrame], saliency: list[np.ndarray],
                 evidence: list[ShotEvidence | None]) -> ShotColours | None:
        """The shot's character and scenery colours at the background model's scale (None without one)."""
        shape = next((ev.valid.shape for ev in evidence if ev is not None), None)
        if shape is None:
            return None
        size = (shape[1], shape[0])
        return ShotColours([cv2.resize(f.image, size, interpolation=cv2.INTER_AREA) for f in frames],
                           [cv2.resize(f.mask.astype(np.float32), size, interpolation=cv2.INTER_AREA) >= 0.5
                            for f in frames],
                           [cv2.resize(s, size, interpolation=cv2.INTER_AREA) for s in saliency])

    def _frame_saliency(self, image: np.ndarray, saliency: np.ndarray | None) -> np.ndarray:
        """The frame's HxW float32 saliency map: the segment stage's when it came from this model, else computed."""
        if saliency is not None and saliency.shape == image.shape[:2] and self.model_matches_segment:
            self._maps_reused = True
            return saliency.astype(np.float32, copy=False)
        return self._saliency(image, cache=True)

    def check(self, image: np.ndarray, plate: np.ndarray, mask: np.ndarray,
              saliency: np.ndarray | None = None, evidence: ShotEvidence | None = None,
              ref_fraction: float = 0.0, colours: ShotColours | None = None) -> dict[str, Any]:
        """Score one plate.

        ``image`` and ``plate`` are HxWx3 uint8 RGB (the frame and its clean plate), ``mask``
        the HxW bool removal mask that was filled. ``saliency`` (HxW float32 in [0, 1]): the
        frame's saliency map from the segment stage, reused instead of running the model on the
        frame again; without it the original's saliency is computed and cached for the last few
        frames, so checking several plates of one frame runs the model on it once. ``evidence``
        (from :func:`cleanplate.qa.shot.shot_evidence`) switches the residue check to the shot-aware
        one, which never runs the saliency model on the plate; ``colours`` (at the evidence's scale)
        adds its appearance part; ``ref_fraction`` is the shot's typical mask coverage, used when
        this mask is empty. Without evidence the frame-only residue runs the model on the plate.
        """
        if image.shape != plate.shape or image.shape[:2] != mask.shape:
            raise ValueError(f"shapes differ: image {image.shape}, plate {plate.shape}, mask {mask.shape}")
        if not mask.any() and evidence is None:
            return {"residue": 0.0, "flat": 0.0, "seam": 0.0, "flags": []}
        img, pl, m = _scaled(image, plate, mask, self.work_side)
        sal = cv2.resize(self._frame_saliency(image, saliency), (m.shape[1], m.shape[0]),
                         interpolation=cv2.INTER_AREA)
        detail: dict[str, Any] = {}
        if evidence is not None:
            h, w = evidence.valid.shape
            small = [cv2.resize(a, (w, h), interpolation=cv2.INTER_AREA) for a in (img, pl, sal)]
            small_m = cv2.resize(m.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA) >= 0.5
            residue, parts = shot_residue_score(small[0], small[1], small_m, small[2], evidence, colours,
                                                ref_area=ref_fraction * h * w)
            detail.update({f"residue_{k}": v for k, v in parts.items()})
            detail["shot_neighbours"] = evidence.neighbours
        elif m.any():
            residue, kept, left = residue_score(img, pl, m, sal, self._saliency(pl))
            detail.update({"residue_kept": round(kept, 4), "residue_left_over": round(left, 4)})
        else:
            residue = 0.0
        flat, flat_fill, flat_ring = flat_score(pl, m) if m.any() else (0.0, 0.0, 0.0)
        seam = seam_score(pl, m) if m.any() else 0.0
        scores = {"residue": residue, "flat": flat, "seam": seam}
        out: dict[str, Any] = {k: round(float(v), 4) for k, v in scores.items()}
        limits = self.thresholds if evidence is not None else {**self.thresholds, "residue": self.residue_alone}
        out["flags"] = [k for k in CHECKS if scores[k] > limits[k]]
        detail.update({"flat_fill": round(flat_fill, 4), "flat_ring": round(flat_ring, 4)})
        out["detail"] = detail
        return out

    def weights_used(self) -> list[WeightsUse]:
        """The saliency weights the checks loaded, or whose maps they took from the segment stage."""
        if self._predictor is not None:
            return [self._predictor.weights]
        return [resolve(self.model)] if self._maps_reused else []


def create_checker(config: Config, device: str) -> PlateChecker:
    """The checker for a run: thresholds and saliency model from ``config.qa``."""
    checker = PlateChecker(config.qa, device, threads=config.run.threads)
    seg = config.segment
    checker.model_matches_segment = (seg.backend == "saliency" and seg.saliency.model == config.qa.saliency_model
                                     and seg.saliency.input_size is None)
    return checker


__all__ = ["CHECKS", "CHECK_HELP", "PlateChecker", "create_checker"]
