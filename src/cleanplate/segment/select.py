"""Which segmented instances are characters: ``select: all | salient | largest-k``.

SAM2's automatic mask generator segments *everything* (walls, sky, crates); merging every instance
masks most of the frame. Selection keeps the characters and records why each instance was kept or
dropped (``Instance.character`` / ``Instance.reason``). Pure numpy + OpenCV: a saliency map
(HxW float32 in [0, 1], see :class:`cleanplate.segment.saliency.SaliencyPredictor`) is the only
model input, so this is testable without SAM2.

* ``all`` — every instance of at least ``min_instance_size`` px is a character (the old behaviour).
* ``salient`` — an instance is a character when more than ``salient_overlap`` of its pixels lie
  in the thresholded saliency mask; the kept instances that fall in one saliency component (a
  head, an arm, a hand of one character) are merged into one character; saliency pixels no kept
  instance covers are added as an extra character instance ("saliency pixels missed by SAM2").
* ``largest-k`` — the ``select_k`` largest instances are characters.

Instances smaller than ``min_instance_size`` px after merging are dropped (counted in ``extra``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from cleanplate.config import SegmentConfig
from cleanplate.masks import components, ellipse_kernel
from cleanplate.records import Instance, bbox_xywh

SALIENCY_MISSED = "saliency pixels missed by SAM2"
_OPEN_RADIUS = 2  # px: leftover saliency rims thinner than ~2*r are not a missed character part


@dataclass(frozen=True)
class BoxPrompt:
    """A SAM2 prompt made from one saliency component: box XYXY (px, max inclusive) and a positive point."""

    box: tuple[float, float, float, float]
    point: tuple[float, float]
    area: int


def saliency_prompts(saliency: np.ndarray, threshold: float, min_size: int,
                     pad: float = 0.05) -> list[BoxPrompt]:
    """One box (grown by ``pad`` of its size on each side, clipped to the frame) and the saliency
    peak as positive point per saliency component of at least ``min_size`` px, largest first."""
    h, w = saliency.shape
    out = []
    for comp in components(saliency >= threshold, min_size):
        ys, xs = np.nonzero(comp)
        x0, x1, y0, y1 = int(xs.min()), int(xs.max()), int(ys.min()), int(ys.max())
        px, py = pad * (x1 - x0 + 1), pad * (y1 - y0 + 1)
        box = (max(0.0, x0 - px), max(0.0, y0 - py), min(w - 1.0, x1 + px), min(h - 1.0, y1 + py))
        peak = int(np.argmax(saliency[ys, xs]))
        out.append(BoxPrompt(box, (float(xs[peak]), float(ys[peak])), int(comp.sum())))
    return out


def _union(masks: list[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    out = np.zeros(shape, dtype=bool)
    for m in masks:
        out |= m
    return out


def _weighted(parts: list[Instance], attr: str) -> float | None:
    vals = [(getattr(p, attr), p.area) for p in parts if getattr(p, attr) is not None]
    total = sum(a for _, a in vals)
    return None if not vals or total == 0 else float(sum(v * a for v, a in vals) / total)


def _by_area(instances: list[Instance]) -> list[Instance]:
    return sorted(instances, key=lambda i: -i.area)


def select_characters(instances: list[Instance], shape: tuple[int, int], cfg: SegmentConfig,
                      saliency: np.ndarray | None = None) -> tuple[list[Instance], dict[str, object]]:
    """Decide which ``instances`` (HxW bool masks of a frame of ``shape``) are characters.

    Returns the instances to record — characters first (largest first), then the dropped
    scenery — and per-frame facts: counts, ``coverage_all`` (union of every input instance) and
    ``coverage_selected`` (union of the characters), as fractions of the frame.
    ``saliency`` (HxW float32 in [0, 1]) is required for ``select: salient``.
    """
    h, w = shape
    min_size = cfg.min_instance_size
    all_union = _union([i.mask for i in instances], (h, w))
    extra: dict[str, object] = {"select": cfg.select, "n_all": len(instances)}
    if cfg.select == "salient":
        if saliency is None:
            raise ValueError("select: salient needs a saliency map")
        chars, scenery, sal_extra = _salient(instances, (h, w), cfg, saliency)
        extra.update(sal_extra)
    else:
        big = _by_area([i for i in instances if i.area >= min_size])
        if cfg.select == "all":
            chars = [replace(i, character=True, reason="select: all") for i in big]
            scenery = []
        else:
            k = cfg.select_k
            chars = [replace(i, character=True, reason=f"largest-k: rank {r + 1} of {len(big)}, k={k}")
                     for r, i in enumerate(big[:k])]
            scenery = [replace(i, character=False, reason=f"largest-k: rank {r + 1} > k={k}")
                       for r, i in enumerate(big[k:], start=k)]
        extra["n_below_min_size"] = len(instances) - len(big)
    kept = [i for i in scenery if i.area >= min_size]
    extra["n_below_min_size"] = int(extra.get("n_below_min_size", 0)) + len(scenery) - len(kept)
    sel_union = _union([i.mask for i in chars], (h, w))
    extra.update({
        "n_selected": len(chars),
        "n_scenery": len(kept),
        "coverage_all": round(float(all_union.mean()), 5),
        "coverage_selected": round(float(sel_union.mean()), 5),
    })
    return chars + _by_area(kept), extra


def _salient(instances: list[Instance], shape: tuple[int, int], cfg: SegmentConfig,
             saliency: np.ndarray) -> tuple[list[Instance], list[Instance], dict[str, object]]:
    thr, need, min_size = cfg.saliency.threshold, cfg.salient_overlap, cfg.min_instance_size
    sal_mask = saliency >= thr
    _, labels = cv2.connectedComponents(sal_mask.astype(np.uint8), connectivity=8)
    groups: dict[int, list[tuple[Instance, float]]] = {}
    scenery: list[Instance] = []
    for inst in instances:
        if inst.area <= 0:
            continue
        inside = labels[inst.mask]
        salient = inside[inside > 0]
        overlap = len(salient) / float(inst.area)
        if overlap > need:
            comp = int(np.bincount(salient).argmax())
            groups.setdefault(comp, []).append((inst, overlap))
        else:
            scenery.append(replace(inst, character=False,
                                   reason=f"scenery: {overlap:.0%} of its pixels salient (needs > {need:.0%})"))
    chars: list[Instance] = []
    parts_of: list[list[Instance]] = []
    n_small = 0
    for comp in sorted(groups):
        members = groups[comp]
        parts = [m for m, _ in members]
        ovs = [o for _, o in members]
        mask = _union([p.mask for p in parts], shape)
        area = int(mask.sum())
        if area < min_size:
            n_small += len(parts)
            continue
        if len(parts) == 1:
            reason = f"salient: {ovs[0]:.0%} of its pixels salient"
        else:
            reason = (f"salient: {len(parts)} SAM2 instances of one saliency component merged "
                      f"({min(ovs):.0%}-{max(ovs):.0%} of their pixels salient)")
        iou = _weighted(parts, "predicted_iou")
        biggest = max(parts, key=lambda p: p.area)
        chars.append(Instance(
            mask=mask, bbox=bbox_xywh(mask), area=area,
            score=iou if iou is not None else float(biggest.score), predicted_iou=iou,
            stability_score=_weighted(parts, "stability_score"), point=biggest.point,
            character=True, reason=reason,
        ))
        parts_of.append(parts)
    order = sorted(range(len(chars)), key=lambda k: -chars[k].area)
    chars = [chars[k] for k in order]
    parts_of = [parts_of[k] for k in order]
    merged_parts = [{"into": k, **p.record()} for k, parts in enumerate(parts_of) if len(parts) > 1
                    for p in parts]
    # Saliency pixels no kept instance covers. An opening decides which leftovers are real
    # (a thin rim along a SAM2 mask border is not); the instance is the leftover component itself.
    leftover = sal_mask & ~_union([c.mask for c in chars], shape)
    core = cv2.morphologyEx(leftover.astype(np.uint8), cv2.MORPH_OPEN, ellipse_kernel(_OPEN_RADIUS)).astype(bool)
    n_lab, left_labels = cv2.connectedComponents(leftover.astype(np.uint8), connectivity=8)
    core_px = np.bincount(left_labels[core], minlength=n_lab)
    added = []
    for lab in np.argsort(-core_px, kind="stable"):
        if lab == 0 or core_px[lab] < max(min_size, 1):
            continue
        comp_mask = left_labels == lab
        ys, xs = np.nonzero(comp_mask)
        peak = int(np.argmax(saliency[ys, xs]))
        added.append(Instance(
            mask=comp_mask, bbox=bbox_xywh(comp_mask), area=int(comp_mask.sum()),
            score=float(saliency[comp_mask].mean()), point=(float(xs[peak]), float(ys[peak])),
            character=True, reason=SALIENCY_MISSED,
        ))
    extra: dict[str, object] = {
        "salient_fraction": round(float(sal_mask.mean()), 5),
        "n_merged_parts": len(merged_parts),
        "n_saliency_added": len(added),
        "n_below_min_size": n_small,
        "merged_parts": merged_parts,
    }
    return chars + added, scenery, extra
