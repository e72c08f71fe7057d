"""Characters as tracks across the frames of one shot.

Per-frame detections are linked frame to frame: each live track's mask is carried into the next
frame by dense optical flow (DIS) and matched to that frame's detections by overlap. A track the
detector misses in a frame keeps the carried mask (refined with the background model's foreground
near it) for up to ``max_carry`` frames; after linking, each track is also carried backwards from
its first detection, so a character the detector finds only late in the shot is masked from the
start. Two tracks whose carried masks meet are one character and are merged.

A frame pair whose registration fails or whose flow explains the second frame badly is a *jump*
(a cut the shot detector missed, a flash): no track is linked or carried across it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from cleanplate.motion.flow import pull_mask

Refine = Callable[[int, np.ndarray, float], np.ndarray]
Fuse = Callable[[int, np.ndarray, np.ndarray, float], np.ndarray]


@dataclass
class TrackFrame:
    """A track's mask in one frame (HxW bool), and how it got there: ``detected`` (a detection
    matched it), or carried by flow ``distance`` frames from the nearest detection; ``tight``: the
    mask was cut down to what moves against the shot (see :mod:`.core`)."""

    mask: np.ndarray
    detected: bool
    distance: int = 0
    detections: list[int] = field(default_factory=list)  # indices of the frame's detections in it
    tight: bool = False


@dataclass
class Track:
    """One character across the shot: ``frames`` maps frame index -> :class:`TrackFrame`."""

    track_id: int
    frames: dict[int, TrackFrame] = field(default_factory=dict)

    @property
    def first(self) -> int:
        return min(self.frames)

    def detected_frames(self) -> list[int]:
        return sorted(t for t, f in self.frames.items() if f.detected)

    def typical_area(self) -> float:
        """Median area (px) of the track's masks in the frames where it was detected."""
        areas = [float(f.mask.sum()) for f in self.frames.values() if f.detected]
        return float(np.median(areas)) if areas else 0.0


