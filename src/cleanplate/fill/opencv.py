"""OpenCV's classic inpainters (Telea's fast marching, Navier-Stokes): fast, blurry on big holes."""

from __future__ import annotations

import cv2
import numpy as np

from cleanplate.config import Config
from cleanplate.fill.base import INPAINTERS
from cleanplate.records import FillResult
from cleanplate.weights import WeightsUse


class _OpenCVInpainter:
    flag: int = cv2.INPAINT_TELEA
    name = "opencv"

    def __init__(self, config: Config, device: str) -> None:
        self.radius = config.fill.radius

    def fill(self, images: list[np.ndarray], masks: list[np.ndarray]) -> list[FillResult]:
        out = []
        for image, mask in zip(images, masks, strict=True):
            if not mask.any():
                out.append(FillResult(image.copy()))
                continue
            bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
            res = cv2.inpaint(bgr, mask.astype(np.uint8) * 255, self.radius, self.flag)
            out.append(FillResult(cv2.cvtColor(res, cv2.COLOR_BGR2RGB)))
        return out

    def weights_used(self) -> list[WeightsUse]:
        return []


@INPAINTERS.register("opencv-telea")
class TeleaInpainter(_OpenCVInpainter):
    flag = cv2.INPAINT_TELEA


@INPAINTERS.register("opencv-ns")
class NavierStokesInpainter(_OpenCVInpainter):
    flag = cv2.INPAINT_NS
