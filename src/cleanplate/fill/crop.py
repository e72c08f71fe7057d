"""Fill only what needs filling: each hole solved in a crop around it, large ones at a reduced scale.

A frame's removal mask is split into holes (connected components, nearby ones grouped into one
cluster). Each cluster is cropped with a margin of context around it and handed to the backend's
``solve(crop_image, crop_mask)``; only the cluster's own pixels are pasted back, so every masked
pixel is filled exactly once and unmasked pixels are never touched. A crop larger than
``work_pixels`` is solved on a copy scaled down to that many pixels (PatchMatch and the OpenCV
fills are themselves coarse-to-fine inside the crop) and the fill is brought back to full
resolution with bicubic interpolation. Clusters are solved in order (top-left first); a later
crop sees the earlier fills as known pixels and the still-unfilled holes as holes.

The cost of a fill then follows the size of the holes and their context, not the frame's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from cleanplate.config import Config
from cleanplate.errors import FrameError

Solver = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``solve(image, mask)``: image hxwx3 uint8 RGB, mask hxw bool (True = hole) -> hxwx3 uint8 RGB."""


@dataclass(frozen=True)
class CropSettings:
    """How holes are cropped (``fill.crop_*`` in the config)."""

    context: float = 0.5
    """Context margin on each side, as a fraction of the cluster's longer bounding-box side."""
    min_context: int = 32
    """Context margin at least this many pixels."""
    merge_gap: int = 16
    """Holes closer than this many pixels form one cluster (one crop)."""
    work_pixels: int = 100_000
    """Crops with more pixels than this are solved scaled down to this many (0: always full size)."""

    @classmethod
    def from_config(cls, config: Config) -> CropSettings | None:
        """The settings of ``config.fill``, or None when cropping is off (``fill.crop: false``)."""
        fc = config.fill
        if not fc.crop:
            return None
        return cls(fc.crop_context, fc.crop_min_context, fc.crop_merge_gap, fc.crop_work_pixels)


@dataclass(frozen=True)
class Crop:
    """One cluster of holes: the crop box (rows y0:y1, columns x0:x1) and the cluster's label."""

    y0: int
    y1: int
    x0: int
    x1: int
    label: int

    @property
    def pixels(self) -> int:
        return (self.y1 - self.y0) * (self.x1 - self.x0)


def plan_crops(mask: np.ndarray, settings: CropSettings) -> tuple[list[Crop], np.ndarray]:
    """The crops of ``mask`` (HxW bool) and the HxW int32 cluster labels (0 = not a hole).

    Crops are ordered top-left first; each covers its cluster's bounding box plus the context
    margin, clipped to the frame.
    """
    h, w = mask.shape
    m8 = mask.astype(np.uint8)
    if settings.merge_gap > 0:
        r = (settings.merge_gap + 1) // 2  # both holes grow by r: gaps up to ~merge_gap close
        grouped = cv2.dilate(m8, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    else:
        grouped = m8
    n, labels, stats, _ = cv2.connectedComponentsWithStats(grouped, connectivity=8)
    labels = np.where(mask, labels, 0).astype(np.int32)
    crops = []
    for k in range(1, n):
        # the box of the cluster's own hole pixels (the grouping dilation only decides membership)
        ys, xs = np.nonzero(labels[stats[k, 1]:stats[k, 1] + stats[k, 3], stats[k, 0]:stats[k, 0] + stats[k, 2]] == k)
        if ys.size == 0:
            continue
        top, left = int(stats[k, 1] + ys.min()), int(stats[k, 0] + xs.min())
        bottom, right = int(stats[k, 1] + ys.max()) + 1, int(stats[k, 0] + xs.max()) + 1
        pad = max(settings.min_context, int(np.ceil(settings.context * max(bottom - top, right - left))))
        crops.append(Crop(max(0, top - pad), min(h, bottom + pad), max(0, left - pad), min(w, right + pad), k))
    crops.sort(key=lambda c: (c.y0, c.x0, c.label))
    return crops, labels


def _solve_scaled(image: np.ndarray, mask: np.ndarray, solve: Solver, work_pixels: int) -> np.ndarray:
    """Solve one crop, scaled down first when it has more than ``work_pixels`` pixels."""
    h, w = mask.shape
    if work_pixels <= 0 or h * w <= work_pixels:
        return solve(image, mask)
    f = (work_pixels / (h * w)) ** 0.5
    size = (max(8, round(w * f)), max(8, round(h * f)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    # a small pixel touching the hole is a hole: no hole colour leaks into the known pixels
    small_mask = cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0
    if small_mask.all():
        return solve(image, mask)
    filled = solve(small, small_mask)
    return cv2.resize(filled, (w, h), interpolation=cv2.INTER_CUBIC)


def fill_by_crops(image: np.ndarray, mask: np.ndarray, solve: Solver, settings: CropSettings) -> np.ndarray:
    """Fill the holes of ``image`` (HxWx3 uint8 RGB) under ``mask`` (HxW bool) crop by crop.

    Returns a new HxWx3 uint8 RGB array whose unmasked pixels are ``image``'s, byte for byte.
    A mask that covers the whole frame leaves nothing to fill from: a :class:`FrameError`.
    """
    if image.ndim != 3 or image.shape[:2] != mask.shape:
        raise ValueError(f"image {image.shape} and mask {mask.shape} differ")
    out = image.copy()
    mask = mask.astype(bool)
    if not mask.any():
        return out
    if mask.all():
        raise FrameError("the mask covers the whole frame: no pixels to fill from")
    crops, labels = plan_crops(mask, settings)
    todo = mask.copy()
    for c in crops:
        box = (slice(c.y0, c.y1), slice(c.x0, c.x1))
        crop_todo = todo[box]
        own = labels[box] == c.label
        if crop_todo.all():  # no context in the box (the other holes fill it): use the whole frame
            box, crop_todo, own = (slice(0, None), slice(0, None)), todo, labels == c.label
        filled = _solve_scaled(np.ascontiguousarray(out[box]), crop_todo, solve, settings.work_pixels)
        region = out[box]
        region[own] = filled[own]
        todo[box][own] = False
    return out


__all__ = ["Crop", "CropSettings", "Solver", "fill_by_crops", "plan_crops"]
