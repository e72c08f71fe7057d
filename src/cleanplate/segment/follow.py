"""A clicked character followed through a whole shot (a person's point correction, issue 21).

The shot's frames are read one at a time (``frame(t)``: HxWx3 uint8 RGB), so a shot longer than a
window costs memory only for one chunk of work-scale frames at a time (the background model's).

1. **Evidence** (:func:`shot_evidence`): the shot cut into chunks of at most ``chunk`` frames, each
   registered (:meth:`ShotModel.build`) and modelled (:func:`build_background`) with the frames
   around it; per frame, at work
   scale, ``moving`` (the background model's foreground: disagrees with the set) and ``loose`` (what
   may be a character: its faint foreground, or a pixel the model cannot judge). What is neither is
   still scenery as the shot model sees it: a tree trunk in front of the character, the wall
   behind; a mask never takes it (but for the saliency model's own region of the character).
2. **Seed**: in the clicked frame, the region under the point (:func:`region_at`: the saliency
   region at the low threshold, else the moving region, else a colour flood fill), cut to what
   ``loose`` holds.
3. **Step** from frame t-1 to t (forward from the clicked frame, then backward): the mask moves as
   one body by the median optical flow of its *moving* pixels (a character partly behind branches
   drags a per-pixel flow onto the branches; its own motion is the part that disagrees with the
   set), then snaps by up to ``search`` of its size to where it holds the most moving pixels. The
   saliency model is asked again on a crop around it (u2netp sees the small character at the crop's
   320x320; :func:`~cleanplate.segment.shot.motion_born.crop_mask`'s crop): the salient regions
   lying mostly in it join. The new mask is the moved mask on ``loose`` pixels, closed over small
   gaps, with the moving pixels just around it and the salient regions; where that keeps under
   ``MIN_KEPT`` of it (nothing to go by), the moved mask itself. It may grow by at most
   ``max_growth`` a frame (the pixels farthest from the salient core go first).

Everything runs at a work scale (long side ``work_side``); masks are scaled back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from cleanplate import masks as M
from cleanplate.config import ShotsConfig
from cleanplate.motion.flow import FlowEstimator
from cleanplate.motion.shot_model import ShotModel
from cleanplate.segment.corrections import region_at
from cleanplate.segment.saliency import hysteresis
from cleanplate.segment.shot.background import REACH, build_background, resize_to, work_scale

MIN_KEPT = 0.6
"""A step whose evidence keeps less than this share of the moved mask falls back to the moved mask."""
MOVING_SHARE = 0.2
"""The mask moves by the median flow of its moving pixels when they are at least this share of it
(else of all its pixels)."""
SALIENT_SHARE = 0.5
"""A salient region of the crop joins the mask when this share of it lies near the moved mask."""
CROP_MARGIN = 0.5
"""The saliency crop: the moved mask's box grown by this share of its size each side (plus 8 px)."""

Saliency = Callable[[np.ndarray], np.ndarray]
"""HxWx3 uint8 RGB crop -> HxW float32 saliency in [0, 1]."""


@dataclass
class FollowParams:
    """``high``/``low``: the saliency hysteresis thresholds; ``search``: the snap, a share of the mask's
    size (the square root of its area); ``max_growth``: the most a mask grows from one frame to the
    next (a factor of its area); ``work_side``: long side of the work scale; ``chunk``: frames per
    background model."""

    high: float = 0.5
    low: float = 0.2
    search: float = 0.15
    max_growth: float = 1.1
    work_side: int = 512
    chunk: int = 120


@dataclass
class Evidence:
    """One frame's evidence at work scale, hxw bool: ``moving``, ``loose`` (module docstring) and
    ``hidden`` (pixels the background model cannot judge)."""

    moving: np.ndarray
    loose: np.ndarray
    hidden: np.ndarray


