"""Characters born from motion: what moves against the registered set, consistently and as one
body, where no track is.

The per-frame detector (u2netp saliency at 320x320) takes the most salient thing in a frame and can
miss a second character in every frame, or a fast one at the frame's edge. The background model
(:mod:`.background`) still sees it: its pixels disagree with the registered neighbours. Here the
background model's foreground outside every kept track is cut into regions (closed over small
gaps), and a region is a *motion candidate* when

* it is character-sized: at least ``motion_min_area`` of the frame (not a speck of flicker);
* it is solid: most of its closed outline disagrees with the set (``motion_density``), while the
  parallax of near scenery under a pan and foliage in wind disagree along thin edges and leaves;
* its own motion is one motion over its chain (median ``motion_coherence``): the optical flow inside it, less the
  registration's, points one way (a rigid or walking body), while foliage flickers every way;
  and it moves (the residual of at least ``motion_min_speed`` px per frame);
* it moves against *the scenery around it*, not only against the registration (median
  ``motion_min_contrast``): near scenery under a moving camera (a fence, a bush in front of a
  wall) leaves the homography as a whole layer, so the scenery around it that the background
  model does not flag (a ring a little away from it, clear of other foreground and of the
  tracks) shares its residual flow; a body that moves on its own leaves its surroundings behind.
  Parallax is a smooth function of depth; an independent body is a jump in the residual flow.

Candidates are linked frame to frame along the flow (each region pushed by its own median flow,
matched to the next frame's region it overlaps); a chain of at least ``motion_min_frames`` frames
is a character born from motion, where a region that appears and disappears at random is not.
Each region of a chain is then asked again of the saliency model on a crop around it (full
resolution): the salient region in the crop that the motion touches is its mask (the crop gives the
small or second character the whole 320x320 input), else the motion region itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from cleanplate import masks as M
from cleanplate.segment.shot.background import ShotBackground


@dataclass
class MotionRegion:
    """A motion candidate in frame ``t``: ``mask`` (hxw bool, work scale), its ``density`` (share of
    the region that disagrees with the set), ``coherence`` (0-1: |mean residual flow| / mean
    |residual flow|), ``speed`` (|mean residual flow|, work px per frame), ``flow`` (its median
    flow into the next frame, work px, or None at the shot's last frame) and ``contrast`` (its
    median residual flow less that of the scenery around it, as a share of the frame's long side
    per frame; see :func:`contrast`)."""

    t: int
    mask: np.ndarray
    density: float
    coherence: float
    speed: float
    flow: tuple[float, float] | None
    contrast: float = 0.0


def _residual(flow: np.ndarray, matrix: np.ndarray | None, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Nx2: the flow at (ys, xs) less the registration's displacement of those pixels."""
    f = flow[ys, xs].astype(np.float64)
    if matrix is None:
        return f
    p = np.stack([xs, ys], axis=1).astype(np.float64)[None]
    q = cv2.perspectiveTransform(p, matrix)[0]
    return f - (q - p[0])


RING_GAP = 0.25
"""The ring of scenery around a motion candidate starts this many sides (of a square of its area)
away from it: DIS optical flow spreads a fast body's motion a few pixels onto its surroundings."""
RING_WIDTH = 0.5
"""... and is this many sides wide."""
MIN_RING = 16
"""Fewer ring pixels than this (the candidate is surrounded by other foreground, tracks or what the
background model cannot see): its surroundings are taken to follow the registration."""


def ring(region: np.ndarray, busy: np.ndarray) -> np.ndarray:
    """hxw bool: the scenery around ``region`` (hxw bool): a ring :data:`RING_GAP` to
    :data:`RING_GAP` + :data:`RING_WIDTH` sides of a square of its area away from it, less ``busy``
    (hxw bool: other foreground, tracks, pixels the background model cannot judge). Worked on the
    region's bounding box grown by the ring's reach (a wide dilation of the whole frame per
    candidate would cost more than the rest of this module)."""
    side = float(np.sqrt(max(float(region.sum()), 1.0)))
    gap = max(2, int(round(RING_GAP * side)))
    reach = gap + max(3, int(round(RING_WIDTH * side)))
    h, w = region.shape
    ys, xs = np.nonzero(region)
    y0, y1 = max(0, int(ys.min()) - reach), min(h, int(ys.max()) + reach + 1)
    x0, x1 = max(0, int(xs.min()) - reach), min(w, int(xs.max()) + reach + 1)
    sub = region[y0:y1, x0:x1]
    out = np.zeros_like(region)
    out[y0:y1, x0:x1] = M.dilate(sub, reach) & ~M.dilate(sub, gap) & ~busy[y0:y1, x0:x1]
    return out


