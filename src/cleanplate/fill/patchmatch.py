"""PatchMatch inpainting (PyPI ``pypatchmatch``): copies real texture from the unmasked part of the frame.

By default each hole is solved in a crop around it (:mod:`cleanplate.fill.crop`), large crops at
a reduced scale; ``fill.crop: false`` solves the whole frame at once, as before.
"""

from __future__ import annotations

import numpy as np

from cleanplate.config import Config
from cleanplate.errors import BackendUnavailableError, FrameError
from cleanplate.fill.base import INPAINTERS
from cleanplate.fill.crop import CropSettings, fill_by_crops
from cleanplate.records import FillResult
from cleanplate.weights import WeightsUse


@INPAINTERS.register("patchmatch")
class PatchMatchInpainter:
    name = "patchmatch"
    # native code called through ctypes (the GIL is released) with a per-thread random engine
    # seeded at every solve: frames can be filled at once on threads, with the same plates
    frame_threads = True

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
        self.crop = CropSettings.from_config(config)

    def _solve(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """One PatchMatch solve: hxwx3 uint8 RGB and hxw bool hole -> hxwx3 uint8 RGB (seeded)."""
        # pypatchmatch treats non-zero mask pixels as the hole; RGB order does not matter to it.
        self._pm.set_random_seed(self.seed)  # same input, same plate
        res = self._pm.inpaint(np.ascontiguousarray(image), mask.astype(np.uint8), patch_size=self.patch_size)
        return np.asarray(res, dtype=np.uint8)

    def fill(self, images: list[np.ndarray], masks: list[np.ndarray]) -> list[FillResult]:
        out = []
        for image, mask in zip(images, masks, strict=True):
            if not mask.any():
                out.append(FillResult(image.copy()))
            elif self.crop is not None:
                out.append(FillResult(fill_by_crops(image, mask, self._solve, self.crop)))
            else:
                if mask.all():
                    raise FrameError("the mask covers the whole frame: no pixels to fill from")
                out.append(FillResult(self._solve(image, mask)))
        return out

    def weights_used(self) -> list[WeightsUse]:
        return []
