"""PatchMatch inpainting (PyPI ``pypatchmatch``): copies real texture from the unmasked part of the frame."""

from __future__ import annotations

import numpy as np

from cleanplate.config import Config
from cleanplate.errors import BackendUnavailableError
from cleanplate.fill.base import INPAINTERS
from cleanplate.records import FillResult
from cleanplate.weights import WeightsUse


@INPAINTERS.register("patchmatch")
class PatchMatchInpainter:
    name = "patchmatch"

    def __init__(self, config: Config, device: str) -> None:
        try:
            from patchmatch import patch_match
        except (ImportError, OSError) as exc:
            raise BackendUnavailableError(
                f"patchmatch is unavailable ({exc}): pip install pypatchmatch"
            ) from None
        self._pm = patch_match
        self.patch_size = config.fill.patch_size
        self.seed = config.fill.seed

    def fill(self, images: list[np.ndarray], masks: list[np.ndarray]) -> list[FillResult]:
        out = []
        for image, mask in zip(images, masks, strict=True):
            if not mask.any():
                out.append(FillResult(image.copy()))
                continue
            # pypatchmatch treats non-zero mask pixels as the hole; RGB order does not matter to it.
            self._pm.set_random_seed(self.seed)  # same frame, same plate
            res = self._pm.inpaint(np.ascontiguousarray(image), mask.astype(np.uint8), patch_size=self.patch_size)
            out.append(FillResult(np.asarray(res, dtype=np.uint8)))
        return out

    def weights_used(self) -> list[WeightsUse]:
        return []