def shot_evidence(frame: Callable[[int], np.ndarray], n: int, sc: ShotsConfig, params: FollowParams,
                  bg_threshold: float) -> list[Evidence]:
    """Per frame of the shot, its :class:`Evidence`, at work scale. The shot is taken in chunks of
    ``params.chunk`` frames, each registered and modelled with the frames up to ``REACH`` on either
    side (the neighbours its background model looks at: a chunk's edge sees as much of the shot as
    its middle); only work-scale frames are held. ``bg_threshold``: the background model's colour
    distance."""
    out: list[Evidence] = []
    small: dict[int, np.ndarray] = {}
    chunk = max(1, params.chunk)
    for start in range(0, n, chunk):
        lo, hi = max(0, start - REACH), min(n, start + chunk + REACH)
        for t in [t for t in small if t < lo]:
            del small[t]
        for t in range(lo, hi):
            if t not in small:
                image = frame(t)
                small[t] = resize_to(image, work_scale(image.shape, params.work_side))
        images = [small[t] for t in range(lo, hi)]
        h, w = images[0].shape[:2]
        if len(images) < 2:
            out.append(Evidence(np.zeros((h, w), bool), np.ones((h, w), bool), np.ones((h, w), bool)))
            continue
        bg = build_background(images, [np.zeros((h, w), bool)] * len(images), params.work_side, bg_threshold,
                              model=ShotModel.build(images, sc))
        for t in range(start, min(n, start + chunk)):
            out.append(Evidence(bg.foreground[t - lo], bg.faint[t - lo] | bg.hidden[t - lo], bg.hidden[t - lo]))
    return out


def _snap(mask: np.ndarray, evidence: np.ndarray, radius: int) -> np.ndarray:
    """``mask`` shifted by up to ``radius`` px to where it holds the most ``evidence`` (each pixel off
    the evidence counts against it; a longer shift costs a little, so a tie stays put)."""
    ys, xs = np.nonzero(mask)
    if not len(ys) or radius <= 0:
        return mask
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    h, w = mask.shape
    pad = np.full((h + 2 * radius, w + 2 * radius), -1, np.float32)
    pad[radius:radius + h, radius:radius + w] = np.where(evidence, 1.0, -1.0)
    tpl = mask[y0:y1, x0:x1].astype(np.float32)
    score = cv2.matchTemplate(pad[y0:y1 + 2 * radius, x0:x1 + 2 * radius], tpl, cv2.TM_CCORR)
    dy, dx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    score -= 0.02 * float(tpl.sum()) * np.hypot(dx, dy) / radius
    j = np.unravel_index(int(np.argmax(score)), score.shape)
    return M.shift(mask, (float(dx[j]), float(dy[j])))


def salient_near(image: np.ndarray, near: np.ndarray, saliency: Saliency, high: float, low: float) -> np.ndarray:
    """HxW bool at ``image``'s size: the salient regions (hysteresis ``high``/``low``) of a crop of
    ``image`` around ``near`` (HxW bool) that lie mostly (``SALIENT_SHARE``) in ``near``."""
    h, w = near.shape
    ys, xs = np.nonzero(near)
    out = np.zeros((h, w), bool)
    if not len(ys):
        return out
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    my, mx = int(CROP_MARGIN * (y1 - y0)) + 8, int(CROP_MARGIN * (x1 - x0)) + 8
    cy0, cy1, cx0, cx1 = max(0, y0 - my), min(h, y1 + my), max(0, x0 - mx), min(w, x1 + mx)
    binary = hysteresis(saliency(np.ascontiguousarray(image[cy0:cy1, cx0:cx1])), high, low)
    n, labels = cv2.connectedComponents(binary.astype(np.uint8), connectivity=8)
    if n <= 1:
        return out
    sub = near[cy0:cy1, cx0:cx1]
    area = np.bincount(labels.ravel(), minlength=n)
    under = np.bincount(labels[sub].ravel(), minlength=n)
    take = under >= SALIENT_SHARE * np.maximum(area, 1)
    take[0] = False
    out[cy0:cy1, cx0:cx1] = take[labels] & sub
    return out


