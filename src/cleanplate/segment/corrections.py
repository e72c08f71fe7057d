"""A person's corrections (``OUT/review.json``) turned into per-frame masks of one shot.

* a **point** on a missed character becomes a track over the shot: in the clicked frame, the
  connected region of the saliency map at the low threshold under the point (without a saliency
  map, or with the point below it, a colour flood fill around the point); that region is carried
  frame by frame along DIS optical flow (the shot segmenter's flow), and in every frame snapped to
  the saliency regions it lands on (so it keeps the character's outline as it moves and turns);
* a **brush** region (remove: scenery kept out of the mask; add: forced into it) is carried along
  the shot model's registration (the camera's motion) into every frame of the shot: a rock stays a
  rock wherever the camera looks at it.

Everything here is pure arrays: HxWx3 uint8 RGB frames, HxW float32 saliency in [0, 1], HxW bool masks.
"""

from __future__ import annotations

import cv2
import numpy as np

from cleanplate import masks as M
from cleanplate.motion.flow import FlowEstimator, pull_mask
from cleanplate.motion.shot_model import ShotModel
from cleanplate.segment.shot.background import resize_to, work_scale

FLOOD_TOLERANCE = 14
"""Colour flood fill (0-255 levels per channel) around a point where no saliency region holds it."""
FLOOD_MAX = 0.25
"""A flood region larger than this share of the frame is cut to a disk around the point."""
SNAP_SHARE = 0.5
"""A saliency region joins a carried track when this share of it lies under the carried mask."""
MAX_GROWTH = 2.0
"""A snapped mask larger than this many times the carried one keeps only what lies near it."""


def brush_mask(points: list[list[float]], radius: float, shape: tuple[int, int]) -> np.ndarray:
    """HxW bool: the stroke through ``points`` ([x, y] pixels) ``radius`` pixels wide on either side."""
    canvas = np.zeros(shape, np.uint8)
    r = max(1, round(radius))
    pts = [(round(x), round(y)) for x, y in points]
    for p in pts:
        cv2.circle(canvas, p, r, 1, -1)
    for a, b in zip(pts, pts[1:], strict=False):
        cv2.line(canvas, a, b, 1, 2 * r)
    return canvas.astype(bool)


