"""What the other frames of a shot say about one plate: a background model and the moving foreground.

For each frame, its neighbours in the shot (up to :data:`NEIGHBOURS` on each side) are warped onto
it along the shot model's registration (:class:`cleanplate.motion.shot_model.ShotModel`: homography,
or identity for a locked-off camera), their scenery (outside their removal masks) only. The per-pixel median of
at least two warped neighbours is the **background model**: what the scenery looks like at that
place when no character stands there. Where the frame differs from it by more than
:data:`FOREGROUND_LEVEL` grey levels (after a light blur and a 3x3 opening, against the best of a
1-pixel neighbourhood so registration error on edges does not count), something is there that is
not scenery: a character, or a part of one.

Everything works on a copy scaled to :data:`WORK_SIDE` px (longer side); images are HxWx3 uint8
RGB, masks HxW bool.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from cleanplate.motion.registration import warp_into
from cleanplate.motion.shot_model import ShotModel, median_of_valid

NEIGHBOURS = 3
"""Frames on each side registered onto a frame."""
WORK_SIDE = 384
"""Longer side (px) the background model is built at."""
SKIP = 0
"""Frames on each side of a frame left out of its background model (a slow character stands at the same
place in them). 0: the nearest frames. Measured on the bench (issue 12): skipping 2 or 4 frames raised
false flags on the panning Sintel shot (registration over longer spans is worse) and found no more
residue, so it is off by default."""
FOREGROUND_LEVEL = 28.0
"""Grey-level difference from the background model that counts as foreground."""


@dataclass
class ShotEvidence:
    """One frame's background model at work scale.

    ``background`` hxwx3 uint8 RGB (the median of the registered neighbours' scenery), ``valid``
    hxw bool (at least two neighbours saw scenery there), ``foreground`` hxw bool (the frame
    differs from the background there), ``neighbours`` how many registered.
    """

    background: np.ndarray
    valid: np.ndarray
    foreground: np.ndarray
    neighbours: int


def _small(image: np.ndarray, side: int) -> np.ndarray:
    h, w = image.shape[:2]
    if max(h, w) <= side:
        return image
    f = side / max(h, w)
    return cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)


def _small_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if mask.shape == shape:
        return mask.astype(bool)
    return cv2.resize(mask.astype(np.uint8), (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST) > 0


def differs(image: np.ndarray, background: np.ndarray, level: float = FOREGROUND_LEVEL) -> np.ndarray:
    """HxW bool: where ``image`` differs from ``background`` (both HxWx3 uint8 RGB) by more than
    ``level`` grey levels in some channel, against every background pixel of a 3x3 neighbourhood
    (so a one-pixel registration error on an edge is not a difference), opened by 3x3."""
    a = cv2.GaussianBlur(image, (3, 3), 0).astype(np.int16)
    b = cv2.GaussianBlur(background, (3, 3), 0)
    lo = cv2.erode(b, np.ones((3, 3), np.uint8)).astype(np.int16)
    hi = cv2.dilate(b, np.ones((3, 3), np.uint8)).astype(np.int16)
    d = np.maximum(lo - a, a - hi).max(axis=2)
    out = (d > level).astype(np.uint8)
    return cv2.morphologyEx(out, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)).astype(bool)


def _neighbour_order(i: int, n: int, neighbours: int, skip: int) -> list[int]:
    """The frames whose scenery builds frame ``i``'s background model: the ``2 * neighbours`` nearest
    ones at least ``skip + 1`` frames away (so a slow character is elsewhere in them), nearest first;
    where the shot is too short for that, the nearer ones make up the count."""
    if skip <= 0:
        return [j for j in range(max(0, i - neighbours), min(n, i + neighbours + 1)) if j != i]
    far = sorted((j for j in range(n) if abs(j - i) > skip), key=lambda j: (abs(j - i), j))
    near = sorted((j for j in range(n) if 0 < abs(j - i) <= skip), key=lambda j: (-abs(j - i), j))
    return (far + near)[: 2 * neighbours]


def shot_evidence(images: list[np.ndarray], masks: list[np.ndarray],
                  neighbours: int = NEIGHBOURS, side: int = WORK_SIDE,
                  skip: int = SKIP, model: ShotModel | None = None) -> list[ShotEvidence | None]:
    """The background model of each frame of one shot (frames in order), or None where fewer than
    two neighbours register. ``model``: the shot model of these frames (same order); without one,
    the frames are registered one after the other here (:meth:`ShotModel.build`). No frame is
    registered twice: a neighbour's warp is read off the model's chained matrices."""
    if len(images) < 3:
        return [None] * len(images)
    if model is None:
        model = ShotModel.build(images, masks=masks)
    if len(model) != len(images):
        raise ValueError(f"shot model of {len(model)} frames for {len(images)} images")
    small = [_small(im, side) for im in images]
    small_masks = [_small_mask(m, s.shape[:2]) for m, s in zip(masks, small, strict=True)]
    out: list[ShotEvidence | None] = []
    for i, target in enumerate(small):
        h, w = target.shape[:2]
        stack, valid = [], []
        for j in _neighbour_order(i, len(small), neighbours, skip):
            if small[j].shape != target.shape:
                continue
            reg = model.registration(j, i, (w, h), coarse=True)  # the keypoint fits the checks were calibrated on
            if not reg.ok:
                continue
            px, ok = warp_into(small[j], ~small_masks[j], reg, (0, 0, w, h))
            stack.append(px)
            valid.append(ok)
        if len(stack) < 2:
            out.append(None)
            continue
        ok_all = np.stack(valid)
        bg = median_of_valid(np.stack(stack), ok_all)
        seen = ok_all.sum(axis=0) >= 2
        fg = differs(target, bg) & seen
        out.append(ShotEvidence(bg, seen, fg, len(stack)))
    return out


__all__ = ["FOREGROUND_LEVEL", "NEIGHBOURS", "WORK_SIDE", "ShotEvidence", "differs", "median_of_valid",
           "shot_evidence"]
