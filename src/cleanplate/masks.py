"""Mask operations: combine, dilate, feather, composite, coverage.

Masks are HxW ``bool`` arrays (True = remove / fill) unless stated otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np


def combine(masks: Iterable[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """Union of HxW bool masks; an empty iterable gives an all-False mask of ``shape``."""
    out = np.zeros(shape, dtype=bool)
    for m in masks:
        out |= m.astype(bool)
    return out


def ellipse_kernel(radius: int) -> np.ndarray:
    """Elliptical structuring element of radius ``radius`` (size 2r+1)."""
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


REFERENCE_LINES = 1080
"""Relative dilation is expressed in pixels of a frame whose shorter side is this long."""


def dilation_radius(dilate: int, relative: bool, shape: tuple[int, ...]) -> int:
    """The dilation radius in px for a frame of ``shape`` (H, W, ...).

    ``relative``: ``dilate`` is given for a 1080-line frame and scaled by the frame's shorter
    side (20 px at 1920x1080 is 8 px at 1024x436); otherwise it is used as is.
    """
    if not relative:
        return int(dilate)
    return int(round(dilate * min(shape[0], shape[1]) / REFERENCE_LINES))


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Grow an HxW bool mask by ``radius`` px with one pass of an elliptical kernel.

    Every pixel within Euclidean distance ``radius`` of the mask is added (a disc, not the
    diamond or square an iterated 3x3 box gives).
    """
    if radius <= 0 or not mask.any():
        return mask.astype(bool).copy()
    grown = cv2.dilate(mask.astype(np.uint8), ellipse_kernel(radius), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return grown.astype(bool)


def shift(mask: np.ndarray, d: tuple[float, float]) -> np.ndarray:
    """An HxW bool mask moved by ``d`` = (dx, dy) px (nearest pixel; what leaves the frame is lost)."""
    m = np.float32([[1, 0, d[0]], [0, 1, d[1]]])
    h, w = mask.shape
    return cv2.warpAffine(mask.astype(np.uint8), m, (w, h), flags=cv2.INTER_NEAREST) > 0


def feather_alpha(mask: np.ndarray, feather: int) -> np.ndarray:
    """HxW float32 alpha in [0, 1] that is 0 outside the mask and ramps to 1 over ``feather`` px inside it.

    With ``feather == 0`` it is the mask itself. Pixels outside the mask always get 0, so
    blending with it never alters unmasked pixels.
    """
    m = mask.astype(bool)
    if feather <= 0:
        return m.astype(np.float32)
    dist = cv2.distanceTransform(m.astype(np.uint8), cv2.DIST_L2, 5)
    alpha = np.clip(dist / float(feather), 0.0, 1.0).astype(np.float32)
    alpha[~m] = 0.0
    return alpha


def composite(image: np.ndarray, filled: np.ndarray, mask: np.ndarray, feather: int = 0) -> np.ndarray:
    """Paste ``filled`` into ``image`` only where ``mask`` is set (both HxWx3 uint8 RGB).

    Unmasked pixels of the result are ``image``'s bytes exactly. With ``feather > 0`` the fill
    is blended with the original over a band of ``feather`` px inside the mask border (the
    dilation band, which holds scenery), hiding the seam.
    """
    if image.shape != filled.shape:
        raise ValueError(f"fill shape {filled.shape} != image shape {image.shape}")
    m = mask.astype(bool)
    out = image.copy()
    if feather <= 0:
        out[m] = filled[m]
        return out
    alpha = feather_alpha(m, feather)[..., None]
    blended = np.rint(alpha * filled.astype(np.float32) + (1.0 - alpha) * image.astype(np.float32))
    out[m] = np.clip(blended, 0, 255).astype(np.uint8)[m]
    return out


def coverage(mask: np.ndarray) -> float:
    """Fraction of the frame the mask covers, in [0, 1]."""
    return float(mask.mean()) if mask.size else 0.0


def components(mask: np.ndarray, min_size: int = 0) -> list[np.ndarray]:
    """Connected components (8-connectivity) of an HxW bool mask, largest first, smaller than ``min_size`` dropped."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    order = sorted(range(1, n), key=lambda i: -stats[i, cv2.CC_STAT_AREA])
    return [labels == i for i in order if stats[i, cv2.CC_STAT_AREA] >= max(min_size, 1)]


def remove_small_regions(mask: np.ndarray, min_area: int) -> np.ndarray:
    """Fill holes and remove islands smaller than ``min_area`` px (SAM's postprocessing, with OpenCV)."""
    if min_area <= 0:
        return mask.astype(bool)
    m = mask.astype(bool)
    # islands
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m.astype(np.uint8), connectivity=8)
    keep = np.zeros(n, dtype=bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_area
    m = keep[labels]
    # holes: small components of the background
    inv = (~m).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(inv, connectivity=8)
    small = np.zeros(n, dtype=bool)
    small[1:] = stats[1:, cv2.CC_STAT_AREA] < min_area
    return m | small[labels]


def to_png(mask: np.ndarray) -> np.ndarray:
    """HxW bool mask -> HxW uint8 (0/255) for writing."""
    return mask.astype(np.uint8) * 255


def from_png(arr: np.ndarray) -> np.ndarray:
    """Mask image (HxW or HxWxC uint8/uint16) -> HxW bool (non-zero is set; alpha used when present)."""
    if arr.ndim == 3:
        arr = arr[..., 3] if arr.shape[2] == 4 else arr.max(axis=2)
    return arr > (arr.max() // 2 if arr.dtype != bool and arr.max() > 1 else 0)


def cutout(image: np.ndarray, mask: np.ndarray, mode: str = "transparent", pad: int = 8) -> np.ndarray:
    """RGBA cut-out (hxwx4 uint8) of the masked object, cropped to its bounding box plus ``pad``.

    ``mode``: ``transparent`` (alpha = mask), ``black`` / ``white`` (background painted, opaque),
    ``blur`` (background blurred, opaque), ``context`` (the frame as it is, opaque).
    """
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    if len(xs) == 0:
        return np.zeros((1, 1, 4), np.uint8)
    x0, x1 = max(int(xs.min()) - pad, 0), min(int(xs.max()) + pad + 1, w)
    y0, y1 = max(int(ys.min()) - pad, 0), min(int(ys.max()) + pad + 1, h)
    rgb = image[y0:y1, x0:x1].copy()
    m = mask[y0:y1, x0:x1].astype(bool)
    alpha = np.full(m.shape, 255, np.uint8)
    if mode == "transparent":
        alpha = to_png(m)
        rgb[~m] = 0
    elif mode in ("black", "white"):
        rgb[~m] = 0 if mode == "black" else 255
    elif mode == "blur":
        k = max(3, (max(m.shape) // 20) | 1)
        rgb[~m] = cv2.GaussianBlur(rgb, (k, k), 0)[~m]
    elif mode != "context":
        raise ValueError(f"unknown context mode '{mode}'")
    return np.dstack([rgb, alpha])
