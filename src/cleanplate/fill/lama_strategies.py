"""Geometry of the LaMa strategies: which windows of a frame go to the model, at what size, and back.

No model here, only numpy and OpenCV, so every step can be tested on its own.

* ``original``: the whole frame at its own size (a fixed-size model, such as the 512x512 ONNX export,
  cannot take that: the frame is scaled to fit the model, as with ``resize``).
* ``crop``: one window per masked region: the region's box grown by ``crop_margin`` px of context on
  each side (clipped to the frame); windows that overlap are merged into their bounding box until
  none do, so every masked pixel is filled exactly once, by the one window that holds it.
* ``resize``: the whole frame scaled so its long side is ``working_size``.

A window is scaled (never enlarged for a model that takes any size), padded by mirroring its edge
(``numpy.pad(mode="symmetric")``, image and mask alike, so a mirrored character stays masked) to a
multiple of 8 or to the model's fixed size, and the model's output is cropped to the content, scaled
back to the window and pasted into the window's masked pixels only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

Strategy = Literal["original", "crop", "resize"]

PAD_MULTIPLE = 8
"""LaMa downsamples three times: the sides of a model input must be multiples of 8."""


@dataclass(frozen=True)
class Region:
    """A window of a frame: rows ``y0:y1``, columns ``x0:x1``. Windows of one frame never overlap;
    each is filled where the frame's mask is set inside it."""

    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def window(self) -> tuple[slice, slice]:
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    @property
    def shape(self) -> tuple[int, int]:
        return self.y1 - self.y0, self.x1 - self.x0


@dataclass(frozen=True)
class ModelInput:
    """One model input: ``image`` 3xHxW float32 RGB in [0, 1], ``mask`` 1xHxW float32 in {0, 1}
    (both padded); the scaled content is ``content`` = (h, w) at the top-left corner."""

    image: np.ndarray
    mask: np.ndarray
    content: tuple[int, int]


def plan_regions(mask: np.ndarray, strategy: Strategy, crop_margin: int) -> list[Region]:
    """Windows to inpaint for an HxW bool mask; none when the mask is empty."""
    if not mask.any():
        return []
    h, w = mask.shape
    if strategy != "crop":
        return [Region(0, h, 0, w)]
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    boxes = []
    for x, y, bw, bh in stats[1:n, :4].tolist():
        boxes.append((max(0, y - crop_margin), min(h, y + bh + crop_margin),
                      max(0, x - crop_margin), min(w, x + bw + crop_margin)))
    return [Region(*box) for box in _merge_overlapping(boxes)]


Box = tuple[int, int, int, int]  # y0, y1, x0, x1


def _merge_overlapping(boxes: list[Box]) -> list[Box]:
    """Replace boxes that overlap by their bounding box until none overlap."""
    out: list[Box] = []
    for box in boxes:
        # absorb every kept box this one overlaps; the grown box may overlap more, so look again
        absorbed = True
        while absorbed:
            absorbed = False
            for other in out:
                if box[0] < other[1] and other[0] < box[1] and box[2] < other[3] and other[2] < box[3]:
                    out.remove(other)
                    box = (min(box[0], other[0]), max(box[1], other[1]), min(box[2], other[2]), max(box[3], other[3]))
                    absorbed = True
                    break
        out.append(box)
    return out


def content_size(
    shape: tuple[int, int], *, long_side: int | None, fixed: tuple[int, int] | None
) -> tuple[int, int]:
    """Size (h, w) a window of ``shape`` is scaled to before padding.

    ``fixed`` (a fixed-size model): the largest size that fits it, keeping the aspect ratio, enlarging
    if needed. Otherwise the long side is brought down to ``long_side`` (None: kept as is), never up.
    """
    h, w = shape
    if fixed is not None:
        scale = min(fixed[0] / h, fixed[1] / w)
        limit = fixed
    else:
        scale = 1.0 if long_side is None else min(1.0, long_side / max(h, w))
        limit = (h, w)
    if scale == 1.0:
        return h, w
    return (min(limit[0], max(1, round(h * scale))), min(limit[1], max(1, round(w * scale))))


def _resize(arr: np.ndarray, size: tuple[int, int], enlarge: int = cv2.INTER_CUBIC) -> np.ndarray:
    """Resize an HxW or HxWxC array to ``size`` (h, w): area averaging to shrink, ``enlarge`` to enlarge."""
    if arr.shape[:2] == size:
        return arr
    shrink = size[0] * size[1] < arr.shape[0] * arr.shape[1]
    return cv2.resize(arr, (size[1], size[0]), interpolation=cv2.INTER_AREA if shrink else enlarge)


def prepare(
    image: np.ndarray, mask: np.ndarray, size: tuple[int, int], fixed: tuple[int, int] | None
) -> ModelInput:
    """Scale a window (HxWx3 uint8 RGB, HxW bool) to ``size`` and pad it for the model.

    Image and mask are scaled alike (area averaging to shrink, bilinear to enlarge) and a scaled mask
    pixel is set when any masked pixel weighs in it, so no character colour is left as context.
    Padding mirrors the edge up to ``fixed`` or to the next multiple of 8.
    """
    img = _resize(image, size, cv2.INTER_LINEAR).astype(np.float32) / 255.0
    msk = mask.astype(bool)
    if msk.shape != size:
        msk = _resize(msk.astype(np.float32), size, cv2.INTER_LINEAR) > 0
    h, w = size
    ph, pw = fixed if fixed is not None else (_ceil_to(h, PAD_MULTIPLE), _ceil_to(w, PAD_MULTIPLE))
    img = np.pad(img, ((0, ph - h), (0, pw - w), (0, 0)), mode="symmetric")
    msk = np.pad(msk, ((0, ph - h), (0, pw - w)), mode="symmetric")
    return ModelInput(
        image=np.ascontiguousarray(img.transpose(2, 0, 1)),
        mask=msk[None].astype(np.float32),
        content=(h, w),
    )


def restore(output: np.ndarray, content: tuple[int, int], shape: tuple[int, int]) -> np.ndarray:
    """Model output (3xHxW float RGB in [0, 1]) -> the window's HxWx3 uint8 RGB: padding cropped, scaled back."""
    h, w = content
    out = np.ascontiguousarray(output[:, :h, :w].transpose(1, 2, 0), dtype=np.float32)
    out = _resize(out, shape)
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def _ceil_to(value: int, multiple: int) -> int:
    return int(math.ceil(value / multiple) * multiple)
