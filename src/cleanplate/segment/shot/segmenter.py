"""The default shot segmenter, ``tracks``: background model + tracks + shadows, no downloads.

Over the frames of one shot (a window of at most ``shots.max_frames``):

1. a background model is built along the shot model's registration (:mod:`.background`);
2. the per-frame detections are linked into tracks along DIS optical flow, and carried into the
   frames where the detector missed them (:mod:`.tracks`); a carried mask is corrected with the
   background-model foreground next to it;
3. a track that has no support in the shot — it appears after the shot's first frames and agrees
   with the background model (under ``scenery_foreground`` of its pixels disagree with it) — is
   scenery the detector jumped to (a tree trunk, a path): its detections are kept in the metadata
   with ``character=False`` and the reason. Where the background model cannot judge a track (at a
   panning frame's edge, which neighbours 3 frames away and more no longer see), its nearest
   registered frames do (:func:`near_motion`): a fast body the flow loses there has left the place
   where it was a frame ago; such a track keeps its detections only (no carried ghosts);
   with ``motion_born``, what moves against the set and against the scenery around it where no
   track is starts a track of its own (:mod:`.motion_born`);
4. each kept track that moves against the background model is cut down to its moving core in
   every frame, followed along the flow (:mod:`.core`): the detector's blob of a small character
   is often two or three times its size, or holds the bush in front of it; a carried frame where
   nothing of the track moves any more is dropped. A static track keeps the detector's masks.
   The faint foreground next to the core joins it as thin parts (tyres, a racket); in a detected
   frame whose surroundings are parallax clutter (``thin_clutter``) they stay near the detection
   (``thin_margin``); in a carried frame whose carried mask agrees with the core (``core_agree``)
   they stay near the two at a lower clutter (``agree_clutter``), and a carried frame the core left
   (the flow lost the character) keeps no outline of the carried mask and takes no cast shadow
   (``lost_shadows``). A companion (a weak mover kept as a piece of the character it touches) then
   loses its frames more than ``companion_reach`` from that character's track;
5. with ``masks.shadows`` on, what moves with a character and touches it joins its mask
   (:mod:`.shadows`); a cast shadow only where at least three registered neighbours show the
   pixels changed (a short shot's median still holds the character's ghosts). A track whose shadow
   shows in most of its frames has each frame's own shadow carried along the flow into the
   frames up to ``_SHADOW_CARRY`` away, where it joins what is dark there too: the far end of a
   long shadow hardly moves, so a frame's own evidence often misses it.

All of it runs at a work scale (long side ``work_side``); masks are scaled back and the per-frame
detector's own full-resolution masks are kept where it found the character.
"""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from cleanplate import masks as M
from cleanplate.config import Config
from cleanplate.motion.flow import FlowEstimator, pull_mask
from cleanplate.motion.shot_model import ShotModel
from cleanplate.records import Instance, SegmentResult, bbox_xywh
from cleanplate.segment.base import SHOT_SEGMENTERS
from cleanplate.segment.concept import ConceptSource
from cleanplate.segment.saliency import SaliencyPredictor
from cleanplate.segment.shot.background import ShotBackground, build_background, resize_to, work_scale
from cleanplate.segment.shot.core import clutter, follow_core, thin_parts
from cleanplate.segment.shot.motion_born import MotionRegion, chains, crop_mask, passes, regions
from cleanplate.segment.shot.refine import (
    Refined,
    RefineParams,
    SceneryPart,
    agreed_scenery,
    hidden_by,
    refine_blob,
    removal_votes,
    scenery_parts,
    unsteady_removal,
)
from cleanplate.segment.shot.shadows import cast_shadow, touching
from cleanplate.segment.shot.tracks import Linker, Refine, Track, TrackFrame, overlap
from cleanplate.weights import WeightsUse

_SHADOW_COVER = 3  # registered neighbours a pixel needs before its change of brightness is evidence
_SHADOW_CARRY = 3
"""Frames on either side whose own cast shadows are carried into a frame (see ``segment_shot``)."""
_SHADOW_STEADY = 0.75
"""Share of a track's frames that must show its own cast shadow before it is carried into the others."""
_MIN_KEPT = 0.1  # a detected frame whose track mask keeps less of its detection gets the detection back
_COMPANION = 0.2
"""A weakly moving track joins a character when, in a frame both hold, this share of the smaller of the
two masks overlaps (on bmx-trees the rider's piece behind the trees overlaps his track by 0.28)."""
_MIN_JUDGED = 0.5
_MIN_SHOT = 8
"""In a registered run of fewer frames (a short shot, or frames between failed registrations), a track the background model can judge on less than _MIN_JUDGED of
its pixels keeps the detector's verdict: the background model compares a frame with neighbours 3
frames away and more, so a shot of a few frames gives no evidence either way.
(In longer shots a track seen by too few neighbours, a fragment at a pan's edge, is not kept on
that ground: on the still-prop bench case it was the prop.)"""