def carry_by_registration(mask: np.ndarray, k: int, shot: ShotModel | None, n: int) -> list[np.ndarray]:
    """Frame ``k``'s HxW bool ``mask`` in each of the shot's ``n`` frames, moved with the camera
    (the shot model's homography from ``k`` to each frame). Frames not registered with ``k`` (or
    a window without a shot model: the camera taken as still) get the mask where it was drawn."""
    h, w = mask.shape
    out = []
    for t in range(n):
        m = shot.matrix(k, t) if shot is not None and t != k else None
        if m is None:
            out.append(mask.copy())
            continue
        warped = cv2.warpPerspective(mask.astype(np.uint8), m, (w, h), flags=cv2.INTER_NEAREST,
                                     borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        out.append(warped.astype(bool))
    return out


def _flood(image: np.ndarray, x: int, y: int) -> np.ndarray:
    h, w = image.shape[:2]
    ff = np.zeros((h + 2, w + 2), np.uint8)
    tol = (FLOOD_TOLERANCE,) * 3
    cv2.floodFill(image.copy(), ff, (x, y), (0, 0, 0), tol, tol, 4 | cv2.FLOODFILL_MASK_ONLY | (1 << 8))
    region = ff[1:-1, 1:-1].astype(bool)
    if region.mean() > FLOOD_MAX:
        disk = np.zeros((h, w), np.uint8)
        cv2.circle(disk, (x, y), max(4, round(0.05 * max(h, w))), 1, -1)
        region &= disk.astype(bool)
    return region


def region_at(image: np.ndarray, saliency: np.ndarray | None, x: float, y: float, low: float,
              moving: np.ndarray | None = None) -> np.ndarray:
    """HxW bool: what a click at pixel (``x``, ``y``) points at (module docstring); ``moving``: the
    pixels that move against the shot's background model (HxW bool), whose region under the click
    (closed over small gaps) is taken where the saliency map does not see the character."""
    h, w = image.shape[:2]
    xi, yi = min(max(round(x), 0), w - 1), min(max(round(y), 0), h - 1)
    if saliency is not None and saliency.shape == (h, w) and saliency[yi, xi] >= low:
        _, labels = cv2.connectedComponents((saliency >= low).astype(np.uint8), connectivity=8)
        return labels == labels[yi, xi]
    if moving is not None and moving.shape == (h, w):
        r = max(2, round(0.01 * max(h, w)))
        closed = M.dilate(moving, r)
        if closed[yi, xi]:
            _, labels = cv2.connectedComponents(closed.astype(np.uint8), connectivity=8)
            region = labels == labels[yi, xi]
            if region.mean() <= FLOOD_MAX:
                return region
    return _flood(image, xi, yi)


def _snap(carried: np.ndarray, saliency: np.ndarray | None, low: float, moving: np.ndarray | None) -> np.ndarray:
    """The saliency regions (at ``low``) and moving regions that lie mostly under ``carried``, with
    ``carried`` itself."""
    if not carried.any():
        return carried
    evidence = np.zeros(carried.shape, bool)
    if saliency is not None:
        evidence |= saliency >= low
    if moving is not None:
        evidence |= M.dilate(moving, max(2, round(0.01 * max(carried.shape))))
    n, labels = cv2.connectedComponents(evidence.astype(np.uint8), connectivity=8)
    if n <= 1:
        return carried
    area = np.bincount(labels.ravel(), minlength=n)
    under = np.bincount(labels[carried].ravel(), minlength=n)
    take = under >= SNAP_SHARE * np.maximum(area, 1)
    take[0] = False
    snapped = carried | take[labels]
    a = float(carried.sum())
    if snapped.sum() > MAX_GROWTH * a:  # a region spilling onto the set: only what lies near the track
        snapped = carried | (snapped & M.dilate(carried, max(2, int(0.15 * np.sqrt(a)))))
    return snapped


def point_track(images: list[np.ndarray], saliency: list[np.ndarray | None], k: int, x: float, y: float,
                low: float, flow: FlowEstimator, work_side: int = 512,
                moving: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """HxW bool masks, one per frame of the shot, of the character clicked at (``x``, ``y``) in frame ``k``.

    ``images``: the shot's frames in order; ``saliency``: their maps (None where there is none);
    ``low``: the saliency threshold of a region; the flow runs at long side ``work_side``;
    ``moving``: per frame, the pixels that move against the shot's background model (or None).
    """
    n = len(images)
    shape = images[k].shape[:2]
    masks: list[np.ndarray] = [np.zeros(shape, bool) for _ in range(n)]
    mv: list[np.ndarray | None] = list(moving) if moving is not None else [None] * n
    masks[k] = region_at(images[k], saliency[k], x, y, low, mv[k])
    scale = work_scale(shape, work_side)
    small = [resize_to(im, scale) for im in images]

    def up(m: np.ndarray) -> np.ndarray:
        return m if m.shape == shape else cv2.resize(m.astype(np.uint8), (shape[1], shape[0]),
                                                     interpolation=cv2.INTER_NEAREST).astype(bool)

    for step in (1, -1):
        t = k + step
        while 0 <= t < n:
            prev = masks[t - step]
            if not prev.any():
                break
            back = flow.flow(small[t], small[t - step])  # where each pixel of t sits in the frame before
            carried = up(pull_mask(resize_to(prev, scale), back))
            masks[t] = _snap(carried, saliency[t], low, mv[t])
            t += step
    return masks


__all__ = ["brush_mask", "carry_by_registration", "point_track", "region_at"]
