"""The residue check with the shot's evidence: is the character, or a part of it, still in the plate?

The truth the check stands for is how much of the character the plate still shows: the plate keeps
every pixel outside the removal mask, so what matters is character left *outside* the mask, and a
fill that kept the character inside it. The shot's other frames say both (:mod:`cleanplate.qa.shot`,
:mod:`cleanplate.qa.appearance`); :func:`shot_residue_score` sums, relative to the character's area
(the mask's salient area, or the shot's typical mask area when this frame's mask is (nearly) empty):

* kept: inside the mask, the original's saliency where the plate kept the original's pixels and
  they are not what the background model shows there (a plate that matches the background is not
  residue), relative to the original's saliency in the mask;
* missed: outside the mask, foreground pixels (the frame differs from the background model) that
  the saliency map finds character-like (>= ``missed_salient``): a hand, a whole rider the mask
  did not cover;
* attached: outside the mask, foreground in connected parts that touch the mask's border: a head
  or torso sticking out of the mask, which the saliency map often misses. Weighted by
  :data:`ATTACHED_WEIGHT`;
* appearance: outside the mask, foreground whose colour is the characters' rather than the
  scenery's in this shot (:class:`~cleanplate.qa.appearance.ShotColours`): a character part the
  saliency map does not see, wherever it is. Weighted by :data:`APPEARANCE_WEIGHT`.

Scenery that becomes salient once the character is gone is no evidence here (the frame-only
measure, :func:`cleanplate.qa.metrics.residue_score`, needs the plate's saliency for that and is
what a frame without registered neighbours gets), so the plate is never run through the saliency
model: the shot-aware check costs one saliency map less per plate.

All inputs at one scale: images hxwx3 uint8 RGB, masks hxw bool, saliency hxw float32 in [0, 1].
"""

from __future__ import annotations

import cv2
import numpy as np

from cleanplate.qa.appearance import ShotColours
from cleanplate.qa.shot import ShotEvidence, differs

ATTACHED_WEIGHT = 2.0
"""Weight of the attached part in the score (bench calibration, issue 12)."""
EDGE = 2
"""Pixels (at the check's scale) beside the mask left out of the parts outside it: the mask's own edge,
where a one-pixel misfit between mask and character or the background model is no residue."""
APPEARANCE_WEIGHT = 2.0
"""Weight of the appearance part in the score (bench calibration, issue 12)."""


def _attached(outside: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """HxW bool: the connected parts of ``outside`` (HxW bool) that touch the mask's border."""
    ring = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool) & ~mask
    n, labels = cv2.connectedComponents(outside.astype(np.uint8), connectivity=8)
    if n <= 1:
        return np.zeros_like(outside)
    touch = np.unique(labels[ring & outside])
    touch = touch[touch > 0]
    return np.isin(labels, touch)


def shot_residue_score(image: np.ndarray, plate: np.ndarray, mask: np.ndarray, sal_image: np.ndarray,
                       ev: ShotEvidence, colours: ShotColours | None = None, *, ref_area: float = 0.0,
                       kept_tolerance: int = 6, missed_salient: float = 0.3) -> tuple[float, dict[str, float]]:
    """Residue score in [0, 1] and its parts ``{"kept", "missed", "attached", "appearance"}`` (see the
    module docstring); the score is ``kept + missed + ATTACHED_WEIGHT * attached + APPEARANCE_WEIGHT *
    appearance``, at most 1.

    ``colours``: the shot's character and scenery colours (no appearance part without them).
    ``ref_area``: the character's typical area in the shot (pixels at this scale), used when the
    mask is (nearly) empty.
    """
    m = mask.astype(bool)
    near = cv2.dilate(m.astype(np.uint8), np.ones((2 * EDGE + 1,) * 2, np.uint8)).astype(bool) if m.any() else m
    outside = ~near & ev.foreground
    char_area = max(float(((sal_image >= 0.5) & m).sum()), m.sum() / 4.0, ref_area / 4.0, 1.0)
    kept = 0.0
    if m.any():
        char = m & (sal_image >= 0.5)
        same = np.abs(plate.astype(np.int16) - image.astype(np.int16)).max(axis=2) <= kept_tolerance
        not_bg = ev.valid & differs(plate, ev.background)
        kept = float((char & same & not_bg).sum()) / float(char.sum()) if char.any() else 0.0
    missed = float((outside & (sal_image >= missed_salient)).sum()) / char_area
    attached = float(_attached(outside, near).sum()) / char_area if m.any() else 0.0
    looks = float((outside & colours.character_like(image)).sum()) / char_area if colours is not None else 0.0
    parts = {"kept": round(kept, 4), "missed": round(missed, 4), "attached": round(attached, 4),
             "appearance": round(looks, 4)}
    return min(1.0, kept + missed + ATTACHED_WEIGHT * attached + APPEARANCE_WEIGHT * looks), parts


__all__ = ["APPEARANCE_WEIGHT", "ATTACHED_WEIGHT", "shot_residue_score"]
