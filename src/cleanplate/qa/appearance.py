"""The character's own colours in a shot, against the scenery's: is this pixel more character than scenery?

A shot's frames show its characters many times: inside each frame's removal mask, where the segment
stage's saliency map is high (>= :data:`CHARACTER_SALIENCY`), are the characters' pixels; away from
the masks (outside them grown by :data:`SCENERY_MARGIN` px) is scenery. :class:`ShotColours` holds a
colour histogram of each (RGB quantised to :data:`BINS` levels per channel, 512 cells) and gives, for
any image, the per-pixel ratio of the two likelihoods. A pixel whose colour is at least
:data:`LIKENESS` times more frequent on the characters than on the scenery is *character-like*.

The residue check uses it where the frame differs from the shot's background model outside the mask
(:mod:`cleanplate.qa.residue`): a moving thing with the character's colours is the character, or a
part of it, that the mask missed; a moving thing with the scenery's colours (parallax of a near
beam, registration error at the start of a shot) is not.

Images are hxwx3 uint8 RGB, masks hxw bool, saliency maps hxw float32 in [0, 1], all at one scale.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

BINS = 8
"""Levels per RGB channel of the colour histograms."""
CHARACTER_SALIENCY = 0.5
"""Saliency inside a removal mask at which a pixel is taken as the character's."""
SCENERY_MARGIN = 3
"""Pixels around a removal mask left out of the scenery histogram (the mask's own edge)."""
LIKENESS = 2.0
"""Likelihood ratio (character over scenery) at which a colour is character-like."""


def _cells(image: np.ndarray) -> np.ndarray:
    """hxw int32: the histogram cell of each pixel of an hxwx3 uint8 image."""
    x = (image // (256 // BINS)).astype(np.int32)
    return (x[..., 0] * BINS + x[..., 1]) * BINS + x[..., 2]


class ShotColours:
    """Colour histograms of a shot's characters and scenery; see the module docstring."""

    def __init__(self, images: Sequence[np.ndarray], masks: Sequence[np.ndarray],
                 saliency: Sequence[np.ndarray]) -> None:
        n = BINS ** 3
        char, scen = np.zeros(n), np.zeros(n)
        kernel = np.ones((2 * SCENERY_MARGIN + 1,) * 2, np.uint8)
        for image, mask, sal in zip(images, masks, saliency, strict=True):
            m = mask.astype(bool)
            cells = _cells(image)
            char += np.bincount(cells[m & (sal >= CHARACTER_SALIENCY)], minlength=n)
            far = ~cv2.dilate(m.astype(np.uint8), kernel).astype(bool)
            scen += np.bincount(cells[far], minlength=n)
        self.character_pixels = int(char.sum())
        # add-one smoothing: an unseen colour is neither side's
        self.ratio = ((char + 1) / (char.sum() + n)) / ((scen + 1) / (scen.sum() + n))

    def likeness(self, image: np.ndarray) -> np.ndarray:
        """hxw float64: character-over-scenery likelihood ratio of each pixel's colour."""
        return self.ratio[_cells(image)]

    def character_like(self, image: np.ndarray, level: float = LIKENESS) -> np.ndarray:
        """hxw bool: pixels whose colour is at least ``level`` times likelier on the characters.
        All False when the shot showed no character pixels (nothing to compare with)."""
        if self.character_pixels == 0:
            return np.zeros(image.shape[:2], bool)
        return self.likeness(image) >= level


__all__ = ["BINS", "CHARACTER_SALIENCY", "LIKENESS", "SCENERY_MARGIN", "ShotColours"]
