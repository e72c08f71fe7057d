"""The background model of one shot: the frames warped onto each other along the shot model's
registration (:class:`~cleanplate.motion.shot_model.ShotModel`; nothing is registered here), and
per frame the robust median of its registered neighbours, which shows the set without whatever moves.

A pixel is foreground when it disagrees *consistently* with the shot: it differs from the median
of the registered neighbours and from most of them one by one (one flickering neighbour does not
make foreground). Near scenery with parallax also disagrees with a homography; the track level
(:mod:`.tracks`) guards against it, this module only measures.

Everything here runs at a work scale (long side at most ``work_side``); maps are returned at that
scale with :attr:`ShotBackground.scale` to map them back.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from cleanplate.motion.shot_model import ShotModel

_OFFSETS = (3, 7, 12, 18, 26, 36)  # neighbours each side used for the median (near and far in time)
REACH = max(_OFFSETS)
"""The farthest neighbour (frames each side) a frame's background model looks at."""


@dataclass
class ShotBackground:
    """Registration of a shot and its background model, at work scale.

    ``to_ref[i]``: 3x3 float64 mapping frame i's work-scale pixels (x, y) into the coordinates of
    the first frame of its registered run; ``run[i]``: the run id (consecutive frames whose
    registration succeeded share one; a failed registration starts a new run).
    ``foreground[i]``: hxw bool, consistent disagreement with the registered neighbours;
    ``faint[i]``: hxw bool, the same at half the threshold and without the opening that clears
    specks (thin parts: tyres, a racket's frame; only meaningful next to ``foreground``);
    ``difference[i]``: hxw float32, colour distance to the median (0-255 levels);
    ``darker[i]``: hxw bool, darker than the median with the same chromaticity (a cast shadow);
    ``ratio[i]``: hxw float32, luminance of the frame over that of the median (1: as the shot shows it);
    ``covered[i]``: hxw uint8, how many neighbours saw each pixel;
    ``median[i]``: hxwx3 uint8 RGB, the median of the registered neighbours (the set as the shot
    shows it; the frame itself where no neighbour registers);
    ``hidden[i]``: hxw bool, pixels the model cannot judge: fewer than two neighbours see them, or
    the per-frame detections cover them in so many neighbours (more than ``1 - agree`` of those that
    see them) that a character standing there could never disagree consistently (a character that
    barely moves in the shot: the median shows it, not the set).
    """

    scale: float
    to_ref: list[np.ndarray]
    run: list[int]
    foreground: list[np.ndarray]
    faint: list[np.ndarray]
    difference: list[np.ndarray]
    darker: list[np.ndarray]
    ratio: list[np.ndarray]
    covered: list[np.ndarray]
    hidden: list[np.ndarray]
    reasons: list[str]
    median: list[np.ndarray] | None = None

    def matrix(self, src: int, dst: int) -> np.ndarray | None:
        """Work-scale homography from frame ``src`` to frame ``dst``, or None across a failed registration."""
        if self.run[src] != self.run[dst]:
            return None
        m = np.linalg.inv(self.to_ref[dst]) @ self.to_ref[src]
        return m / m[2, 2]

    def neighbours(self, t: int) -> Iterator[tuple[int, np.ndarray]]:
        """(j, homography j -> t) of frame ``t``'s registered neighbours the model compares it with
        (``_OFFSETS`` frames away each side, near first)."""
        n = len(self.to_ref)
        for off in _OFFSETS:
            for j in (t - off, t + off):
                if 0 <= j < n and (m := self.matrix(j, t)) is not None:
                    yield j, m


def work_scale(shape: tuple[int, ...], work_side: int) -> float:
    """The factor (<= 1) that brings a frame of ``shape`` (H, W, ...) to long side ``work_side``."""
    return min(1.0, work_side / max(shape[0], shape[1]))