def contrast(flows: list[tuple[np.ndarray, np.ndarray | None, float]], inside: tuple[np.ndarray, np.ndarray],
             around: np.ndarray) -> float:
    """How much a region moves against the scenery around it, in work px per frame: over the
    flows to the neighbouring frames (``flows``: (HxWx2 flow, its registration matrix or None,
    sign)), the mean of |median residual inside (``inside``: its pixels' ys, xs) - median residual
    of the ring ``around`` (hxw bool)|. With fewer than :data:`MIN_RING` ring pixels the
    surroundings count as still (the residual inside alone)."""
    ry, rx = np.nonzero(around)
    out = []
    for flow, matrix, sign in flows:
        mine = np.median(sign * _residual(flow, matrix, *inside), axis=0)
        theirs = (np.median(sign * _residual(flow, matrix, ry, rx), axis=0) if len(ry) >= MIN_RING
                  else np.zeros(2))
        out.append(float(np.hypot(*(mine - theirs))))
    return float(np.mean(out)) if out else 0.0


def regions(bg: ShotBackground, back: list[np.ndarray], fwd: list[np.ndarray], exclude: list[np.ndarray],
            min_area: float, close_px: int) -> list[list[MotionRegion]]:
    """Per frame, the motion candidates (before any gate but the area): components of the background
    model's foreground outside ``exclude`` (hxw bool per frame: the kept tracks), closed by
    ``close_px``, of at least ``min_area`` (share of the frame)."""
    n = len(bg.foreground)
    out: list[list[MotionRegion]] = []
    for t in range(n):
        fg = bg.foreground[t] & ~exclude[t] & ~bg.hidden[t]
        frame_px = float(fg.size)
        found: list[MotionRegion] = []
        if fg.sum() >= min_area * frame_px:
            closed = cv2.morphologyEx(fg.astype(np.uint8), cv2.MORPH_CLOSE, M.ellipse_kernel(close_px)).astype(bool)
            busy = M.dilate(bg.foreground[t], 1) | exclude[t] | bg.hidden[t]
            long_side = float(max(fg.shape))
            flows: list[tuple[np.ndarray, np.ndarray | None, float]] = []
            if t + 1 < n:
                flows.append((fwd[t], bg.matrix(t, t + 1), 1.0))
            if t > 0:  # back[t - 1]: flow from t to t-1 in t's pixels (negated: the motion into t)
                flows.append((back[t - 1], bg.matrix(t, t - 1), -1.0))
            for comp in M.components(closed & ~exclude[t], int(min_area * frame_px)):
                ys, xs = np.nonzero(comp & fg)
                density = float(len(ys)) / float(comp.sum())
                res = [sign * _residual(f, m, ys, xs) for f, m, sign in flows]
                r = np.concatenate(res) if res else np.zeros((1, 2))
                mean = r.mean(axis=0)
                speed = float(np.hypot(*mean))
                coherence = speed / max(float(np.hypot(r[:, 0], r[:, 1]).mean()), 1e-6)
                flow = None
                if t + 1 < n:
                    cy, cx = np.nonzero(comp)
                    med = np.median(fwd[t][cy, cx], axis=0)
                    flow = (float(med[0]), float(med[1]))
                against = contrast(flows, (ys, xs), ring(comp, busy)) / long_side
                found.append(MotionRegion(t, comp, density, coherence, speed, flow, against))
        out.append(found)
    return out


def passes(chain: list[MotionRegion], coherence: float, speed: float, min_contrast: float = 0.0) -> bool:
    """A chain moves as one body, on its own: the median over its frames of its regions' coherence,
    speed and contrast against the scenery around them reach the gates (a pedalling rider's legs
    and wheels make some frames less coherent)."""
    return (float(np.median([r.coherence for r in chain])) >= coherence
            and float(np.median([r.speed for r in chain])) >= speed
            and float(np.median([r.contrast for r in chain])) >= min_contrast)


