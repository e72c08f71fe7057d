"""A character's moving core: the part of a detector's blob that moves against the shot.

A per-frame detector (the bundled u2netp saliency) often returns a blob two or three times the
size of a small character, or one blob for the character and the bush in front of it. Within a
track that moves against the background model, the character is the part of the blob that
disagrees with the registered neighbours; the rest is scenery the detector took along.

:func:`moving_core` finds that part: the background-model foreground inside the blob, closed over
gaps of a size that follows the character's own, its holes filled, keeping only the components
that are a real share of it (parallax flicker in foliage and grass leaves small scattered specks).
"""

from __future__ import annotations

import cv2
import numpy as np

from cleanplate import masks as M


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """HxW bool ``mask`` with every region of False not connected to the frame's border set True."""
    inv = (~mask).astype(np.uint8)
    n, labels = cv2.connectedComponents(inv, connectivity=4)
    if n <= 1:
        return mask.copy()
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    hole = np.ones(n, bool)
    hole[border] = False
    hole[0] = False
    return mask | hole[labels]


def moving_core(blob: np.ndarray, foreground: np.ndarray, min_part: float = 0.15,
                min_density: float = 0.5, radius: int | None = None) -> np.ndarray:
    """HxW bool: the part of ``blob`` (HxW bool, one character's mask) that moves against the shot.

    ``foreground``: HxW bool, the background model's consistent disagreement in the same frame.
    The foreground inside the blob (grown by 1 px) is closed with a disc whose radius follows its
    size (about an eighth of the side of a square of its area, 2-8 px), its holes are filled, and
    components smaller than ``min_part`` of the largest are dropped. Empty when nothing in the
    blob moves.
    """
    inside = M.dilate(foreground, 1) & blob
    area = float(inside.sum())
    if area == 0:
        return inside
    if radius is None:
        radius = int(np.clip(0.06 * np.sqrt(float(blob.sum())), 2, 6))
    k = M.ellipse_kernel(radius)
    closed = cv2.morphologyEx(inside.astype(np.uint8), cv2.MORPH_CLOSE, k, borderType=cv2.BORDER_CONSTANT,
                              borderValue=0).astype(bool) & blob
    closed = fill_holes(closed)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(closed.astype(np.uint8), connectivity=8)
    if n <= 1:
        return closed
    sizes = stats[:, cv2.CC_STAT_AREA]
    moving = np.bincount(labels[foreground], minlength=n)
    solid = moving >= min_density * sizes
    solid[0] = False
    if not solid.any():
        return np.zeros_like(blob)
    keep = solid & (sizes >= min_part * sizes[solid].max())
    return keep[labels]


def _parts(region: np.ndarray, foreground: np.ndarray, radius: int) -> tuple[int, np.ndarray, np.ndarray]:
    """Components (label count, HxW int32 labels, areas) of the moving core of ``region``."""
    core = moving_core(region, foreground, min_part=0.0, radius=radius)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(core.astype(np.uint8), connectivity=8)
    return n, labels, stats[:, cv2.CC_STAT_AREA]


