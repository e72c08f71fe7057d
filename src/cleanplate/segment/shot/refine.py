"""Tight masks by appearance: a track's mask refined by colour and edges over its border band.

The per-frame detector's blob of a large or still character follows the character only roughly:
u2netp sees the frame at 320x320 and joins whatever salient thing touches the character (the
rocks he stands beside, a stack of crates) into one blob. Motion alone cannot cut such a blob:
a large character moves slowly, and where the blob stays in most of the shot's frames the
background model cannot see the set behind it (:attr:`ShotBackground.hidden`).

:func:`refine_blob` uses appearance as well. In one frame it seeds OpenCV's GrabCut:

* sure foreground: the track's own evidence inside the blob, what moves against the set or
  changes against the registered neighbours' median (a breathing chest, a turning head, a
  gesturing arm), closed over the gaps between those parts; without such evidence (a still
  character kept on other grounds), the detector's confident core (high saliency, eroded);
* sure background: the far outside of the blob (beyond its border band), and the pixels inside
  the blob that the background model can judge and that agree with it (the set, seen there);
* probable foreground: the blob near the sure foreground; probable background: the rest of the
  blob (what no evidence ties to the character) and the band just outside it; where the seed is
  motion, what lies farther than ``reach`` from it and never moves in the whole shot is sure
  background (a moving character's limbs stay near its moving parts or move themselves at some
  time; a rock or a crate beside it is what the detector joined).

GrabCut then moves the border by colour and edges: scenery whose colours belong to the set
around it leaves, a still arm coloured like the moving body stays. The result keeps only the
parts connected to the sure foreground, with their holes filled. A refinement that keeps too
little of the blob (a misled colour model) is not used.

A refinement must be steady over the track (:func:`removal_votes`, :func:`unsteady_removal`):
scenery beside a character stands still in the set, so each frame's refinement removes it at the
same place along the registration, while a colour model misled in one frame (the Sintel girl's
still shoulder taken for the wall) removes what the neighbouring frames keep. What a frame removes
and most of its neighbours whose blob holds it keep is given back; what most of them remove and a
frame kept (:func:`agreed_scenery`) is sure background when that frame is refined again.

:func:`scenery_parts` splits off what a character's mask holds apart from the character: a
component that does not touch the character's evidence, shows no motion or change of its own
and touches no other character (a distant wall masked in one frame) is scenery.

Everything runs at the shot's work scale, on a crop around the blob.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from cleanplate import masks as M
from cleanplate.segment.shot.core import fill_holes, moving_core

if TYPE_CHECKING:
    from cleanplate.segment.shot.background import ShotBackground


@dataclass(frozen=True)
class RefineParams:
    """Settings of :func:`refine_blob` (see ``segment.shot.refine_*`` in the config)."""

    band: float = 0.15  # border band, as a share of the side of a square of the blob's area
    agree: float = 14.0  # a judged pixel within this colour distance of the median agrees with the set
    core_level: float = 0.9  # saliency of the confident core (when the track shows no motion or change)
    min_keep: float = 0.4  # a refinement keeping less of the blob is not used
    iterations: int = 4  # GrabCut iterations
    min_evidence: float = 0.05  # share of the blob that must move or change before it seeds the foreground
    still: bool = False  # refine a blob where nothing moves, seeded by the confident core
    min_part: float = 0.15  # moving parts smaller than this share of the largest are no seed
    reach: float = 0.25  # beyond this share of the blob's side from its motion, a moving blob is the set
    grow: int = 2  # px the refined mask may reach past the blob (the detector's edge is soft)


@dataclass
class Refined:
    """What :func:`refine_blob` did: the refined ``mask`` (hxw bool), the blob's area and the kept
    area (px), the seed used (``motion`` or ``saliency``) and, where the refinement was not used,
    ``why``."""

    mask: np.ndarray
    blob_area: int
    kept_area: int
    seed: str
    why: str = ""
    restored: int = 0  # px of its removal given back by :func:`unsteady_removal` (the track's other frames keep them)
    agreed: int = 0  # px of the blob made sure background as the track's other frames agree (:func:`agreed_scenery`)

    @property
    def used(self) -> bool:
        return not self.why


def _crop_box(mask: np.ndarray, pad: int) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    return (max(0, int(ys.min()) - pad), min(h, int(ys.max()) + 1 + pad),
            max(0, int(xs.min()) - pad), min(w, int(xs.max()) + 1 + pad))


def refine_blob(image: np.ndarray, blob: np.ndarray, evidence: np.ndarray, agrees: np.ndarray,
                saliency: np.ndarray | None, params: RefineParams = RefineParams(),
                ever_moved: np.ndarray | None = None, scenery: np.ndarray | None = None) -> Refined:
    """The character in ``blob`` (hxw bool, one track's mask in one frame), refined by colour.

    ``image``: hxwx3 uint8 RGB frame; ``evidence``: hxw bool, pixels that move against the set or
    change against the registered neighbours; ``agrees``: hxw bool, pixels the background model
    judges and finds agreeing with the set; ``saliency``: hxw float32 in [0, 1] or None (the
    detector's map at the same scale); ``ever_moved``: hxw bool or None, pixels where the track moved
    in some frame of the shot (carried along the registration into this frame; None: everywhere),
    so only what never moves is made sure background for lying far from the motion; ``scenery``: hxw
    bool or None, what the track's neighbouring frames agree is the set (:func:`removal_votes`), sure
    background where it neither moves nor changes here. See the module docstring.
    """
    area = int(blob.sum())
    if area < 64:
        return Refined(blob, area, area, "none", "blob too small")
    side = float(np.sqrt(area))
    band = max(3, int(round(params.band * side)))
    y0, y1, x0, x1 = _crop_box(blob, 2 * band + 2)
    b = blob[y0:y1, x0:x1]
    ev = evidence[y0:y1, x0:x1] & M.dilate(b, 1)
    ag = agrees[y0:y1, x0:x1]
    seed = "motion"
    if ev.sum() >= params.min_evidence * area:
        # the moving parts, closed over the gaps between them (a body is one piece), without the
        # specks and slivers a still edge leaves (components under min_part of the largest)
        core = moving_core(b, ev, min_part=params.min_part)
    elif not params.still:
        return Refined(blob, area, area, "none", "nothing in the blob moves: a still character keeps its blob")
    elif saliency is not None:
        seed = "saliency"
        sal = saliency[y0:y1, x0:x1]
        r = max(1, int(round(0.04 * side)))
        core = cv2.erode((b & (sal >= params.core_level)).astype(np.uint8), M.ellipse_kernel(r)).astype(bool)
    else:
        return Refined(blob, area, area, "none", "no evidence to seed the character")
    core &= ~ag | ev  # what the set shows is not the character, unless it moves there
    if core.sum() < params.min_evidence * area:
        return Refined(blob, area, area, seed, "too little evidence to seed the character")
    near = M.dilate(core, max(2, band // 3)) & b
    gc = np.full(b.shape, cv2.GC_BGD, np.uint8)  # the far outside
    gc[M.dilate(b, band)] = cv2.GC_PR_BGD  # the band just outside
    gc[b] = cv2.GC_PR_BGD  # in the blob, tied to no evidence
    gc[near] = cv2.GC_PR_FGD
    if seed == "motion":  # what never moves, far from everything that moves in a moving character's blob, is the set
        far = b & ~M.dilate(core, max(band, int(round(params.reach * side))))
        if ever_moved is not None:
            far &= ~ever_moved[y0:y1, x0:x1]
        gc[far] = cv2.GC_BGD
    gc[b & ag & ~core] = cv2.GC_BGD  # the set, judged and agreeing
    if scenery is not None:  # the set, as the track's neighbouring frames agree, where nothing moves here
        gc[b & scenery[y0:y1, x0:x1] & ~ev & ~core] = cv2.GC_BGD
    gc[core] = cv2.GC_FGD
    if not (gc == cv2.GC_BGD).any() or not (gc == cv2.GC_PR_BGD).any() and not (gc == cv2.GC_PR_FGD).any():
        return Refined(blob, area, area, seed, "nothing to decide")
    crop = cv2.cvtColor(np.ascontiguousarray(image[y0:y1, x0:x1]), cv2.COLOR_RGB2BGR)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    try:
        cv2.grabCut(crop, gc, None, bgd, fgd, params.iterations, cv2.GC_INIT_WITH_MASK)
    except cv2.error as exc:  # a degenerate colour model (too few samples of one side)
        return Refined(blob, area, area, seed, f"GrabCut failed: {str(exc).splitlines()[-1][:80]}")
    fg = ((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)) & M.dilate(b, params.grow)
    n, labels = cv2.connectedComponents(fg.astype(np.uint8), connectivity=8)
    keep = np.zeros(n, bool)
    keep[np.unique(labels[core])] = True
    keep[0] = False
    fg = fill_holes(keep[labels] | core)
    kept = int(fg.sum())
    if kept < params.min_keep * area:
        return Refined(blob, area, kept, seed, f"kept only {kept / area:.0%} of the blob")
    out = np.zeros_like(blob)
    out[y0:y1, x0:x1] = fg
    return Refined(out, area, kept, seed)


def removal_votes(t: int, blobs: dict[int, np.ndarray], removed: dict[int, np.ndarray], bg: ShotBackground,
                  window: int) -> tuple[np.ndarray, np.ndarray]:
    """How the track's other frames refined what frame ``t`` shows: per pixel of frame ``t`` (hxw
    int32 each), how many frames within ``window`` of it in the same registered run hold the pixel
    in their blob, carried along the registration into ``t``, and how many of those removed it.

    ``blobs``: frame -> hxw bool, the track's mask before the colour refinement in each frame where
    one was tried; ``removed``: frame -> hxw bool, what the refinement removed there (empty where it
    was not used). Frame ``t`` itself is not counted.
    """
    h, w = bg.foreground[t].shape
    holds = np.zeros((h, w), np.int32)
    drops = np.zeros((h, w), np.int32)
    for j, blob in blobs.items():
        if j == t or abs(j - t) > window or (m := bg.matrix(j, t)) is None:
            continue
        holds += cv2.warpPerspective(blob.astype(np.uint8), m, (w, h), flags=cv2.INTER_NEAREST,
                                     borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        if removed[j].any():
            drops += cv2.warpPerspective(removed[j].astype(np.uint8), m, (w, h), flags=cv2.INTER_NEAREST,
                                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return holds, drops


def agreed_scenery(holds: np.ndarray, drops: np.ndarray, share: float, min_frames: int = 2) -> np.ndarray:
    """HxW bool: what more than ``share`` of the frames holding it (at least ``min_frames``) removed
    (see :func:`removal_votes`): the set beside the character, as the track's other frames see it."""
    return (holds >= min_frames) & (drops > share * holds)


def unsteady_removal(gone: np.ndarray, holds: np.ndarray, drops: np.ndarray, share: float) -> np.ndarray:
    """HxW bool: what a frame's colour refinement removed (``gone``, hxw bool) that the track's other
    frames do not remove alike, to be given back.

    Scenery the detector joined to a character (crates, rocks, a wall) stands still in the set, so a
    refinement that is right removes it in every frame whose blob holds it, at the same place along
    the registration; a colour model misled in one frame (the girl's still shoulder taken for the
    wall) removes a part the neighbouring frames keep. A removed pixel stays removed only when more
    than ``share`` of the frames holding it (:func:`removal_votes`, the frame itself counted) remove
    it too (a tie gives it back).
    """
    return gone & ((drops + 1) <= share * (holds + 1))


def hidden_by(bg: ShotBackground, occupied: list[np.ndarray]) -> list[np.ndarray]:
    """Per frame, hxw bool: the pixels the background model cannot judge, as
    :attr:`ShotBackground.hidden`, but counting as occupied only ``occupied`` (per frame, hxw bool at
    work scale: the kept characters' detections), not every per-frame candidate. A tree trunk the
    detector keeps jumping to, judged scenery, no longer hides the set behind a character's mask."""
    n = len(occupied)
    h, w = bg.foreground[0].shape
    out = []
    for t in range(n):
        occ = np.zeros((h, w), np.int32)
        count = 0
        for j, m in bg.neighbours(t):
            count += 1
            if occupied[j].any():
                occ += cv2.warpPerspective(occupied[j].astype(np.uint8), m, (w, h), flags=cv2.INTER_NEAREST,
                                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        covered = bg.covered[t].astype(np.int32)
        few = (2 * covered < count) & (covered < 3)
        out.append((covered < 2) | (occ > 0.5 * covered) | few)
    return out


@dataclass
class SceneryPart:
    """A part of a character's mask found to be scenery: its hxw bool ``mask`` (work scale), area
    (px) and the share of its pixels that move or change."""

    mask: np.ndarray
    area: int
    moving: float


def scenery_parts(mask: np.ndarray, evidence: np.ndarray, others: np.ndarray, max_moving: float,
                  min_share: float = 0.02, unjudged: np.ndarray | None = None
                  ) -> tuple[np.ndarray, list[SceneryPart]]:
    """Split a character's mask (hxw bool) into the character and the scenery it holds apart from it.

    A connected component is scenery when it holds none of the character's largest evidence-bearing
    component, at most ``max_moving`` of its pixels move or change (``evidence``, hxw bool), and it
    does not touch ``others`` (hxw bool: the other characters' masks in the frame). Components
    under ``min_share`` of the mask are left as they are (a hand, the racket), and so are those
    whose pixels are mostly ``unjudged`` (hxw bool: the background model never saw the set there,
    so not moving is no evidence). Returns (the mask less the scenery, the scenery parts).
    """
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 2:
        return mask, []
    sizes = stats[:, cv2.CC_STAT_AREA].astype(np.float64)
    moving = np.bincount(labels[evidence & mask], minlength=n).astype(np.float64)
    # the character: the component holding the most evidence (the largest one when none moves)
    main = 1 + int(np.argmax(moving[1:])) if moving[1:].max() > 0 else 1 + int(np.argmax(sizes[1:]))
    touching = np.zeros(n, bool)
    if others.any():
        touching[np.unique(labels[M.dilate(others, 1)])] = True
    hidden = np.bincount(labels[unjudged & mask], minlength=n).astype(np.float64) if unjudged is not None \
        else np.zeros(n)
    total = float(sizes[1:].sum())
    out = mask.copy()
    parts: list[SceneryPart] = []
    for k in range(1, n):
        share = moving[k] / sizes[k]
        if k == main or touching[k] or share > max_moving or sizes[k] < min_share * total \
                or hidden[k] * 2 >= sizes[k]:
            continue
        part = labels == k
        out &= ~part
        parts.append(SceneryPart(part, int(sizes[k]), round(float(share), 3)))
    return out, parts


__all__ = ["RefineParams", "Refined", "SceneryPart", "hidden_by", "agreed_scenery", "refine_blob", "removal_votes", "scenery_parts",
           "unsteady_removal"]
