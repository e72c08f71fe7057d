"""OpenCV's classic inpainters (Telea's fast marching, Navier-Stokes): fast, blurry on big holes.

Each hole is solved in a crop around it (:mod:`cleanplate.fill.crop`) unless ``fill.crop`` is off.
"""

from __future__ import annotations

import cv2
import numpy as np

from cleanplate.config import Config
from cleanplate.fill.base import INPAINTERS
from cleanplate.fill.crop import CropSettings, fill_by_crops
from cleanplate.records import FillResult
from cleanplate.weights import WeightsUse


class _OpenCVInpainter:
    flag: int = cv2.INPAINT_TELEA
    name = "opencv"
    frame_threads = True  # cv2.inpaint releases the GIL and keeps no state between calls

    def __init__(self, config: Config, device: str) -> None:
        self.radius = config.fill.radius
        self.crop = CropSettings.from_config(config)

    def _solve(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """One OpenCV inpaint: hxwx3 uint8 RGB and hxw bool hole -> hxwx3 uint8 RGB."""
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        res = cv2.inpaint(bgr, mask.astype(np.uint8) * 255, self.radius, self.flag)
        return cv2.cvtColor(res, cv2.COLOR_BGR2RGB)

    def fill(self, images: list[np.ndarray], masks: list[np.ndarray]) -> list[FillResult]:
        out = []
        for image, mask in zip(images, masks, strict=True):
            if not mask.any():
                out.append(FillResult(image.copy()))
            elif self.crop is not None:
                out.append(FillResult(fill_by_crops(image, mask, self._solve, self.crop)))
            else:
                out.append(FillResult(self._solve(image, mask)))
        return out

    def weights_used(self) -> list[WeightsUse]:
        return []


@INPAINTERS.register("opencv-telea")
class TeleaInpainter(_OpenCVInpainter):
    flag = cv2.INPAINT_TELEA


@INPAINTERS.register("opencv-ns")
class NavierStokesInpainter(_OpenCVInpainter):
    flag = cv2.INPAINT_NS