def follow_core(blobs: dict[int, np.ndarray], detected: set[int], foreground: list[np.ndarray],
                back_flows: list[np.ndarray], fwd_flows: list[np.ndarray], min_part: float = 0.15
                ) -> dict[int, np.ndarray]:
    """The moving core of one track in each of its frames, followed along the optical flow.

    ``blobs``: frame index -> HxW bool mask of the track (detected or carried; consecutive frames);
    ``detected``: the frames where a detection backs it; ``foreground[t]``: HxW bool background
    model foreground; ``back_flows[t]`` carries a mask from frame t into t+1, ``fwd_flows[t]`` from
    t+1 into t. The anchor is the detected frame whose blob moves the most (its core over its
    area); from there the core is carried frame by frame both ways, and in each frame the parts
    of the moving core that touch the carried one (grown a little) are kept, so parallax flicker
    beside the character in a blob is left out. Returns frame -> HxW bool core (empty where the
    track has nothing moving).
    """
    from cleanplate.motion.flow import pull_mask

    frames = sorted(blobs)
    cores: dict[int, np.ndarray] = {}
    best, anchor = -1.0, frames[0]
    for t in frames:
        if t not in detected:
            continue
        c = moving_core(blobs[t], foreground[t], min_part)
        share = float(c.sum()) / max(float(blobs[t].sum()), 1.0)
        if share > best:
            best, anchor, cores[t] = share, t, c
    if anchor not in cores:
        cores[anchor] = moving_core(blobs[anchor], foreground[anchor], min_part)
    cores = {anchor: cores[anchor]}
    for step in (1, -1):
        prev = cores[anchor]
        t = anchor + step
        while t in blobs:
            prior = pull_mask(prev, back_flows[t - 1] if step == 1 else fwd_flows[t])
            cores[t] = prev = _select(blobs[t], prior, foreground[t], t in detected, min_part)
            t += step
    return cores


def _select(blob: np.ndarray, prior: np.ndarray, foreground: np.ndarray, detected: bool,
            min_part: float) -> np.ndarray:
    """One frame of :func:`follow_core`: the core parts of ``blob`` and ``prior`` that touch ``prior``."""
    area = float(prior.sum())
    if area == 0:
        return moving_core(blob, foreground, min_part)
    r = max(2, int(0.15 * np.sqrt(area)))
    near = M.dilate(prior, r)
    # a detection says where the character is: the core stays in it (and next to the carried
    # core); a carried blob may drift off the character, so there the core may leave it
    region = blob | M.dilate(prior, 2) if detected else blob | near
    n, labels, sizes = _parts(region, foreground, int(np.clip(0.1 * np.sqrt(area), 2, 6)))
    hit = np.unique(labels[near])
    keep = np.zeros(n, bool)
    keep[hit] = True
    keep[0] = False
    out = keep[labels]
    if out.any():
        return out
    return moving_core(blob, foreground, min_part) if detected else prior


def thin_parts(core: np.ndarray, faint: np.ndarray, reach: float = 0.35) -> np.ndarray:
    """HxW bool: ``core`` plus the weaker disagreement connected to it (hysteresis).

    The background-model foreground is opened, which removes what is only a pixel or two wide: a
    bicycle's tyres and spokes, a racket's frame. Here the faint foreground (``faint``, HxW bool:
    consistent disagreement at a lower threshold, not opened) joins the core where it connects to
    it within ``reach`` times the side of a square of the core's area.
    """
    area = float(core.sum())
    if area == 0:
        return core
    near = M.dilate(core, max(2, int(reach * np.sqrt(area))))
    weak = (faint & near) | core
    n, labels = cv2.connectedComponents(weak.astype(np.uint8), connectivity=8)
    keep = np.zeros(n, bool)
    keep[np.unique(labels[core])] = True
    keep[0] = False
    return keep[labels]


def clutter(core: np.ndarray, blob: np.ndarray, faint: np.ndarray, covered: np.ndarray,
            reach: float = 0.35) -> float:
    """Share of the scenery around a character that the faint foreground covers (0-1): the pixels
    between ``reach`` and twice ``reach`` times the side of a square of the ``core``'s area from it
    (beyond where :func:`thin_parts` looks), outside its ``blob`` (HxW bool, the detection), that
    at least two registered neighbours see (``covered``, HxW uint8). Where the set is quiet (a court,
    a wall) this is near 0 and the faint foreground next to the core is the character's thin parts;
    under a pan through grass and foliage the parallax makes it high (0.5-0.8 at the end of DAVIS
    bmx-trees), and faint foreground next to the core is no evidence. -1 when there is no such ring."""
    area = float(core.sum())
    if area == 0:
        return -1.0
    r = max(2, int(reach * np.sqrt(area)))
    ring = M.dilate(core, 2 * r) & ~M.dilate(core, r) & ~blob & (covered >= 2)
    if not ring.any():
        return -1.0
    return float(faint[ring].mean())
