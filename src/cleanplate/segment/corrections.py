"""A person's corrections (``OUT/review.json``) turned into per-frame masks of one shot.

* a **point** on a missed character: in the clicked frame, the connected region of the saliency
  map at the low threshold under the point (else the moving region under it, else a colour flood
  fill around the point), :func:`region_at`; :mod:`cleanplate.segment.follow` follows it through
  the shot;
* a **brush** region (remove: scenery kept out of the mask; add: forced into it) is carried along
  the shot model's registration (the camera's motion) into every frame of the shot: a rock stays a
  rock wherever the camera looks at it.

Everything here is pure arrays: HxWx3 uint8 RGB frames, HxW float32 saliency in [0, 1], HxW bool masks.
"""

from __future__ import annotations

import cv2
import numpy as np

from cleanplate import masks as M
from cleanplate.motion.shot_model import ShotModel

FLOOD_TOLERANCE = 14
"""Colour flood fill (0-255 levels per channel) around a point where no saliency region holds it."""
FLOOD_MAX = 0.25
"""A flood region larger than this share of the frame is cut to a disk around the point."""


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
    (the shot model's homography from ``k`` to each frame, scaled to the mask's size: the model may
    have been registered at another resolution). Frames not registered with ``k`` (or
    a window without a shot model: the camera taken as still) get the mask where it was drawn."""
    h, w = mask.shape
    out = []
    for t in range(n):
        m = shot.scaled(k, t, (w, h)) if shot is not None and t != k else None
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


__all__ = ["brush_mask", "carry_by_registration", "region_at"]
