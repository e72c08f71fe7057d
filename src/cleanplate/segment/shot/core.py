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


def moving_core(blob: np.ndarray, foreground: np.ndarray, min_part: float = 0.15) -> np.ndarray:
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
    radius = int(np.clip(0.12 * np.sqrt(area), 2, 8))
    k = M.ellipse_kernel(radius)
    closed = cv2.morphologyEx(inside.astype(np.uint8), cv2.MORPH_CLOSE, k, borderType=cv2.BORDER_CONSTANT,
                              borderValue=0).astype(bool) & blob
    closed = fill_holes(closed)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(closed.astype(np.uint8), connectivity=8)
    if n <= 1:
        return closed
    sizes = stats[1:, cv2.CC_STAT_AREA]
    keep = np.zeros(n, bool)
    keep[1:] = sizes >= min_part * sizes.max()
    return keep[labels]
