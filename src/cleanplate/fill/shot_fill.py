"""Invent once per shot: one background for the whole shot, carried to every frame.

Given a shot's frames, their removal masks and each frame's homography onto a common reference
(frame (x, y) -> reference (x, y)), :func:`invent_once`

1. warps every frame's unmasked pixels onto a reference canvas that holds all frames and takes
   their per-pixel median: the background mosaic, real pixels wherever some frame saw the set;
2. invents what no frame saw ONCE, on the canvas, with the inventor (the exemplar fill by
   default, drawing patches from the whole mosaic);
3. warps the completed canvas back into each frame.

Every frame of the shot then shows the same invented background, moved with the camera: nothing
is invented anew per frame, so the plates do not flicker. :meth:`ShotFill.plate` composes a plate
(the frame's own pixels outside its mask, exactly). The caller wires this into the pipeline; the
shot model's registrations give the homographies.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage

from cleanplate.errors import FrameError
from cleanplate.fill.exemplar import ExemplarSettings, exemplar_fill

Inventor = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""``invent(image, hole, valid)``: HxWx3 uint8 RGB canvas, HxW bool to fill, HxW bool usable
source pixels -> HxWx3 uint8 RGB, equal to ``image`` outside ``hole``."""

_MAX_CANVAS = 6.0  # the canvas may hold at most this many frames' worth of pixels


@dataclass
class ShotFill:
    """The shot's background on the reference canvas and its way back into each frame.

    ``canvas`` HcxWcx3 uint8 RGB: the completed background; ``seen`` HcxWc bool: pixels some frame
    showed (median of those frames); ``invented`` HcxWc bool: pixels invented once;
    ``to_canvas[i]`` 3x3 float64: frame i (x, y) -> canvas (x, y).
    """

    canvas: np.ndarray
    seen: np.ndarray
    invented: np.ndarray
    to_canvas: list[np.ndarray]
    frame_shape: tuple[int, int]

    def background(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame i's view of the canvas: (HxWx3 uint8 RGB, HxW bool pixels that were invented)."""
        h, w = self.frame_shape
        m = self.to_canvas[i]
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        image = cv2.warpPerspective(self.canvas, m, (w, h), flags=flags, borderMode=cv2.BORDER_REPLICATE)
        inv = cv2.warpPerspective(self.invented.astype(np.float32), m, (w, h), flags=flags) > 0.5
        return image, inv

    def plate(self, i: int, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Frame i's plate: ``image`` (HxWx3 uint8 RGB) outside ``mask`` (HxW bool), the shot's background inside."""
        bg, _ = self.background(i)
        return np.where(mask.astype(bool)[..., None], bg, image)


def _exemplar(settings: ExemplarSettings) -> Inventor:
    def invent(image: np.ndarray, hole: np.ndarray, valid: np.ndarray) -> np.ndarray:
        return exemplar_fill(image, hole, settings=settings, valid=valid)
    return invent


def _canvas(shape: tuple[int, int], homographies: Sequence[np.ndarray]) -> tuple[np.ndarray, tuple[int, int]]:
    """The translation reference -> canvas and the canvas size (w, h) holding every frame."""
    h, w = shape
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64).reshape(-1, 1, 2)
    pts = np.concatenate([cv2.perspectiveTransform(corners, np.asarray(m, np.float64)) for m in homographies])
    lo, hi = np.floor(pts.min((0, 1))), np.ceil(pts.max((0, 1)))
    cw, ch = int(hi[0] - lo[0]), int(hi[1] - lo[1])
    if cw * ch > _MAX_CANVAS * w * h or cw <= 0 or ch <= 0:
        raise FrameError(f"the shot's registrations span {cw}x{ch} px ({w}x{h} frames): not one view")
    shift = np.array([[1, 0, -lo[0]], [0, 1, -lo[1]], [0, 0, 1]], np.float64)
    return shift, (cw, ch)


def invent_once(images: Sequence[np.ndarray], masks: Sequence[np.ndarray], homographies: Sequence[np.ndarray],
                invent: Inventor | None = None, settings: ExemplarSettings = ExemplarSettings(),
                max_frames: int = 32) -> ShotFill:
    """Build the shot's background and invent what no frame saw, once (see the module docstring).

    ``images``: HxWx3 uint8 RGB frames of one shot; ``masks``: HxW bool (True = character, not
    background); ``homographies``: 3x3, frame (x, y) -> reference (x, y). The median takes at most
    ``max_frames`` frames, evenly spaced (memory stays bounded on long shots). ``invent``: the
    inventor (default: the exemplar fill with ``settings``).
    """
    n = len(images)
    if n == 0 or len(masks) != n or len(homographies) != n:
        raise ValueError("images, masks and homographies must be non-empty and of one length")
    h, w = images[0].shape[:2]
    shift, (cw, ch) = _canvas((h, w), homographies)
    to_canvas = [shift @ np.asarray(m, np.float64) for m in homographies]
    pick = np.unique(np.linspace(0, n - 1, min(n, max_frames)).round().astype(int))
    stack = np.full((len(pick), ch, cw, 3), np.nan, np.float32)
    footprint = np.zeros((ch, cw), bool)
    ones = np.ones((h, w), np.float32)
    for j, i in enumerate(pick):
        m = to_canvas[i]
        warped = cv2.warpPerspective(images[i], m, (cw, ch), flags=cv2.INTER_LINEAR)
        # a canvas pixel is valid when all the frame pixels it interpolates are background
        ok = cv2.warpPerspective((~masks[i].astype(bool)).astype(np.float32), m, (cw, ch),
                                 flags=cv2.INTER_LINEAR) > 0.999
        inside = cv2.warpPerspective(ones, m, (cw, ch), flags=cv2.INTER_LINEAR) > 0.999
        stack[j][ok & inside] = warped[ok & inside]
    for m in to_canvas:  # every frame's footprint, also those left out of the median
        footprint |= cv2.warpPerspective(ones, m, (cw, ch), flags=cv2.INTER_LINEAR) > 0.5
    seen = ~np.isnan(stack[..., 0]).all(0)
    canvas = np.zeros((ch, cw, 3), np.uint8)
    for y0 in range(0, ch, 64):  # the median by bands: bounded temporary memory
        band = stack[:, y0:y0 + 64]
        with warnings.catch_warnings():  # all-NaN columns (no frame saw them) give NaN, on purpose
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(band, axis=0)
        canvas[y0:y0 + 64] = np.clip(np.rint(np.nan_to_num(med)), 0, 255).astype(np.uint8)
    del stack
    if not seen.any():
        raise FrameError("no frame of the shot shows any background: nothing to build the plate from")
    # outside what any frame saw: the nearest seen colour (context only, never a source)
    _, (iy, ix) = ndimage.distance_transform_edt(~seen, return_indices=True)
    canvas = canvas[iy, ix]
    hole = footprint & ~seen
    if hole.any():
        inventor = invent or _exemplar(settings)
        filled = inventor(canvas, hole, seen)
        canvas = np.where(hole[..., None], filled, canvas)
    return ShotFill(canvas, seen, hole, to_canvas, (h, w))


__all__ = ["Inventor", "ShotFill", "invent_once"]