class Follower:
    """Follows one clicked character through a shot (module docstring); ``saliency`` runs on crops."""

    def __init__(self, saliency: Saliency, flow: FlowEstimator, params: FollowParams) -> None:
        self.saliency = saliency
        self.flow = flow
        self.p = params

    def _salient(self, image: np.ndarray, near: np.ndarray) -> np.ndarray:
        """:func:`salient_near` on the full-resolution ``image``, ``near`` and the result at work scale."""
        h, w = image.shape[:2]
        full = cv2.resize(near.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
        found = salient_near(image, full, self.saliency, self.p.high, self.p.low)
        return resize_to(found, near.shape[1] / w) if found.shape != near.shape else found

    def step(self, prev: np.ndarray, fwd: np.ndarray, prev_ev: Evidence, ev: Evidence, image: np.ndarray
             ) -> np.ndarray:
        """The mask in the next frame (work scale, hxw bool) from ``prev`` (the mask in the frame before),
        ``fwd`` (flow from that frame to this one, hxwx2), both frames' evidence and this frame
        (HxWx3 uint8 RGB, full resolution)."""
        area = float(prev.sum())
        own = prev & prev_ev.moving
        src = own if own.sum() >= MOVING_SHARE * area else prev
        d = np.median(fwd[src], axis=0)
        moved = M.shift(prev, (float(d[0]), float(d[1])))
        if not moved.any():
            return moved
        moved = _snap(moved, ev.moving | ev.hidden, max(2, int(self.p.search * np.sqrt(area))))
        near = M.dilate(moved, max(2, int(self.p.search * np.sqrt(area))))
        salient = self._salient(image, near) & M.dilate(moved, 1)
        grown = M.dilate(moved, 2)
        mask = (moved & ev.loose) | salient | (grown & ev.moving)
        closed = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, M.ellipse_kernel(2)).astype(bool)
        mask = (closed & grown) | salient
        if mask.sum() < MIN_KEPT * area:
            return moved | salient
        cap = int(self.p.max_growth * area)
        if mask.sum() > cap:  # keep the pixels nearest the character's salient (or moving) core
            core = salient if salient.any() else moved & ev.moving
            if core.any():
                dist = cv2.distanceTransform((~core).astype(np.uint8), cv2.DIST_L2, 3)
                mask &= dist <= np.sort(dist[mask])[cap - 1]
        return mask

    def seed(self, image: np.ndarray, saliency: np.ndarray | None, x: float, y: float, ev: Evidence) -> np.ndarray:
        """Work-scale hxw bool: what a click at pixel (``x``, ``y``) of ``image`` (full resolution)
        points at (:func:`region_at` with the frame's ``saliency`` map, HxW float32, and its moving pixels)."""
        h, w = image.shape[:2]
        moving = upscale(ev.moving, (h, w))
        region = region_at(image, saliency, x, y, min(self.p.low, self.p.high), moving)
        return resize_to(region, ev.moving.shape[1] / w) if region.shape != ev.moving.shape else region

    def follow(self, frame: Callable[[int], np.ndarray], n: int, k: int, seed: np.ndarray,
               evidence: list[Evidence]) -> list[np.ndarray]:
        """Work-scale hxw bool masks, one per frame of the shot, from ``seed`` (work scale) in frame ``k``."""
        masks = [np.zeros_like(seed) for _ in range(n)]
        masks[k] = seed
        scale = seed.shape[1] / frame(k).shape[1]
        for step in (1, -1):
            t = k + step
            prev_small = resize_to(frame(k), scale)
            while 0 <= t < n and masks[t - step].any():
                image = frame(t)
                small = resize_to(image, scale)
                fwd = self.flow.flow(prev_small, small)
                masks[t] = self.step(masks[t - step], fwd, evidence[t - step], evidence[t], image)
                prev_small = small
                t += step
        return masks


def upscale(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A work-scale hxw bool mask at the frame's ``shape`` (H, W)."""
    if mask.shape == shape:
        return mask
    return cv2.resize(mask.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR) >= 0.5


__all__ = ["Evidence", "FollowParams", "Follower", "salient_near", "shot_evidence", "upscale"]
