"""Dense optical flow (OpenCV DIS) between frames, and carrying masks along it.

A flow field is HxWx2 float32: ``flow[y, x] = (dx, dy)``, so pixel (x, y) of the first frame sits
at (x + dx, y + dy) in the second. Flow is computed on grayscale copies downscaled so their long
side is at most ``max_side`` (DIS is coarse-to-fine anyway; this bounds its cost on 2K frames)
and returned at the size of the frames given.
"""

from __future__ import annotations

import cv2
import numpy as np

_PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
            "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}


def to_gray(image: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 RGB (or HxW uint8) -> HxW uint8 gray."""
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


class FlowEstimator:
    """DIS optical flow between two frames of one size.

    ``preset``: ultrafast, fast or medium (OpenCV's DIS presets); ``max_side``: frames are
    downscaled to this long side before the flow is computed (0: never).
    """

    def __init__(self, preset: str = "fast", max_side: int = 512) -> None:
        if preset not in _PRESETS:
            raise ValueError(f"unknown DIS preset '{preset}' (available: {', '.join(_PRESETS)})")
        self._dis = cv2.DISOpticalFlow_create(_PRESETS[preset])
        self.max_side = max_side

    def flow(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Flow from ``a`` to ``b`` (HxWx3 uint8 RGB or HxW uint8 gray), HxWx2 float32 in ``a``'s pixels."""
        ga, gb = to_gray(a), to_gray(b)
        if ga.shape != gb.shape:
            raise ValueError(f"flow between frames of different sizes {ga.shape} and {gb.shape}")
        h, w = ga.shape
        scale = 1.0 if self.max_side <= 0 else min(1.0, self.max_side / max(h, w))
        if scale < 1.0:
            size = (max(8, round(w * scale)), max(8, round(h * scale)))
            ga = cv2.resize(ga, size, interpolation=cv2.INTER_AREA)
            gb = cv2.resize(gb, size, interpolation=cv2.INTER_AREA)
        f = self._dis.calc(np.ascontiguousarray(ga), np.ascontiguousarray(gb), None)
        if scale < 1.0:
            f = cv2.resize(f, (w, h), interpolation=cv2.INTER_LINEAR)
            f[..., 0] *= w / ga.shape[1]
            f[..., 1] *= h / ga.shape[0]
        return f.astype(np.float32)


def _grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    h, w = shape
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return xs, ys


def pull_mask(mask: np.ndarray, flow_back: np.ndarray) -> np.ndarray:
    """Carry an HxW bool ``mask`` of frame A into frame B with ``flow_back`` (B -> A flow, HxWx2).

    Each pixel of B looks up where it came from in A (backward warping: no holes). Returns HxW bool.
    """
    h, w = mask.shape
    if flow_back.shape[:2] != (h, w):
        raise ValueError(f"flow {flow_back.shape[:2]} does not match mask {mask.shape}")
    xs, ys = _grid((h, w))
    mx = xs + flow_back[..., 0]
    my = ys + flow_back[..., 1]
    out = cv2.remap(mask.astype(np.float32), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out >= 0.5


def homography_flow(matrix: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The HxWx2 float32 flow a 3x3 homography (frame A (x, y) -> frame B (x, y)) induces on A's pixels."""
    xs, ys = _grid(shape)
    pts = np.stack([xs, ys], axis=-1).reshape(-1, 1, 2).astype(np.float64)
    moved = cv2.perspectiveTransform(pts, matrix).reshape(shape[0], shape[1], 2)
    return (moved - np.stack([xs, ys], axis=-1)).astype(np.float32)
