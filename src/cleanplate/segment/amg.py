"""SAM2 automatic mask generation (AMG): point grids, crops, batching, filtering, NMS.

The algorithm of Meta's ``SAM2AutomaticMaskGenerator`` (sam2/automatic_mask_generator.py), written
against a small predictor protocol so that it runs on the Hugging Face ``Sam2Model`` (see
:mod:`cleanplate.segment.sam2`). Per crop: one image embedding, then the point grid in batches of
``points_per_batch``; each batch is filtered by predicted IoU, then stability score, binarised at
``mask_threshold``, boxes touching a crop edge (not the frame edge) are dropped and the masks are
run-length encoded; NMS (``box_nms_thresh``) within the crop, NMS between crops
(``crop_nms_thresh``, smaller crops preferred) and, with ``min_mask_region_area``, SAM's
hole/island removal (OpenCV) followed by another NMS.

Differences from the Hugging Face ``mask-generation`` pipeline, which is not used: its point grid
is scaled by the longest side (SAM1) while ``Sam2ImageProcessor`` warps the frame to a square, so
on a 16:9 frame its points only cover the top part of the picture; it fails with
``crop_n_points_downscale_factor > 1``; and its ``filter_masks`` drops the stability scores.

Torch is imported inside the functions: importing this module needs numpy and OpenCV only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import product
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from cleanplate.errors import FrameError
from cleanplate.masks import remove_small_regions

if TYPE_CHECKING:
    import torch

    from cleanplate.config import Sam2Config

LOWRES_STABILITY_MARGIN = 0.1
"""``lowres_filter``: masks whose low-resolution stability is this far below the threshold are
dropped before upsampling (the exact threshold is applied at full resolution after)."""

Box = tuple[int, int, int, int]
"""XYXY in pixels: x0, y0 inclusive; x1, y1 exclusive (a crop box)."""


# --- grids and crops ---------------------------------------------------------------------------

def point_grid(n_per_side: int) -> np.ndarray:
    """(n*n, 2) float64 points (x, y) evenly spaced in [0, 1]^2, cell centres, row by row."""
    offset = 1.0 / (2 * n_per_side)
    side = np.linspace(offset, 1 - offset, n_per_side)
    xs = np.tile(side[None, :], (n_per_side, 1))
    ys = np.tile(side[:, None], (1, n_per_side))
    return np.stack([xs, ys], axis=-1).reshape(-1, 2)


def layer_point_grids(n_per_side: int, n_layers: int, downscale: int) -> list[np.ndarray]:
    """One normalised grid per crop layer; layer i has ``n_per_side / downscale**i`` points a side."""
    return [point_grid(max(1, int(n_per_side / downscale**i))) for i in range(n_layers + 1)]


def crop_boxes(hw: tuple[int, int], n_layers: int, overlap_ratio: float) -> list[tuple[Box, int]]:
    """The whole frame, then (2**i)**2 overlapping crops for layer i = 1..n_layers: ``[(box, layer)]``."""
    h, w = hw
    out: list[tuple[Box, int]] = [((0, 0, w, h), 0)]
    short = min(h, w)
    for i in range(n_layers):
        n = 2 ** (i + 1)
        overlap = int(overlap_ratio * short * (2 / n))
        cw = int(math.ceil((overlap * (n - 1) + w) / n))
        ch = int(math.ceil((overlap * (n - 1) + h) / n))
        x0s = [int((cw - overlap) * k) for k in range(n)]
        y0s = [int((ch - overlap) * k) for k in range(n)]
        for x0, y0 in product(x0s, y0s):
            out.append(((x0, y0, min(x0 + cw, w), min(y0 + ch, h)), i + 1))
    return out


# --- per-mask measures (torch) -----------------------------------------------------------------

def stability_score(logits: torch.Tensor, mask_threshold: float, offset: float) -> torch.Tensor:
    """IoU of the masks binarised at ``threshold + offset`` and ``threshold - offset``; (N,H,W) -> (N,).

    An empty mask (union 0) scores 0.
    """
    import torch

    inter = (logits > (mask_threshold + offset)).sum(dim=(-1, -2), dtype=torch.int64)
    union = (logits > (mask_threshold - offset)).sum(dim=(-1, -2), dtype=torch.int64)
    return torch.where(union > 0, inter.float() / union.clamp(min=1).float(), torch.zeros_like(inter.float()))


def masks_to_boxes(masks: torch.Tensor) -> torch.Tensor:
    """XYXY boxes (max coordinates inclusive, like SAM) of (N,H,W) bool masks; empty masks give zeros."""
    import torch

    n, h, w = masks.shape
    if n == 0:
        return torch.zeros((0, 4), device=masks.device)
    rows = masks.any(dim=2)
    cols = masks.any(dim=1)
    ar_h = torch.arange(h, device=masks.device)
    ar_w = torch.arange(w, device=masks.device)
    y1 = torch.where(rows, ar_h, -1).amax(dim=1)
    y0 = torch.where(rows, ar_h, h).amin(dim=1)
    x1 = torch.where(cols, ar_w, -1).amax(dim=1)
    x0 = torch.where(cols, ar_w, w).amin(dim=1)
    boxes = torch.stack([x0, y0, x1, y1], dim=1)
    return torch.where((y1 >= 0)[:, None], boxes, torch.zeros_like(boxes)).float()


def near_crop_edge(boxes: torch.Tensor, crop: Box, frame: Box, atol: float = 20.0) -> torch.Tensor:
    """(N,) bool: box (crop coordinates) within ``atol`` px of a crop edge that is not a frame edge."""
    import torch

    crop_t = torch.as_tensor(crop, dtype=torch.float, device=boxes.device)
    frame_t = torch.as_tensor(frame, dtype=torch.float, device=boxes.device)
    shifted = boxes.float() + torch.as_tensor([crop[0], crop[1], crop[0], crop[1]], device=boxes.device)
    near_crop = torch.isclose(shifted, crop_t[None, :], atol=atol, rtol=0)
    near_frame = torch.isclose(shifted, frame_t[None, :], atol=atol, rtol=0)
    return (near_crop & ~near_frame).any(dim=1)


# --- run-length encoding ------------------------------------------------------------------------

@dataclass(frozen=True)
class Rle:
    """Row-major run lengths of an HxW bool mask: False run, True run, False run, ..."""

    h: int
    w: int
    counts: np.ndarray

    @property
    def area(self) -> int:
        return int(self.counts[1::2].sum())

    def decode(self) -> np.ndarray:
        """The HxW bool mask."""
        values = (np.arange(len(self.counts)) % 2).astype(bool)
        return np.repeat(values, self.counts).reshape(self.h, self.w)


def rle_encode(masks: torch.Tensor) -> list[Rle]:
    """Encode (N,H,W) bool masks (any device; the run boundaries are found there)."""
    n, h, w = masks.shape
    if n == 0:
        return []
    flat = masks.reshape(n, h * w)
    change = (flat[:, 1:] ^ flat[:, :-1]).nonzero().cpu().numpy()
    first = flat[:, 0].cpu().numpy()
    splits = np.searchsorted(change[:, 0], np.arange(n + 1))
    out = []
    for i in range(n):
        cuts = change[splits[i]:splits[i + 1], 1] + 1
        counts = np.diff(np.concatenate([[0], cuts, [h * w]]))
        if first[i]:
            counts = np.concatenate([[0], counts])
        out.append(Rle(h, w, counts.astype(np.int64)))
    return out


def rle_from_mask(mask: np.ndarray) -> Rle:
    """Encode one HxW bool numpy mask."""
    flat = mask.reshape(-1).astype(bool)
    cuts = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    counts = np.diff(np.concatenate([[0], cuts, [flat.size]]))
    if flat.size and flat[0]:
        counts = np.concatenate([[0], counts])
    return Rle(mask.shape[0], mask.shape[1], counts.astype(np.int64))


# --- candidate masks ----------------------------------------------------------------------------

@dataclass
class Candidates:
    """Masks kept so far (frame coordinates), one row per mask: the AMG's ``MaskData``."""

    rles: list[Rle] = field(default_factory=list)
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))  # XYXY, max inclusive
    iou: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    stability: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))  # prompt (x, y)
    crops: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))  # crop box XYXY

    def __len__(self) -> int:
        return len(self.rles)

    def take(self, idx: np.ndarray) -> Candidates:
        idx = np.asarray(idx, dtype=np.int64)
        return Candidates([self.rles[i] for i in idx], self.boxes[idx], self.iou[idx],
                          self.stability[idx], self.points[idx], self.crops[idx])

    @staticmethod
    def cat(parts: list[Candidates]) -> Candidates:
        if not parts:
            return Candidates()
        return Candidates([r for p in parts for r in p.rles],
                          np.concatenate([p.boxes for p in parts]), np.concatenate([p.iou for p in parts]),
                          np.concatenate([p.stability for p in parts]), np.concatenate([p.points for p in parts]),
                          np.concatenate([p.crops for p in parts]))


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices kept by box NMS (torchvision), highest score first."""
    import torch
    from torchvision.ops import nms as tv_nms

    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    keep = tv_nms(torch.from_numpy(boxes).float(), torch.from_numpy(scores).float(), float(iou_threshold))
    return keep.numpy()


def postprocess_small_regions(cands: Candidates, min_area: int, nms_thresh: float) -> Candidates:
    """SAM's ``postprocess_small_regions``: fill holes and drop islands under ``min_area`` px (OpenCV),
    then NMS again, preferring masks that did not change."""
    if len(cands) == 0 or min_area <= 0:
        return cands
    rles, boxes, unchanged = [], [], []
    for rle in cands.rles:
        mask = rle.decode()
        fixed = remove_small_regions(mask, min_area)
        same = bool(np.array_equal(fixed, mask))
        unchanged.append(1.0 if same else 0.0)
        rles.append(rle if same else rle_from_mask(fixed))
        ys, xs = np.nonzero(fixed)
        boxes.append([xs.min(), ys.min(), xs.max(), ys.max()] if len(xs) else [0, 0, 0, 0])
    out = Candidates(rles, np.asarray(boxes, np.float32), cands.iou, cands.stability, cands.points, cands.crops)
    nonempty = np.flatnonzero([r.area > 0 for r in rles])
    out = out.take(nonempty)
    return out.take(nms(out.boxes, np.asarray(unchanged, np.float32)[nonempty], nms_thresh))


# --- batching with out-of-memory retries --------------------------------------------------------

class Predictor(Protocol):
    """What the AMG needs from a model wrapper (see :class:`cleanplate.segment.sam2.Sam2Predictor`)."""

    oom_errors: tuple[type[BaseException], ...]

    def set_image(self, image: np.ndarray) -> None: ...

    def use_embedding(self, emb: Any, hw: tuple[int, int]) -> None: ...

    def decode(self, points: np.ndarray | None, boxes: np.ndarray | None,
               multimask: bool) -> tuple[torch.Tensor, torch.Tensor]: ...

    def upsample(self, low_res: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor: ...

    def empty_cache(self) -> None: ...


@dataclass
class BatchStats:
    """Per-frame facts about batching: OOM retries and the batch size that finally ran."""

    oom_retries: int = 0
    points_per_batch_used: int = 0


def run_batches(n: int, batch: int, fn: Callable[[int, int], Any], predictor: Predictor,
                stats: BatchStats) -> tuple[list[Any], int]:
    """Call ``fn(start, stop)`` over ``range(n)`` in chunks of ``batch``.

    On an out-of-memory error the cache is emptied and the chunk is retried with half the batch
    size (down to 1; at 1 the frame fails with :class:`FrameError`). Returns the results and the
    batch size in use at the end (callers keep it for the next frame).
    """
    out, start = [], 0
    batch = max(1, batch)
    while start < n:
        stop = min(n, start + batch)
        try:
            out.append(fn(start, stop))
        except predictor.oom_errors as exc:
            predictor.empty_cache()
            if batch == 1:
                raise FrameError(f"out of memory in the SAM2 mask decoder even with 1 point per batch: "
                                 f"{str(exc).splitlines()[0][:160]}") from None
            batch = max(1, batch // 2)
            stats.oom_retries += 1
            continue
        start = stop
    stats.points_per_batch_used = batch
    return out, batch


# --- the generator ------------------------------------------------------------------------------

class MaskGenerator:
    """SAM2's automatic mask generator over a :class:`Predictor`; every ``Sam2Config`` knob honoured.

    ``points_per_batch`` starts at the config value; after an OOM the halved value is kept for the
    following frames (the result does not depend on it: NMS runs over all batches).
    """

    def __init__(self, predictor: Predictor, params: Sam2Config) -> None:
        self.predictor = predictor
        self.p = params
        self.points_per_batch = params.points_per_batch
        self.grids = layer_point_grids(params.points_per_side, params.crop_n_layers,
                                       params.crop_n_points_downscale_factor)

    def generate(self, image: np.ndarray, embedding: Any = None) -> tuple[Candidates, BatchStats]:
        """Masks of an HxWx3 uint8 RGB frame, after every filter and NMS, best first.

        ``embedding``: the frame's image embedding when already computed (a batched encoder call,
        :meth:`Sam2Predictor.embed_batch`); it stands for the whole-frame crop.
        """
        hw = (int(image.shape[0]), int(image.shape[1]))
        stats = BatchStats()
        crops = crop_boxes(hw, self.p.crop_n_layers, self.p.crop_overlap_ratio)
        data = Candidates.cat([self._crop(image, box, layer, hw, stats, embedding if layer == 0 else None)
                               for box, layer in crops])
        if len(crops) > 1 and len(data):
            area = (data.crops[:, 2] - data.crops[:, 0]) * (data.crops[:, 3] - data.crops[:, 1])
            data = data.take(nms(data.boxes, 1.0 / area, self.p.crop_nms_thresh))
        if self.p.min_mask_region_area > 0:
            data = postprocess_small_regions(data, self.p.min_mask_region_area,
                                             max(self.p.box_nms_thresh, self.p.crop_nms_thresh))
        return data, stats

    def _crop(self, image: np.ndarray, box: Box, layer: int, hw: tuple[int, int],
              stats: BatchStats, embedding: Any = None) -> Candidates:
        x0, y0, x1, y1 = box
        crop = image[y0:y1, x0:x1]
        ch, cw = crop.shape[:2]
        if embedding is not None:
            self.predictor.use_embedding(embedding, (ch, cw))
        else:
            self.predictor.set_image(crop)  # the one embedding of this crop, reused by every batch
        points = self.grids[layer] * np.array([[cw, ch]], dtype=np.float64)

        def one(start: int, stop: int) -> Candidates:
            return self._batch(points[start:stop], (ch, cw), box, hw)

        parts, self.points_per_batch = run_batches(len(points), self.points_per_batch, one, self.predictor, stats)
        data = Candidates.cat(parts)
        if len(data):
            data = data.take(nms(data.boxes, data.iou, self.p.box_nms_thresh))
        offset = np.array([x0, y0, x0, y0], np.float32)
        data.boxes = data.boxes + offset
        data.points = data.points + offset[:2]
        return data

    def _batch(self, points: np.ndarray, crop_hw: tuple[int, int], box: Box, hw: tuple[int, int]) -> Candidates:
        import torch.nn.functional as F

        p = self.p
        low, iou = self.predictor.decode(points, None, p.multimask_output)  # (B,C,h,w), (B,C)
        n_masks = iou.shape[1]
        low, iou = low.flatten(0, 1), iou.flatten()
        pts = np.repeat(points.astype(np.float32), n_masks, axis=0)
        keep = iou > p.pred_iou_thresh if p.pred_iou_thresh > 0 else iou == iou
        low, iou = low[keep], iou[keep]
        pts = pts[keep.cpu().numpy()]
        if len(iou) == 0:
            return Candidates()
        if p.lowres_filter and p.stability_score_thresh > 0:
            # a first stability cut on the low-resolution logits, so that only plausible masks are
            # upsampled; the margin keeps masks whose low- and full-resolution scores differ a little
            low_stab = stability_score(low, p.mask_threshold, p.stability_score_offset)
            first = low_stab >= p.stability_score_thresh - LOWRES_STABILITY_MARGIN
            low, iou, pts = low[first], iou[first], pts[first.cpu().numpy()]
            if len(iou) == 0:
                return Candidates()
        logits = self.predictor.upsample(low[:, None], crop_hw)[:, 0]  # (K,H,W) at crop size
        stab = stability_score(logits, p.mask_threshold, p.stability_score_offset)
        keep = stab >= p.stability_score_thresh if p.stability_score_thresh > 0 else stab == stab
        masks = logits[keep] > p.mask_threshold
        del logits
        boxes = masks_to_boxes(masks)
        keep_k = (~near_crop_edge(boxes, box, (0, 0, hw[1], hw[0]))) & masks.flatten(1).any(dim=1)
        masks, boxes = masks[keep_k], boxes[keep_k]
        idx = keep.nonzero()[:, 0][keep_k].cpu().numpy()
        x0, y0, x1, y1 = box
        if (x0, y0, x1, y1) != (0, 0, hw[1], hw[0]):
            masks = F.pad(masks, (x0, hw[1] - x1, y0, hw[0] - y1), value=False)
        n = len(idx)
        return Candidates(rle_encode(masks), boxes.cpu().numpy().astype(np.float32).reshape(n, 4),
                          iou[keep][keep_k].float().cpu().numpy(), stab[keep][keep_k].float().cpu().numpy(),
                          pts[idx], np.tile(np.asarray(box, np.float32), (n, 1)))
