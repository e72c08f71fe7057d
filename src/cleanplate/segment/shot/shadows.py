"""What moves with a character and touches it joins its mask: its cast shadow on the ground, what
it carries.

Two sources, both limited to regions connected to the character's own mask:

* *moving parts*: components of the shot's background-model foreground (consistent disagreement
  with the registered neighbours, see :mod:`.background`) that touch the character and are not
  bigger than it (a carried object, a racket the saliency map cut off);
* *cast shadow*: ground darker than the ground around the character's base, with the ground's
  chromaticity, connected to the lower part of the character (a shadow changes brightness, not
  hue). The ground colour is the median of a band around the base, outside the mask.
"""

from __future__ import annotations

import cv2
import numpy as np

from cleanplate import masks as M
from cleanplate.segment.shot.core import fill_holes

_BASE_SHARE = 0.2  # the lowest fifth of a character's rows is its base (feet, wheels)
_REACH = 4  # a shadow is looked for up to this many character heights either side
_LOCAL_SIDE = 0.25  # the ground around a pixel: a window a quarter of the character's height (>= 15 px)


def touching(candidates: np.ndarray, mask: np.ndarray, max_area: float, gap: int = 2) -> np.ndarray:
    """HxW bool: the components (8-way) of ``candidates`` within ``gap`` px of ``mask`` whose area is
    at most ``max_area`` px."""
    if not candidates.any() or not mask.any():
        return np.zeros_like(mask, dtype=bool)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(candidates.astype(np.uint8), connectivity=8)
    near = np.unique(labels[M.dilate(mask, gap)])
    keep = np.zeros(n, bool)
    for lab in near:
        if lab and stats[lab, cv2.CC_STAT_AREA] <= max_area:
            keep[lab] = True
    return keep[labels]


def cast_shadow(image: np.ndarray, mask: np.ndarray, darker: float = 0.9, chroma: float = 0.08,
                max_area: float | None = None, shot_ratio: np.ndarray | None = None,
                moved: float = 0.93, min_moved: float = 0.1, max_texture: float = 0.3,
                soft: float = 0.96, local_darker: float = 0.85, prior: np.ndarray | None = None) -> np.ndarray:
    """HxW bool: the cast shadow of the character ``mask`` (HxW bool) in ``image`` (HxWx3 uint8 RGB).

    Pixels below the character's upper half (and at most 4 character heights to either side) whose
    luminance is under ``darker`` times the ground's and under ``local_darker`` times the median of
    the ground around them (a window a quarter of the character's height), and whose chromaticity
    (r, g, b over their sum) is within ``chroma`` of the ground's, connected to the character's
    base; holes filled. The local test tells a character's shadow from broad shade the set casts (a
    wall's, across a court), which is as dark against the ground at the base. Empty when the ground
    around the base is itself dark or unclear, or when the base is cut off by the frame's lower edge
    (a character seen from the waist up).
    ``shot_ratio`` (optional, HxW float32): the frame's luminance over the shot's background model
    there. A dark region of which less than ``min_moved`` is darker than ``moved`` times the
    background is shade the set casts (the foot of a wall), not the character's shadow, which
    moves with it (a long shadow overlaps itself from frame to frame, so only part of it shows).
    Empty too on textured ground (the luminance of the band around the base varies by more than
    ``max_texture`` of its median: grass, gravel, bushes), whose own dark parts pass for a shadow.
    ``prior`` (optional, HxW bool): the character's shadow in a neighbouring frame, carried here
    along the optical flow. Its dark pixels (the test above) join where they connect to the base,
    moved or not: the far end of a long shadow moves little from frame to frame, so the moved test
    keeps it only in the frames where the character's turn swept it, and the neighbours carry it
    into the others.
    The shadow's soft edge (penumbra) joins it: pixels within a 40th of the character's height
    (at least 2 px) of the shadow, under ``soft`` times the luminance of the ground just around the
    shadow, with the ground's chromaticity.
    """
    ys, xs = np.nonzero(mask)
    out = np.zeros(mask.shape, bool)
    if len(ys) < 16:
        return out
    y0, y1 = int(ys.min()), int(ys.max())
    if y1 >= mask.shape[0] - 2:  # the base (feet, wheels) is out of frame: no ground around it to judge
        return out
    height = y1 - y0 + 1
    limit = float(max_area if max_area is not None else 2 * mask.sum())
    # the search is limited to the lower half of the character and _REACH heights either side
    r0 = y0 + height // 2
    c0, c1 = max(0, int(xs.min()) - _REACH * height), min(mask.shape[1], int(xs.max()) + 1 + _REACH * height)
    roi = (slice(r0, mask.shape[0]), slice(c0, c1))
    mask, image = mask[roi], image[roi]
    y1 -= r0
    base_row = y1 - max(2, int(_BASE_SHARE * height))
    base = mask.copy()
    base[:base_row] = False
    band = M.dilate(base, max(4, height // 6)) & ~M.dilate(mask, 2)
    band[:base_row] = False
    if band.sum() < 32:
        return out
    img = image.astype(np.float32)
    lum = img.sum(axis=-1) + 3.0
    chrom = img / lum[..., None]
    ground_lum = float(np.median(lum[band]))
    ground_chrom = np.median(chrom[band], axis=0)
    if ground_lum < 3 * 40:  # dark ground: a shadow cannot be told from it
        return out
    if float(np.std(lum[band])) > max_texture * ground_lum:
        return out  # textured ground (grass, gravel, bushes): its own dark parts look like a shadow
    cand = (lum < darker * ground_lum) & (lum > 0.2 * ground_lum) \
        & (np.abs(chrom - ground_chrom).max(axis=-1) < chroma)
    cand &= ~mask
    # and darker than the ground right around it: broad shade the set casts (a wall's, across the
    # court) is as dark as a shadow against the ground at the base, but not against its own
    # surroundings; a character's shadow is narrow there (its holes are filled below)
    k = min(255, max(15, int(_LOCAL_SIDE * height) | 1))
    around = cv2.medianBlur(np.clip(lum / 3, 0, 255).astype(np.uint8), k).astype(np.float32) * 3
    cand &= lum < local_darker * around
    gap = max(3, height // 8)  # how far from the base a shadow may start
    found = touching(cand, base, limit, gap=gap)
    if shot_ratio is not None and found.any():
        n, labels = cv2.connectedComponents(found.astype(np.uint8), connectivity=8)
        total = np.bincount(labels.ravel(), minlength=n)
        darker_px = np.bincount(labels[shot_ratio[roi] < moved], minlength=n)
        keep = darker_px >= min_moved * np.maximum(total, 1)
        keep[0] = False
        found = keep[labels]
    if prior is not None:
        carried = cand & prior[roi]
        if carried.any():
            found |= touching(found | carried, base | found, limit, gap=gap)
    if found.any():
        found = fill_holes(found)  # the middle of a shadow wider than the local window
        # the penumbra: a shadow's edge is soft, and the threshold above cuts through it; the
        # pixels just beside the shadow still a little darker than the ground right around it join
        width = max(2, height // 40)
        edge = M.dilate(found, width) & ~found & ~mask
        ring = M.dilate(found, width + 3) & ~edge & ~found & ~mask  # the lit ground beyond the edge
        if ring.sum() >= 16:
            beyond = float(np.median(lum[ring]))
            found |= edge & (lum < soft * beyond) & (np.abs(chrom - ground_chrom).max(axis=-1) < chroma)
    out[roi] = found
    return out