def _centroid(m: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(m)
    return np.array([xs.mean(), ys.mean()])


def _same_shape(mask: np.ndarray, regs: list[MotionRegion], claimed: set[int]) -> tuple[int, float]:
    """(index, IoU once centroids meet) of the unclaimed region with ``mask``'s shape (area within a
    factor 1.6, centroid within 3 sides of a square of its area), or (-1, 0)."""
    area = float(mask.sum())
    c = _centroid(mask)
    best, score = -1, 0.0
    for j, r in enumerate(regs):
        ra = float(r.mask.sum())
        if j in claimed or not 1 / 1.6 <= ra / area <= 1.6:
            continue
        d = _centroid(r.mask) - c
        if float(np.hypot(*d)) > 3 * np.sqrt(area):
            continue
        moved = M.shift(mask, (float(d[0]), float(d[1])))
        iou = float((moved & r.mask).sum()) / float((moved | r.mask).sum())
        if iou > score:
            best, score = j, iou
    return best, score


def chains(found: list[list[MotionRegion]], jumps: set[int], min_overlap: float = 0.3) -> list[list[MotionRegion]]:
    """Link candidates frame to frame: a region pushed by its own median flow into the next frame
    continues the region there that it overlaps most (intersection over the smaller area at least
    ``min_overlap``). Returns every chain, in order of its first frame."""
    done: list[list[MotionRegion]] = []
    live: list[list[MotionRegion]] = []
    for t, regs in enumerate(found):
        claimed: set[int] = set()
        nxt: list[list[MotionRegion]] = []
        for ch in live:
            last = ch[-1]
            if t in jumps or last.t != t - 1 or last.flow is None:
                done.append(ch)
                continue
            pushed = M.shift(last.mask, last.flow)
            best, score = -1, 0.0
            for j, r in enumerate(regs):
                if j in claimed:
                    continue
                inter = float((pushed & r.mask).sum())
                s = inter / max(min(float(pushed.sum()), float(r.mask.sum())), 1.0)
                if s > score:
                    best, score = j, s
            if score < min_overlap:  # the flow lost a fast body: the region of its shape nearest to it
                best, score = _same_shape(last.mask, regs, claimed)
            if best >= 0 and score >= min_overlap:
                claimed.add(best)
                nxt.append(ch + [regs[best]])
            else:
                done.append(ch)
        nxt += [[r] for j, r in enumerate(regs) if j not in claimed]
        live = nxt
    done += live
    return sorted(done, key=lambda ch: ch[0].t)


def crop_mask(image: np.ndarray, region: np.ndarray, saliency: Callable[[np.ndarray], np.ndarray],
              high: float, low: float, margin: float = 0.5, max_growth: float = 2.5) -> tuple[np.ndarray, str]:
    """The candidate's mask at full resolution (HxW bool) and where it came from: the saliency model
    asked again on a crop of ``image`` (HxWx3 uint8 RGB) around ``region`` (HxW bool, full
    resolution) grown by ``margin`` of its size each side: the salient components (hysteresis
    ``high``/``low``) the region touches, kept within the region grown by a quarter of its size when
    they spill further than ``max_growth`` times its area; the region itself when none is salient."""
    from cleanplate.segment.saliency import hysteresis

    h, w = region.shape
    ys, xs = np.nonzero(region)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    my, mx = int(margin * (y1 - y0)) + 8, int(margin * (x1 - x0)) + 8
    cy0, cy1, cx0, cx1 = max(0, y0 - my), min(h, y1 + my), max(0, x0 - mx), min(w, x1 + mx)
    sal = saliency(np.ascontiguousarray(image[cy0:cy1, cx0:cx1]))
    binary = hysteresis(sal, high, low)
    sub = region[cy0:cy1, cx0:cx1]
    n, labels = cv2.connectedComponents(binary.astype(np.uint8), connectivity=8)
    touched = np.unique(labels[sub & binary])
    touched = touched[touched > 0]
    out = np.zeros((h, w), bool)
    if touched.size == 0:
        return region.copy(), "motion region (nothing salient in the crop)"
    mask = np.isin(labels, touched)
    area = float(sub.sum())
    how = "salient region in a crop around the motion"
    if float(mask.sum()) > max_growth * area:
        mask &= M.dilate(sub, max(2, int(0.25 * np.sqrt(area))))
        how += ", clipped to the motion's surroundings"
    out[cy0:cy1, cx0:cx1] = mask | sub
    return out, how