def overlap(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(IoU, intersection over the smaller area) of two HxW bool masks."""
    inter = float(np.logical_and(a, b).sum())
    if inter == 0:
        return 0.0, 0.0
    sa, sb = float(a.sum()), float(b.sum())
    return inter / (sa + sb - inter), inter / min(sa, sb)


def _matches(pred: np.ndarray, det: np.ndarray, link_iou: float) -> float:
    """Link score of a carried mask and a detection: their IoU, or (when one holds most of the
    other: the detector found only a part, or a part plus scenery) the containment times 0.5."""
    iou, contain = overlap(pred, det)
    if iou >= link_iou:
        return iou
    return 0.5 * contain if contain >= 0.6 else 0.0


class Linker:
    """Links per-frame detections into :class:`Track` s.

    ``detections[t]``: HxW bool masks found in frame t; ``back_flows[t]``: flow from frame t+1 to
    frame t (HxWx2, carries a mask from t into t+1); ``fwd_flows[t]``: flow from frame t to t+1
    (carries a mask from t+1 back into t); ``jumps``: frame indices t such that frames t-1 and t
    must never be linked; ``refine(t, mask)``: optional, returns a carried mask corrected with
    other evidence of frame t.
    """

    def __init__(self, link_iou: float = 0.25, max_carry: int = 30, min_area: int = 16) -> None:
        self.link_iou = link_iou
        self.max_carry = max_carry
        self.min_area = min_area

    def link(self, detections: list[list[np.ndarray]], back_flows: list[np.ndarray], jumps: set[int],
             refine: Refine | None = None, fuse: Fuse | None = None) -> list[Track]:
        """Link forwards: returns every track, each starting at its first detection. ``fuse(t, carried,
        detected)`` (optional) gives a matched track's mask from its carried and detected masks."""
        tracks: list[Track] = []
        live: list[Track] = []
        for t, dets in enumerate(detections):
            preds: list[tuple[Track, np.ndarray]] = []
            if t > 0 and t not in jumps:
                for tr in live:
                    prev = tr.frames.get(t - 1)
                    if prev is None:
                        continue
                    preds.append((tr, pull_mask(prev.mask, back_flows[t - 1])))
            scores = [(_matches(p, d, self.link_iou), k, j) for k, (_, p) in enumerate(preds)
                      for j, d in enumerate(dets)]
            claimed_pred: dict[int, list[int]] = {}
            det_owner: dict[int, int] = {}
            for s, k, j in sorted(scores, reverse=True):
                if s <= 0 or j in det_owner:
                    continue
                det_owner[j] = k
                claimed_pred.setdefault(k, []).append(j)
            new_live = []
            for k, (tr, pred) in enumerate(preds):
                if k in claimed_pred:
                    js = claimed_pred[k]
                    mask = np.logical_or.reduce([dets[j] for j in js])
                    if fuse is not None:
                        mask = fuse(t, pred, mask, tr.typical_area())
                    tr.frames[t] = TrackFrame(mask, True, 0, js)
                    new_live.append(tr)
                    continue
                prev = tr.frames[t - 1]
                if prev.distance + 1 > self.max_carry:
                    continue
                mask = refine(t, pred, tr.typical_area()) if refine is not None else pred
                if mask.sum() < self.min_area:
                    continue
                tr.frames[t] = TrackFrame(mask, False, prev.distance + 1)
                new_live.append(tr)
            for j, d in enumerate(dets):
                if j not in det_owner:
                    tr = Track(len(tracks), {t: TrackFrame(d, True, 0, [j])})
                    tracks.append(tr)
                    new_live.append(tr)
            live = new_live
        return tracks

    def carry_back(self, tracks: list[Track], fwd_flows: list[np.ndarray], jumps: set[int],
                   refine: Refine | None = None) -> None:
        """Carry each track backwards from its first frame, up to ``max_carry`` frames or a jump
        (``fwd_flows[t]``: flow from frame t to t+1, which carries a mask of t+1 into t)."""
        for tr in tracks:
            t0 = tr.first
            mask = tr.frames[t0].mask
            typical = tr.typical_area()
            for t in range(t0 - 1, max(-1, t0 - 1 - self.max_carry), -1):
                if t + 1 in jumps:
                    break
                mask = pull_mask(mask, fwd_flows[t])
                if refine is not None:
                    mask = refine(t, mask, typical)
                if mask.sum() < self.min_area:
                    break
                tr.frames[t] = TrackFrame(mask, False, t0 - t)

    def merge(self, tracks: list[Track]) -> list[Track]:
        """Tracks whose masks overlap (IoU >= ``link_iou``) in a frame where at least one was carried
        are one character: merged, renumbered from 0 in order of first frame."""
        parent = list(range(len(tracks)))

        def root(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for a in range(len(tracks)):
            for b in range(a + 1, len(tracks)):
                ta, tb = tracks[a], tracks[b]
                for t in set(ta.frames) & set(tb.frames):
                    fa, fb = ta.frames[t], tb.frames[t]
                    if fa.detected and fb.detected:
                        continue
                    if overlap(fa.mask, fb.mask)[0] >= self.link_iou:
                        parent[root(b)] = root(a)
                        break
        groups: dict[int, list[Track]] = {}
        for i, tr in enumerate(tracks):
            groups.setdefault(root(i), []).append(tr)
        merged: list[Track] = []
        for members in sorted(groups.values(), key=lambda g: min(tr.first for tr in g)):
            out = Track(len(merged))
            for tr in members:
                for t, f in tr.frames.items():
                    cur = out.frames.get(t)
                    if cur is None or f.distance < cur.distance or (f.detected and cur.detected):
                        if cur is not None and f.detected and cur.detected:
                            f = TrackFrame(cur.mask | f.mask, True, 0, cur.detections + f.detections)
                        out.frames[t] = f
            merged.append(out)
        return merged