def resize_to(image: np.ndarray, scale: float) -> np.ndarray:
    """``image`` (HxW or HxWxC) scaled by ``scale`` with area interpolation (bool masks: nearest)."""
    if scale == 1.0:
        return image
    h, w = image.shape[:2]
    size = (max(8, round(w * scale)), max(8, round(h * scale)))
    if image.dtype == bool:
        return cv2.resize(image.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def build_background(images: list[np.ndarray], detected: list[np.ndarray], work_side: int = 512,
                     threshold: float = 28.0, agree: float = 0.6, model: ShotModel | None = None) -> ShotBackground:
    """Model the background of one shot along its shot model's registration.

    ``images``: HxWx3 uint8 RGB frames in order; ``detected``: HxW bool, what the per-frame
    detector found; ``model``: the shot model of these frames (same order; built here when not
    given). ``threshold``: colour distance (0-255 levels) above which a pixel disagrees;
    ``agree``: share of the neighbours it must disagree with.
    """
    n = len(images)
    if model is None:
        model = ShotModel.build(images, masks=detected)
    if len(model) != n:
        raise ValueError(f"shot model of {len(model)} frames for {n} images")
    scale = work_scale(images[0].shape, work_side)
    small = [resize_to(im, scale) for im in images]
    small_det = [resize_to(d.astype(bool), scale) for d in detected]
    h0, w0 = small[0].shape[:2]
    # each run keeps its own reference: frame i onto the first frame of its run, at work scale
    firsts = {r: model.run.index(r) for r in set(model.run)}
    to_ref = [model.scaled(i, firsts[model.run[i]], (w0, h0), coarse=True) for i in range(n)]
    run = list(model.run)
    reasons = [(model.reasons[i] or "not registered") if model.kinds[i] == "start" and i > 0 else ""
               for i in range(n)]
    bg = ShotBackground(scale, to_ref, run, [], [], [], [], [], [], [], reasons, [])
    assert bg.median is not None
    h, w = small[0].shape[:2]
    for t in range(n):
        warped, valid, occupied = [], [], []
        for j, m in bg.neighbours(t):
            warped.append(cv2.warpPerspective(small[j], m, (w, h), flags=cv2.INTER_LINEAR,
                                              borderMode=cv2.BORDER_CONSTANT))
            inside = cv2.warpPerspective(np.full((h, w), 255, np.uint8), m, (w, h), flags=cv2.INTER_NEAREST,
                                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            valid.append(cv2.erode(inside, np.ones((5, 5), np.uint8)) > 0)
            occupied.append(cv2.warpPerspective(small_det[j].astype(np.uint8), m, (w, h), flags=cv2.INTER_NEAREST,
                                                borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0)
        cur = small[t].astype(np.float32)
        if not warped:
            zeros = np.zeros((h, w), bool)
            bg.foreground.append(zeros)
            bg.faint.append(zeros)
            bg.difference.append(np.zeros((h, w), np.float32))
            bg.darker.append(zeros)
            bg.ratio.append(np.ones((h, w), np.float32))
            bg.covered.append(np.zeros((h, w), np.uint8))
            bg.hidden.append(np.ones((h, w), bool))
            bg.median.append(small[t])
            continue
        stack = np.stack(warped).astype(np.float32)
        vmask = np.stack(valid)
        stack = np.where(vmask[..., None], stack, cur[None])  # unseen pixels agree with the frame itself
        med = np.median(stack, axis=0)
        bg.median.append(np.clip(np.rint(med), 0, 255).astype(np.uint8))
        diff = np.linalg.norm(cur - med, axis=-1)
        dist = np.linalg.norm(stack - cur[None], axis=-1)
        covered = vmask.sum(axis=0)
        share = (dist > threshold).sum(axis=0) / np.maximum(covered, 1)
        fg = (diff > threshold) & (share >= agree) & (covered >= 2)
        faint = (diff > 0.5 * threshold) & ((dist > 0.5 * threshold).sum(axis=0) >= agree * covered) & (covered >= 2)
        fg = cv2.morphologyEx(fg.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)).astype(bool)
        lum_c, lum_m = cur.mean(axis=-1), med.mean(axis=-1)
        ratio = (lum_c + 1.0) / (lum_m + 1.0)
        chroma = np.abs(cur / (lum_c[..., None] + 1.0) - med / (lum_m[..., None] + 1.0)).max(axis=-1)
        darker = (ratio < 0.85) & (ratio > 0.25) & (chroma < 0.25) & (covered >= 2) & (share >= agree * 0.75)
        bg.foreground.append(fg)
        bg.faint.append(faint)
        bg.difference.append(diff.astype(np.float32))
        bg.darker.append(darker)
        bg.ratio.append(ratio.astype(np.float32))
        bg.covered.append(covered.astype(np.uint8))
        occ = (np.stack(occupied) & vmask).sum(axis=0)
        # where most neighbours do not see a pixel (the frame's edge in a pan, the last frames of a
        # shot, whose neighbours are all on one side), the median is mostly the frame's own pixels:
        # a character there could never be foreground, so the model cannot judge it
        few = (2 * covered < len(warped)) & (covered < 3)
        bg.hidden.append((covered < 2) | (occ > 0.5 * covered) | few)
    return bg