def _upscale(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if mask.shape == shape:
        return mask
    return cv2.resize(mask.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR) >= 0.5


def _union(parts: list[dict[int, np.ndarray]]) -> dict[int, np.ndarray]:
    """Track id -> the union of that track's masks over ``parts``."""
    out: dict[int, np.ndarray] = {}
    for d in parts:
        for k, v in d.items():
            out[k] = out[k] | v if k in out else v
    return out


def find_jumps(small: list[np.ndarray], back_flows: list[np.ndarray], bg: ShotBackground,
               max_error: float) -> set[int]:
    """Frame indices t whose link to t-1 is implausible: registration failed between them, or the
    flow leaves a mean gray error above ``max_error`` levels (0-255) when it warps t-1 onto t."""
    jumps = set()
    for t in range(1, len(small)):
        if bg.run[t] != bg.run[t - 1]:
            jumps.add(t)
            continue
        g0 = cv2.cvtColor(small[t - 1], cv2.COLOR_RGB2GRAY).astype(np.float32)
        g1 = cv2.cvtColor(small[t], cv2.COLOR_RGB2GRAY).astype(np.float32)
        flow = back_flows[t - 1]  # frame t -> t-1: where each pixel of t sits in t-1
        h, w = g1.shape
        xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        warped = cv2.remap(g0, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
        if float(np.abs(warped - g1).mean()) > max_error:
            jumps.add(t)
    return jumps


def _moving(mask: np.ndarray, foreground: np.ndarray) -> float:
    """Share of ``mask``'s pixels (hxw bool) that disagree with the background model (``foreground``)."""
    return float((mask & foreground).sum()) / max(float(mask.sum()), 1.0)


def moving_share(tr: Track, bg: ShotBackground) -> float:
    """Mean share of a track's detected pixels that disagree with the background model (0-1)."""
    shares = [_moving(tr.frames[t].mask, M.dilate(bg.foreground[t], 1)) for t in tr.detected_frames()]
    return float(np.mean(shares)) if shares else 0.0


def change_share(tr: Track, bg: ShotBackground, small: list[np.ndarray], level: float) -> float:
    """How much a track changes inside itself: the median over its detected frames of the share of
    its inner pixels (its mask eroded by 2 px, away from its outline) that differ from the
    registered neighbours' median by more than ``level`` (0-255) in some channel, against every
    median pixel of a 3x3 neighbourhood (a registration or resampling error of a pixel on a sharp
    edge is no change). A rigid object that stays in the scene matches its neighbours (the median
    shows it too): about 0. A person standing still breathes, gestures, turns a head: a part of
    them changes. ``small``: the frames at the background model's scale."""
    if bg.median is None:
        return 0.0
    shares = []
    kernel = np.ones((5, 5), np.uint8)
    box = np.ones((3, 3), np.uint8)
    for t in tr.detected_frames():
        inner = cv2.erode(tr.frames[t].mask.astype(np.uint8), kernel).astype(bool) & (bg.covered[t] >= 2)
        if inner.sum() < 16:
            continue
        med = bg.median[t]
        a = small[t].astype(np.int16)
        lo, hi = cv2.erode(med, box).astype(np.int16), cv2.dilate(med, box).astype(np.int16)
        d = np.maximum(lo - a, a - hi).max(axis=2)
        shares.append(float((d[inner] > level).mean()))
    return float(np.median(shares)) if shares else 0.0


_NEAR = (1, 2)
"""Frames on either side whose registered pixels judge a track the background model cannot (see :func:`near_motion`)."""


def near_motion(tr: Track, bg: ShotBackground, small: list[np.ndarray], level: float, min_seen: float,
                agree: float = 0.6) -> tuple[float, float]:
    """(moving, seen): how much a track moves against its *nearest* registered neighbours, where the
    background model (neighbours 3 frames away and more) cannot judge it: at a panning frame's edge,
    the strip the frames 3 on have already left behind. Per detected frame, the frames
    :data:`_NEAR` away are warped onto it along the registration; a pixel of the track that at
    least one of them sees is *seen*, and *moving* when it differs by more than ``level`` (0-255, in
    some channel, against every pixel of the warped neighbour's 3x3 neighbourhood: a registration
    error of a pixel on a sharp edge is no motion) from at least ``agree`` of those that see it.
    ``moving``: mean over the frames where at least ``min_seen`` of the track is seen of the moving share of
    its seen pixels; ``seen``: mean seen share over all its detected frames. A fast body has left
    the place where it was a frame ago; a still prop at the edge is where the registration puts it."""
    box = np.ones((3, 3), np.uint8)
    n = len(small)
    moving, seen = [], []
    for t in tr.detected_frames():
        m = tr.frames[t].mask
        area = float(m.sum())
        if area == 0:
            continue
        h, w = m.shape
        a = small[t].astype(np.int16)
        count = np.zeros((h, w), np.int16)
        differ = np.zeros((h, w), np.int16)
        for off in _NEAR:
            for j in (t - off, t + off):
                mat = bg.matrix(j, t) if 0 <= j < n else None
                if mat is None:
                    continue
                warped = cv2.warpPerspective(small[j], mat, (w, h), flags=cv2.INTER_LINEAR)
                valid = cv2.erode(cv2.warpPerspective(np.full((h, w), 255, np.uint8), mat, (w, h),
                                                      flags=cv2.INTER_NEAREST), box) > 0
                lo, hi = cv2.erode(warped, box).astype(np.int16), cv2.dilate(warped, box).astype(np.int16)
                d = np.maximum(lo - a, a - hi).max(axis=2) > level
                count += valid
                differ += valid & d
        judged = m & (count > 0)
        seen.append(float(judged.sum()) / area)
        if judged.sum() >= min_seen * area:
            moved = judged & (differ >= agree * count)
            moving.append(float(moved.sum()) / float(judged.sum()))
    return (float(np.mean(moving)) if moving else 0.0), (float(np.mean(seen)) if seen else 0.0)


def judged_share(tr: Track, bg: ShotBackground) -> float:
    """Share of a track's detected pixels that at least two registered neighbours see (where the
    background model can judge motion and change at all)."""
    shares = [float((tr.frames[t].mask & (bg.covered[t] >= 2)).sum()) / max(float(tr.frames[t].mask.sum()), 1.0)
              for t in tr.detected_frames()]
    return float(np.mean(shares)) if shares else 0.0


def named_by(tr: Track, concept_masks: list[list[tuple[np.ndarray, str, float]]], share: float = 0.5
             ) -> tuple[str, float] | None:
    """(label, best score) when a concept detection covers most of the track in at least ``share`` of
    its detected frames; ``concept_masks``: per frame, (work-scale hxw bool mask, label, score)."""
    frames = tr.detected_frames() or sorted(tr.frames)
    hits: list[tuple[str, float]] = []
    for t in frames:
        m = tr.frames[t].mask
        area = float(m.sum())
        for cm, label, score in concept_masks[t] if t < len(concept_masks) else []:
            inter = float((m & cm).sum())
            if area > 0 and (inter >= 0.5 * area or inter >= 0.5 * float(cm.sum())):
                hits.append((label, score))
                break
    if not frames or len(hits) < share * len(frames):
        return None
    best = max(hits, key=lambda h: h[1])
    return best


@SHOT_SEGMENTERS.register("tracks")
class TrackShotSegmenter:
    """Background model + tracks + shadows over one shot's per-frame results (no weights)."""

    name = "tracks"

    def __init__(self, config: Config, device: str) -> None:
        self.sc = config.segment.shot
        self.shadows = config.masks.shadows
        self.flow = FlowEstimator(self.sc.flow_preset, max_side=0)
        from cleanplate.segment.concept import create_concept_source

        choice = create_concept_source(config, device)
        self.concepts: ConceptSource | None = choice.source
        self.concept_note = choice.why
        self.evidence: dict[int, tuple[bool, str, dict[str, object]]] = {}
        self._config, self._device = config, device
        self._saliency: SaliencyPredictor | None = None  # created on the first motion candidate
        self._born: set[tuple[int, int]] = set()  # (frame, index in its candidates) of motion-born detections
        self._refined: dict[tuple[int, int], Refined] = {}  # (track id, frame) -> colour refinement
        self._scenery: dict[tuple[int, int], list[SceneryPart]] = {}  # (track id, frame) -> scenery split off
        self._off_host: dict[tuple[int, int], str] = {}  # (frame, detection) a companion let go -> reason
        self._lost: set[tuple[int, int]] = set()  # (track id, frame): carried masks the moving core left
        self.motion_debug: list[list[MotionRegion]] = []

    def _predictor(self) -> SaliencyPredictor:
        if self._saliency is None:
            self._saliency = SaliencyPredictor.for_config(self._config, self._device)
        return self._saliency

    def weights_used(self) -> list[WeightsUse]:
        used = list(self.concepts.weights_used()) if self.concepts is not None else []
        return used + ([self._saliency.weights] if self._saliency is not None else [])

    def segment_shot(self, images: list[np.ndarray], results: list[SegmentResult],
                     shot: ShotModel | None = None) -> list[SegmentResult]:
        """``images``: HxWx3 uint8 RGB frames of one shot, in order; ``results``: their per-frame results;
        ``shot``: their shot model (same frames, same order; built here when not given).
        Returns one result per frame whose instances carry ``track_id``."""
        if len(images) != len(results):
            raise ValueError(f"{len(images)} frames but {len(results)} per-frame results")
        if not images:
            return []
        shape = images[0].shape[:2]
        if any(im.shape[:2] != shape for im in images):
            raise ValueError("frames of one shot must share one size")
        sc = self.sc
        self._born = set()
        self._refined, self._scenery, self._off_host, self._lost = {}, {}, {}, set()
        scale = work_scale(shape, sc.work_side)
        small = [resize_to(im, scale) for im in images]
        chars = [[i for i in r.instances if i.character] for r in results]
        concept_masks = self._concepts(images, chars, scale)
        detected = [M.combine([i.mask for i in c], shape) for c in chars]
        bg = build_background(images, detected, sc.work_side, sc.bg_threshold, model=shot)
        n = len(images)
        back = [self.flow.flow(small[t + 1], small[t]) for t in range(n - 1)]  # t+1 -> t: carries t into t+1
        fwd = [self.flow.flow(small[t], small[t + 1]) for t in range(n - 1)]  # t -> t+1: carries t+1 into t
        jumps = find_jumps(small, back, bg, sc.jump_error)
        dets_small = [[resize_to(i.mask.astype(bool), scale) for i in c] for c in chars]

        def refine(t: int, pred: np.ndarray, typical: float) -> np.ndarray:
            # a carried mask snaps onto what moves against the background around it, when that is
            # most of it and not much more (flow drags a little scenery along at every step); a
            # carried mask grown far past the track's usual size keeps only its moving pixels
            area = float(pred.sum())
            fg = bg.foreground[t]
            near = fg & M.dilate(pred, max(2, int(0.1 * np.sqrt(max(area, 1.0)))))
            got = float(near.sum())
            if 0.5 * area <= got <= sc.max_growth * area:
                return near
            inside = pred & M.dilate(fg, 2)
            if float(inside.sum()) >= 0.6 * area or (typical > 0 and area > sc.max_growth * typical):
                return inside
            return pred

        def fuse(t: int, pred: np.ndarray, det: np.ndarray, typical: float) -> np.ndarray:
            # a detection far bigger than the track (saliency spilling onto scenery) is clipped to
            # where the track was expected; a partial one is completed with the moving pixels there
            pa, da = float(pred.sum()), float(det.sum())
            ref = max(min(pa, typical) if typical > 0 else pa, 1.0)
            r = max(2, int(0.1 * np.sqrt(ref)))
            if da > sc.max_growth * ref:
                fg = bg.foreground[t]
                target = pred if pa <= sc.max_growth * ref else pred & M.dilate(fg, 2)
                # keep the detection where the track was, and grow only into what moves near it
                clipped = det & (target | (fg & M.dilate(target, r)))
                return clipped if clipped.any() else det
            return det | (pred & bg.foreground[t])

        linker = Linker(sc.link_iou, sc.max_carry)
        tracks = linker.link(dets_small, back, jumps, refine, fuse)
        verdicts = [self._judge(tr, bg, small, concept_masks) for tr in tracks]
        verdicts = self._with_companions(tracks, verdicts)
        kept = [tr for tr, v in zip(tracks, verdicts, strict=True) if v[0]]
        lost = {id(tr) for tr, v in zip(tracks, verdicts, strict=True) if v[0] and v[2].get("near_kept")}
        for tr in kept:  # a body the flow cannot follow: its carried masks would be ghosts where it was
            if id(tr) in lost:
                for t in [t for t, f in tr.frames.items() if not f.detected]:
                    del tr.frames[t]
        linker.carry_back([tr for tr in kept if id(tr) not in lost], fwd, jumps, refine)
        if sc.motion_born:
            kept += self._motion_born(images, small, chars, kept, bg, back, fwd, jumps, scale, concept_masks,
                                      linker, refine)
        merged = linker.merge(kept)
        # judged again after merging (evidence of the whole track); a kept track whose merged whole no
        # longer passes alone keeps the verdict that kept it (a companion, a weak mover touching a character)
        before = {tr.track_id: v for tr, v in zip(tracks, verdicts, strict=True) if v[0]}
        after = self._with_companions(merged, [self._judge(tr, bg, small, concept_masks) for tr in merged])
        self.evidence = {tr.track_id: v if v[0] else before.get(tr.track_id, v)
                         for tr, v in zip(merged, after, strict=True)}
        if sc.hidden_by_characters:  # the set behind scenery the detector jumped to is seen
            occupied = [np.logical_or.reduce([tr.frames[t].mask for tr in merged if t in tr.frames and
                                              tr.frames[t].detected] or [np.zeros(small[t].shape[:2], bool)])
                        for t in range(n)]
            bg.hidden = hidden_by(bg, occupied)
        self._tighten(merged, bg, back, fwd)
        # after tightening: the gate that keeps a static track's blob reads the companion's whole track
        hosts = {tr.track_id: int(v[2]["companion_of"]) for tr, v in zip(merged, after, strict=True)  # type: ignore[call-overload]
                 if v[0] and "companion_of" in v[2]}
        self._trim_companions(merged, hosts, chars)
        self._refine(merged, bg, small, results, scale)
        dropped = [(tr, v[1], v[2]) for tr, v in zip(tracks, verdicts, strict=True) if not v[0]]
        out: list[SegmentResult] = []
        own: list[dict[int, np.ndarray]] = []  # each frame's own shadows (work scale), by track
        for t in range(n):
            res, sh = self._frame_result(t, small[t], results[t], chars[t], merged, dropped, bg, shape, jumps)
            out.append(res)
            own.append(sh)
        if not self.shadows or not any(own):
            return out
        # only a track whose shadow shows in most of its frames (the sun's, consistently) has it
        # carried; ground that passes for a shadow now and then is not spread to other frames
        steady = {tr.track_id for tr in merged
                  if sum(tr.track_id in own[t] for t in tr.frames) >= _SHADOW_STEADY * len(tr.frames)}
        own = [{k: v for k, v in d.items() if k in steady} for d in own]
        behind: list[dict[int, np.ndarray]] = [{} for _ in range(n)]
        recent: list[dict[int, np.ndarray]] = []  # the last frames' own shadows, carried into frame t
        for t in range(n):  # from the frames before
            if t in jumps:
                recent = []
            behind[t] = _union(recent)
            if t + 1 < n:
                recent = [self._carry(d, back[t]) for d in (recent + [own[t]])[-_SHADOW_CARRY:]]
        recent = []
        for t in range(n - 1, -1, -1):  # from the frames after
            prior = _union([behind[t], *recent])
            if prior and not all(k in own[t] and not (v & ~own[t][k]).any() for k, v in prior.items()):
                out[t] = self._frame_result(t, small[t], results[t], chars[t], merged, dropped, bg, shape,
                                            jumps, prior)[0]
            recent = [] if t in jumps or t == 0 else \
                [self._carry(d, fwd[t - 1]) for d in (recent + [own[t]])[-_SHADOW_CARRY:]]
        return out

    @staticmethod
    def _carry(shadows: dict[int, np.ndarray], flow: np.ndarray) -> dict[int, np.ndarray]:
        """Each track's work-scale shadow carried along ``flow`` into the neighbouring frame."""
        return {k: pull_mask(v, flow) for k, v in shadows.items()}

    def _trim_companions(self, tracks: list[Track], hosts: dict[int, int], chars: list[list[Instance]]) -> None:
        """A companion (``hosts``: track id -> the id of the character track it touches, among ``tracks``)
        is a piece of that character: it keeps its frames up to ``companion_reach`` frames from the
        character's own and loses the others, in place. What it loses is recorded: in its verdict's
        evidence (``companion_frames_dropped``) and, for the detections it held there, in
        ``self._off_host`` (frame, detection index) -> reason, so they are kept as scenery instances."""
        reach = self.sc.companion_reach
        if reach < 0:
            return
        ids = {tr.track_id: tr for tr in tracks}
        for tr in tracks:
            host = ids.get(hosts.get(tr.track_id, -1))
            if host is None or host is tr:
                continue
            near = {u + d for u in host.frames for d in range(-reach, reach + 1)}
            gone = sorted(t for t in tr.frames if t not in near)
            if not gone:
                continue
            why = (f"scenery here: held by track {tr.track_id}, a companion of character track {host.track_id} "
                   f"(a weak mover kept only as a piece of it), more than {reach} frame(s) from that track")
            for t in gone:
                for j in tr.frames[t].detections:
                    if j < len(chars[t]):
                        self._off_host[(t, j)] = why
                del tr.frames[t]
            ok, reason, ev = self.evidence[tr.track_id]
            self.evidence[tr.track_id] = (ok, reason, {**ev, "companion_frames_dropped": len(gone)})

    def _tighten(self, tracks: list[Track], bg: ShotBackground, back: list[np.ndarray],
                 fwd: list[np.ndarray]) -> None:
        """Cut each moving track's masks down to their moving core (see :mod:`.core`), in place."""
        frame_px = float(bg.foreground[0].size) if bg.foreground else 1.0
        for tr in tracks:
            if moving_share(tr, bg) < self.sc.scenery_foreground:
                continue  # a static character: the detector's blob is all the evidence there is
            if tr.typical_area() > self.sc.tighten_max_area * frame_px:
                continue  # a large character: the detector's mask follows its outline already
            blobs = {t: f.mask for t, f in tr.frames.items()}
            cores = follow_core(blobs, set(tr.detected_frames()), bg.foreground, back, fwd)
            for t, core in cores.items():
                f = tr.frames[t]
                # where the model cannot see the set (the character stood there in most of the
                # neighbours), not moving is no evidence of scenery: the blob stays
                unseen = f.mask & bg.hidden[t]
                if core.any():
                    r = max(2, int(0.2 * np.sqrt(float(core.sum()))))
                    faint = bg.faint[t]
                    # the mask carried along the flow and the moving core agree: both say where the
                    # character is (a detected frame is bounded by its detection alone: thin_clutter)
                    agree = overlap(core, f.mask)[0] >= self.sc.core_agree
                    if not f.detected and not agree:  # the flow lost the character (behind foliage)
                        self._lost.add((tr.track_id, t))
                    # where the faint foreground around is parallax clutter, what says where the
                    # character is bounds the thin parts: the detection, or a carried mask and the
                    # core that agree (at less clutter)
                    bound = f.mask if f.detected else core | f.mask if agree else None
                    bar = self.sc.thin_clutter if f.detected else self.sc.agree_clutter
                    if bound is not None and self.sc.thin_margin > 0 and bar <= 1 \
                            and clutter(core, f.mask, faint, bg.covered[t]) >= bar:
                        margin = max(2, int(round(self.sc.thin_margin * np.sqrt(float(bound.sum())))))
                        faint = faint & M.dilate(bound, margin)
                    thin = thin_parts(core, faint)
                    # a carried mask the core left is no outline of the character around the core
                    edge = f.mask & M.dilate(core, r) if (tr.track_id, t) not in self._lost else core
                    f.mask = thin | edge | unseen
                    f.tight = True
                elif unseen.any():
                    f.mask = unseen
                elif not f.detected:
                    del tr.frames[t]

    def _refine(self, tracks: list[Track], bg: ShotBackground, small: list[np.ndarray],
                results: list[SegmentResult], scale: float) -> None:
        """Shape each track's masks by appearance (see :mod:`.refine`), in place: a mask not cut to its
        moving core (a large or still character: the detector's blob) is refined by colour and edges
        over its border band; from every mask, the parts that neither move nor touch the character
        or another character are split off as scenery. What was done is kept in ``self._refined``
        and ``self._scenery`` for the frames' reasons and evidence."""
        sc = self.sc
        if not sc.refine and not sc.scenery_parts:
            return
        params = RefineParams(band=sc.refine_band, agree=sc.refine_agree, core_level=sc.refine_core,
                              min_keep=sc.refine_min_keep, iterations=sc.refine_iterations,
                              min_evidence=sc.refine_min_evidence, still=sc.refine_still)
        frames = sorted({t for tr in tracks for t in tr.frames})
        moved = {tr.track_id: self._ever_moved(tr, bg) for tr in tracks} if sc.refine else {}
        blobs: dict[int, dict[int, np.ndarray]] = {tr.track_id: {} for tr in tracks}  # track -> frame -> blob
        removed: dict[int, dict[int, np.ndarray]] = {tr.track_id: {} for tr in tracks}  # what its refinement removed
        inputs: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray | None]] = {}

        def refine(tr: Track, t: int, blob: np.ndarray, scenery: np.ndarray | None = None) -> Refined:
            """Frame t of the track refined by colour (its evidence, what agrees with the set and its
            saliency at work scale found once per frame); what it removed goes to ``removed``."""
            if t not in inputs:
                evidence = bg.foreground[t]
                sal = results[t].saliency
                inputs[t] = (evidence, ~bg.hidden[t] & ~evidence & (bg.difference[t] < sc.refine_agree),
                             resize_to(sal, scale) if sal is not None else None)
            done = refine_blob(small[t], blob, *inputs[t], params, moved[tr.track_id].get(t), scenery)
            removed[tr.track_id][t] = blob & ~done.mask if done.used else np.zeros_like(blob)
            return done

        for t in frames if sc.refine else []:
            for tr in tracks:
                f = tr.frames.get(t)
                if f is None or f.tight:
                    continue
                blobs[tr.track_id][t] = f.mask
                self._refined[(tr.track_id, t)] = refine(tr, t, f.mask)
        for tr in tracks if sc.refine and sc.refine_steady > 0 else []:
            own_blobs, own_removed = blobs[tr.track_id], removed[tr.track_id]
            votes = {t: removal_votes(t, own_blobs, own_removed, bg, sc.refine_window) for t in own_blobs}
            if sc.refine_agreed:  # again, with what the neighbouring frames agree is the set as sure background
                again = {}
                for t, (holds, drops) in votes.items():
                    scenery = agreed_scenery(holds, drops, sc.refine_steady)
                    if not (scenery & own_blobs[t] & ~own_removed[t]).any():
                        continue  # it removed all of it already
                    again[t] = scenery
                for t, scenery in again.items():  # after the votes: each was cast on the first refinement
                    done = refine(tr, t, own_blobs[t], scenery)
                    self._refined[(tr.track_id, t)] = replace(done, agreed=int((scenery & own_blobs[t]).sum()))
                if again:
                    votes = {t: removal_votes(t, own_blobs, own_removed, bg, sc.refine_window) for t in own_blobs}
            for t, (holds, drops) in votes.items():
                done = self._refined[(tr.track_id, t)]
                if not done.used:
                    continue
                back = unsteady_removal(own_removed[t], holds, drops, sc.refine_steady)
                if back.any():
                    done = replace(done, mask=done.mask | back, kept_area=int((done.mask | back).sum()),
                                   restored=int(back.sum()))
                    self._refined[(tr.track_id, t)] = done
        by_id = {tr.track_id: tr for tr in tracks}
        for (k, t), done in self._refined.items():
            if done.used:
                by_id[k].frames[t].mask = done.mask
        for t in frames if sc.scenery_parts else []:
            here = [tr for tr in tracks if t in tr.frames]
            for tr in here:
                f = tr.frames[t]
                others = np.logical_or.reduce([o.frames[t].mask for o in here if o is not tr]) \
                    if len(here) > 1 else np.zeros_like(f.mask)
                kept, parts = scenery_parts(f.mask, bg.foreground[t], others, sc.scenery_part_motion,
                                            unjudged=bg.hidden[t])
                if parts:
                    f.mask = kept
                    self._scenery[(tr.track_id, t)] = parts

    @staticmethod
    def _ever_moved(tr: Track, bg: ShotBackground) -> dict[int, np.ndarray]:
        """Frame -> hxw bool: where the track moves against the set in some frame of its registered run
        (each frame's background-model foreground inside its mask, carried along the registration
        into the first frame of the run, gathered, and carried back into each frame)."""
        h, w = bg.foreground[0].shape
        acc: dict[int, np.ndarray] = {}
        for t, f in tr.frames.items():
            m = (bg.foreground[t] & M.dilate(f.mask, 1)).astype(np.uint8)
            if not m.any():
                continue
            warped = cv2.warpPerspective(m, bg.to_ref[t], (w, h), flags=cv2.INTER_NEAREST,
                                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            run = bg.run[t]
            acc[run] = acc[run] | warped if run in acc else warped
        out = {}
        for t in tr.frames:
            ref = acc.get(bg.run[t])
            out[t] = (cv2.warpPerspective(ref, np.linalg.inv(bg.to_ref[t]), (w, h), flags=cv2.INTER_NEAREST,
                                          borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0
                      if ref is not None else np.zeros((h, w), bool))
        return out

    def _motion_born(self, images: list[np.ndarray], small: list[np.ndarray], chars: list[list[Instance]],
                     kept: list[Track], bg: ShotBackground, back: list[np.ndarray], fwd: list[np.ndarray],
                     jumps: set[int], scale: float, concept_masks: list[list[tuple[np.ndarray, str, float]]],
                     linker: Linker, refine: Refine) -> list[Track]:
        """Tracks born from motion (see :mod:`.motion_born`) where no kept track is: their detections
        join the frames' candidates (``chars``, in place; recorded in ``self._born``), and each is
        linked, judged and carried back like a detected track. Returns the kept ones."""
        sc = self.sc
        exclude = []
        for t in range(len(small)):
            here = [tr.frames[t].mask for tr in kept if t in tr.frames]
            exclude.append(M.dilate(np.logical_or.reduce(here), 3) if here else np.zeros(small[t].shape[:2], bool))
        found = regions(bg, back, fwd, exclude, sc.motion_min_area, 3)
        self.motion_debug = found
        solid = [[r for r in regs if r.density >= sc.motion_density] for regs in found]
        born = [ch for ch in chains(solid, jumps) if len(ch) >= sc.motion_min_frames
                and passes(ch, sc.motion_coherence, sc.motion_min_speed, sc.motion_min_contrast)]
        if not born:
            return []
        shape = images[0].shape[:2]
        sal = self._config.segment.saliency
        masks: list[list[tuple[np.ndarray, str, MotionRegion]]] = [[] for _ in small]
        linked: list[Track] = []
        for ch in born:  # a chain is one track: it was linked along its own motion (the flow loses fast bodies)
            tr = Track(len(linked))
            for r in ch:
                full = _upscale(r.mask, shape)
                mask, how = crop_mask(images[r.t], full, self._predictor().predict, sal.threshold,
                                      min(sal.low_threshold, sal.threshold), max_growth=sc.max_growth)
                masks[r.t].append((mask, f"{how}; chain of {len(ch)} frames", r))
                tr.frames[r.t] = TrackFrame(resize_to(mask, scale), True, 0, [len(masks[r.t]) - 1])
            linked.append(tr)
        out = [tr for tr in linked if self._judge(tr, bg, small, concept_masks)[0]]
        for tr in out:  # their detections join the frames' candidates
            for t in tr.detected_frames():
                f = tr.frames[t]
                idx = []
                for j in f.detections:
                    mask, how, r = masks[t][j]
                    idx.append(len(chars[t]))
                    self._born.add((t, idx[-1]))
                    chars[t].append(Instance(
                        mask, bbox_xywh(mask), int(mask.sum()), float(r.coherence),
                        reason=(f"motion: {how} (solid {r.density:.0%}, coherence {r.coherence:.2f}, "
                                f"{r.speed:.1f} px/frame against the set, {r.contrast:.1%} of the frame per "
                                f"frame against the scenery around it)")))
                f.detections = idx
        linker.carry_back(out, fwd, jumps, refine)
        return out

    def _concepts(self, images: list[np.ndarray], chars: list[list[Instance]], scale: float
                  ) -> list[list[tuple[np.ndarray, str, float]]]:
        """Run the concept model (when there is one) over the window: per frame its detections at
        work scale (mask, label, score). A detection no per-frame candidate covers joins the
        frame's candidates (``chars``, in place), so a character the detector missed is tracked."""
        if self.concepts is None:
            return [[] for _ in images]
        out: list[list[tuple[np.ndarray, str, float]]] = []
        for t, dets in enumerate(self.concepts.detect(images)):
            frame: list[tuple[np.ndarray, str, float]] = []
            for d in dets:
                if not d.mask.any():
                    continue
                frame.append((resize_to(d.mask.astype(bool), scale), d.label, float(d.score)))
                area = float(d.mask.sum())
                if not any(float((d.mask & c.mask).sum()) >= 0.5 * min(area, float(c.mask.sum())) for c in chars[t]):
                    chars[t].append(Instance(d.mask.astype(bool), bbox_xywh(d.mask), int(area), float(d.score),
                                             reason=f"concept: {d.label} {d.score:.2f} ({d.source})"))
            out.append(frame)
        return out

    def _with_companions(self, tracks: list[Track], verdicts: list[tuple[bool, str, dict[str, object]]]
                         ) -> list[tuple[bool, str, dict[str, object]]]:
        """A track that moves against the set, but less than ``moving_share`` (between
        ``scenery_foreground`` and it), is a character only where it touches a character's track in
        some frame: a piece of that character the linker kept apart (a rider behind trees). Alone,
        such weak motion is what the parallax of near scenery under a pan looks like."""
        out = list(verdicts)
        strong = [tr for tr, v in zip(tracks, verdicts, strict=True) if v[0]]
        for k, (tr, (ok, _, ev)) in enumerate(zip(tracks, verdicts, strict=True)):
            share = float(ev.get("moving", 0.0))  # type: ignore[arg-type]
            if ok or not tr.detected_frames() or share < self.sc.scenery_foreground:
                continue
            for other in strong:
                both = set(tr.frames) & set(other.frames)
                if any(overlap(tr.frames[t].mask, other.frames[t].mask)[1] >= _COMPANION for t in both):
                    out[k] = (True, f"moves against the set ({share:.0%} of its pixels) and touches character "
                              f"track {other.track_id}", {**ev, "companion_of": other.track_id})
                    break
        return out

    def _judge(self, tr: Track, bg: ShotBackground, small: list[np.ndarray],
               concept_masks: list[list[tuple[np.ndarray, str, float]]]) -> tuple[bool, str, dict[str, object]]:
        """(character?, reason, evidence) of a track. A character is what a concept model names or
        what moves on its own: against the registered set, or inside itself. Persistence alone
        never makes one; stillness alone never drops one a concept model named."""
        det = tr.detected_frames()
        share = moving_share(tr, bg)
        change = change_share(tr, bg, small, self.sc.change_level)
        named = named_by(tr, concept_masks) if self.concepts is not None else None
        evidence: dict[str, object] = {
            "concept": None if named is None else {"label": named[0], "score": round(named[1], 3)},
            "concept_model": self.concepts.name if self.concepts is not None else None,
            "moving": round(share, 3), "change": round(change, 3),
            "frames": len(tr.frames), "detected": len(det)}
        if not det:
            return False, "never detected", evidence
        judged = judged_share(tr, bg)
        evidence["judged"] = round(judged, 3)
        first = tr.first
        run_len = sum(1 for r in bg.run if r == bg.run[first])  # the registered run the track is in
        evidence["run_frames"] = run_len
        if named is None and run_len < _MIN_SHOT and judged < _MIN_JUDGED:  # no evidence either way
            why = (f"kept as the detector found it: the shot model cannot judge it (only {judged:.0%} of its pixels "
                   f"are seen by two registered neighbours; a registered run of {run_len} frame(s))")
            return True, why, evidence
        if named is not None:
            return True, f"named by the concept model: {named[0]} ({named[1]:.2f})", evidence
        born = all((t, j) in self._born for t in det for j in tr.frames[t].detections)
        evidence["born_from_motion"] = born
        if born and share >= self.sc.scenery_foreground:  # its chain passed the motion tests already
            return True, (f"motion: born from motion where no detector found it, moves against the set ({share:.0%} "
                          f"of its pixels disagree with the background model)"), evidence
        if share >= self.sc.moving_share:
            return True, f"moves against the set ({share:.0%} of its pixels disagree with the background model)", evidence
        if change >= self.sc.change_share:
            return True, (f"changes inside itself ({change:.0%} of its inner pixels differ from its neighbours) "
                          f"though it stays in place"), evidence
        if judged < _MIN_JUDGED:  # where the background model cannot see it: its nearest neighbours can
            near, seen = near_motion(tr, bg, small, self.sc.bg_threshold, self.sc.near_min_seen)
            evidence["near_moving"], evidence["near_seen"] = round(near, 3), round(seen, 3)
            if near >= self.sc.near_moving_share:
                evidence["near_kept"] = True
                return True, (f"moves against its nearest registered frames ({near:.0%} of the pixels they see "
                              f"differ) where the background model cannot judge it (only {judged:.0%} of its "
                              f"pixels are seen by two registered neighbours)"), evidence
        who = "no concept model named it" if self.concepts is not None else "no concept model ran"
        return False, (f"scenery: {who}; it does not move against the set ({share:.0%} of its pixels disagree, "
                       f"needs >= {self.sc.moving_share:.0%}) nor change inside itself ({change:.0%}, "
                       f"needs >= {self.sc.change_share:.0%})"), evidence

    def _frame_result(self, t: int, small_image: np.ndarray, result: SegmentResult, chars: list[Instance],
                      tracks: list[Track], dropped: list[tuple[Track, str, dict[str, object]]], bg: ShotBackground,
                      shape: tuple[int, int], jumps: set[int], prior: dict[int, np.ndarray] | None = None,
                      ) -> tuple[SegmentResult, dict[int, np.ndarray]]:
        """Frame ``t``'s result, and the cast shadows found there (work scale, by track id; tracks
        without one are left out) for the neighbours; ``prior``: track id -> a neighbour's shadow of
        that track carried into this frame."""
        instances: list[Instance] = []
        shadows: dict[int, np.ndarray] = {}
        used: set[int] = set()
        n_carried = n_dropped = 0
        sal = result.saliency
        for tr, why, ev in dropped:
            f = tr.frames.get(t)
            if f is None:
                continue
            for j in f.detections:
                if j in used:
                    continue
                used.add(j)
                src = chars[j]
                instances.append(Instance(src.mask, src.bbox, src.area, src.score, src.predicted_iou,
                                          src.stability_score, src.point, False, why, None, evidence=ev))
                n_dropped += 1
        # what the detector jumped to: dropped detections, less those holding most of a kept track
        # (a detection of the character that spilled too far onto scenery to be linked)
        carried_here = [_upscale(tr.frames[t].mask, shape) for tr in tracks if t in tr.frames]
        scenery = M.combine([chars[j].mask for j in used
                             if not any(overlap(c, chars[j].mask)[1] >= 0.5 and (c & chars[j].mask).sum() >= 0.5 * c.sum()
                                        for c in carried_here if c.any())], shape)
        for tr in tracks:
            f = tr.frames.get(t)
            if f is None:
                continue
            mask_small = f.mask
            extra_parts = []
            refined = self._refined.get((tr.track_id, t))
            refined_used = refined is not None and refined.used
            if self.shadows and not f.tight and not refined_used:  # a tight or refined mask holds its moving parts
                area = float(mask_small.sum())
                near = M.dilate(mask_small, max(2, int(0.15 * np.sqrt(max(area, 1.0)))))
                moving = touching(bg.foreground[t] & ~mask_small, mask_small, 0.5 * area) & near
                if moving.any():
                    extra_parts.append("moving parts")
                mask_small = mask_small | moving
            mask = _upscale(mask_small, shape)
            for j in f.detections:
                used.add(j)
                det = chars[j].mask.astype(bool)
                # the detector's full-resolution edges, where the track kept its pixels
                mask |= det & M.dilate(mask, 2)
            if self.shadows and (self.sc.lost_shadows or (tr.track_id, t) not in self._lost):
                # a carried mask the moving core left says nothing of where the feet are
                # at work scale: its wide dilations cost 10x more on a 2K frame, for a soft region
                # a shadow joins only where enough registered neighbours show it moved (a short
                # shot's median still holds the character's ghosts: no evidence there)
                ratio = np.where(bg.covered[t] >= _SHADOW_COVER, bg.ratio[t], np.float32(1.0))
                shadow_small = cast_shadow(small_image, resize_to(mask, bg.scale), shot_ratio=ratio,
                                           moved=self.sc.shadow_moved, prior=(prior or {}).get(tr.track_id))
                if shadow_small.any():
                    shadows[tr.track_id] = shadow_small
                shadow = _upscale(shadow_small, shape)
                if shadow.any():
                    extra_parts.append("cast shadow")
                    mask |= shadow
            own = M.combine([chars[j].mask for j in f.detections], shape)
            mask &= ~scenery | own  # carried masks, shadows and moving parts never take scenery back
            lost = bool(f.detected and own.any() and (mask & own).sum() < _MIN_KEPT * own.sum()
                        and _moving(resize_to(own, bg.scale), bg.foreground[t]) >= self.sc.scenery_foreground)
            if lost:  # the track's mask drifted off its own detection (clipped or cut elsewhere)
                mask |= own
            if not mask.any():
                continue
            if f.detected and all((t, j) in self._born for j in f.detections):
                reason = f"track {tr.track_id}: born from motion ({chars[f.detections[0]].reason})"
            elif f.detected:
                reason = f"track {tr.track_id}: detected"
            else:
                reason = f"track {tr.track_id}: carried by optical flow {f.distance} frame(s) from a detection"
                n_carried += 1
            if f.tight:
                reason += "; cut to its moving core"
            if refined is not None:
                reason += (f"; refined by colour ({refined.seed} seed): kept {refined.kept_area / max(refined.blob_area, 1):.0%} "
                           f"of the detector's blob" if refined_used else f"; colour refinement not used: {refined.why}")
                if refined.agreed:
                    reason += f" ({refined.agreed} px the track's other frames removed taken as the set)"
                if refined_used and refined.restored:
                    reason += f" ({refined.restored} px it removed given back: the track's other frames keep them)"
            parts = self._scenery.get((tr.track_id, t), [])
            if parts:
                reason += f"; {len(parts)} part(s) that never move and touch no character left out as scenery"
            if lost:
                reason += "; its detection kept whole (the track's mask had left it)"
            if extra_parts:
                reason += "; joined: " + ", ".join(extra_parts)
            verdict = self.evidence.get(tr.track_id)
            if verdict is not None:
                reason += "; character: " + verdict[1]
            ys, xs = np.nonzero(mask)
            score = float(sal[mask].mean()) if sal is not None else (chars[f.detections[0]].score if f.detections
                                                                      else 0.0)
            point = chars[f.detections[0]].point if f.detections else (float(xs.mean()), float(ys.mean()))
            evidence = dict(verdict[2]) if verdict is not None else None
            if refined is not None or parts:
                evidence = evidence or {}
                if refined is not None:
                    evidence["refine"] = {"used": refined_used, "seed": refined.seed, "blob_px": refined.blob_area,
                                          "kept_px": refined.kept_area, "restored_px": refined.restored,
                                          "agreed_px": refined.agreed,
                                          "why": refined.why or None}
                if parts:
                    evidence["scenery_parts"] = [{"bbox": list(bbox_xywh(_upscale(p.mask, shape))),
                                                  "area_px": int(_upscale(p.mask, shape).sum()), "moving": p.moving}
                                                 for p in parts]
            instances.append(Instance(mask, bbox_xywh(mask), int(mask.sum()), score, point=point, character=True,
                                      reason=reason, track_id=tr.track_id, evidence=evidence))
            for p in parts:  # recorded as scenery, as a dropped detection is
                pm = _upscale(p.mask, shape) & ~mask
                if pm.any():
                    instances.append(Instance(
                        pm, bbox_xywh(pm), int(pm.sum()), float(sal[pm].mean()) if sal is not None else 0.0,
                        character=False, reason=(f"scenery: a part of track {tr.track_id}'s mask apart from the "
                                                 f"character that does not move against the set ({p.moving:.0%} of "
                                                 f"its pixels move or change) and touches no character"),
                        evidence={"scenery_part_of": tr.track_id, "moving": p.moving}))
        for j, inst in enumerate(chars):
            if j not in used:  # in no track (too small to link): no evidence makes it a character
                why = self._off_host.get((t, j), "scenery: in no track of the shot (no motion or concept evidence)")
                instances.append(Instance(inst.mask, inst.bbox, inst.area, inst.score, inst.predicted_iou,
                                          inst.stability_score, inst.point, False, why, None))
        instances += [i for i in result.instances if not i.character]
        extra = dict(result.extra)
        extra.update({"shot_method": "tracks", "shot_tracks": sum(1 for tr in tracks if t in tr.frames),
                      "concept_model": self.concepts.name if self.concepts is not None else None,
                      "concept_note": self.concept_note,
                      "shot_carried": n_carried, "shot_dropped_scenery": n_dropped,
                      "shot_jump_before": t in jumps,
                      "shot_registered": bg.reasons[t] == ""})
        return SegmentResult(instances, extra, saliency=result.saliency), shadows
