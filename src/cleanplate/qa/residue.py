"""The residue check with the shot's evidence: is the character, or a part of it, still in the plate?

:func:`shot_residue_score` adds to the frame-only measure of :func:`cleanplate.qa.metrics.residue_score`
what the registered neighbours show (:mod:`cleanplate.qa.shot`):

* kept: inside the mask, character-likeness the plate kept from the original, where the plate is
  not what the background model shows there (a plate that matches the background is not residue);
* left over: outside the mask, pixels faintly salient in the original and salient in the plate,
  where the frame is foreground (differs from the background model), so scenery that becomes
  salient once the character is gone (a good temporal plate) does not count;
* missed: outside the mask, foreground pixels the saliency map finds character-like
  (>= ``missed_salient``): a hand, an apple, a whole rider the mask did not cover. Counted as an
  area relative to the character's area (the mask's salient area, or the shot's typical mask
  area when this frame's mask is empty);
* attached: outside the mask, foreground pixels (frame differs from the background model) in
  connected parts that touch the mask's border: a head or torso sticking out of the mask, which
  the saliency map often misses when another character dominates it. Weighted by
  :data:`ATTACHED_WEIGHT`, relative to the character's area.

All inputs at one scale: images hxwx3 uint8 RGB, masks hxw bool, saliency hxw float32 in [0, 1].
"""

from __future__ import annotations

import cv2
import numpy as np

from cleanplate.qa.shot import ShotEvidence, differs

ATTACHED_WEIGHT = 2.0
"""Weight of the attached part in the score, picked with the threshold from the bench's calibration curve."""


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
                       sal_plate: np.ndarray | None, ev: ShotEvidence, *, ref_area: float = 0.0,
                       kept_tolerance: int = 6, faint: float = 0.05, salient: float = 0.15,
                       missed_salient: float = 0.3) -> tuple[float, dict[str, float]]:
    """Residue score in [0, 1] and its parts ``{"kept", "left_over", "missed", "attached"}`` (see the module
    docstring); the score is ``kept + left_over + missed + ATTACHED_WEIGHT * attached``, at most 1.

    ``ref_area``: the character's typical area in the shot (pixels at this scale), used when the
    mask is (nearly) empty. ``sal_plate`` may be None when the mask is empty (nothing was filled).
    """
    m = mask.astype(bool)
    fg = ev.foreground
    unexplained = ~ev.valid | fg  # where the background model does not account for the frame
    char_area = max(float(((sal_image >= 0.5) & m).sum()), m.sum() / 4.0, ref_area / 4.0, 1.0)
    kept = left = 0.0
    if m.any() and sal_plate is not None:
        mass = float(sal_image[m].sum())
        same = np.abs(plate.astype(np.int16) - image.astype(np.int16)).max(axis=2) <= kept_tolerance
        not_bg = ~ev.valid | differs(plate, ev.background)
        kept = float((np.minimum(sal_image, sal_plate) * (same & not_bg))[m].sum()) / mass if mass > 0 else 0.0
        left = float(((~m) & (sal_image >= faint) & (sal_plate >= salient) & unexplained).sum()) / char_area
    missed = float(((~m) & fg & (sal_image >= missed_salient)).sum()) / char_area
    attached = float(_attached(fg & ~m, m).sum()) / char_area if m.any() else 0.0
    parts = {"kept": round(kept, 4), "left_over": round(left, 4), "missed": round(missed, 4),
             "attached": round(attached, 4)}
    return min(1.0, kept + left + missed + ATTACHED_WEIGHT * attached), parts


__all__ = ["ATTACHED_WEIGHT", "shot_residue_score"]
