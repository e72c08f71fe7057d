"""The benchmark's footage: DAVIS objects pasted, moving, over other clips (see :mod:`cleanplate.report.bench`).

:func:`build_composite` writes the composite frames and keeps, per frame, the truth (the base frame),
the pasted object's pixels and the base footage's own character zone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from cleanplate.config import Config
from cleanplate.errors import InputError
from cleanplate.io.outputs import read_image_rgb, read_mask, write_image
from cleanplate.masks import dilate


@dataclass(frozen=True)
class Composite:
    """One benchmark clip: the object of ``object_clip`` pasted, moving, over ``base_clip``."""

    name: str
    object_clip: str  # a DAVIS folder with frames/ and masks/
    object_start: int
    base_clip: str  # a DAVIS folder (frames/ + masks/) or a plain folder of frames
    base_start: int
    object_height: float  # height of the pasted object, as a fraction of the base frame's height
    description: str
    crop_clear: bool = False  # crop the base frames to the widest full-height span clear of their character


COMPOSITES: dict[str, Composite] = {
    c.name: c for c in (
        Composite("tennis-over-bmx", "davis_tennis", 20, "davis_bmx-trees", 0, 0.45,
                  "DAVIS tennis player over DAVIS bmx-trees (panning camera, 432x240)"),
        Composite("bmx-over-sintel", "davis_bmx-trees", 0, "sintel_market", 0, 0.45,
                  "DAVIS bmx rider over Sintel market (3D animation), cropped to the part clear of the girl",
                  crop_clear=True),
        Composite("bmx-beside-girl", "davis_bmx-trees", 0, "sintel_market", 0, 0.45,
                  "DAVIS bmx rider beside Sintel's girl (full 1024x436 frames: a second, smaller character)"),
    )
}
DEFAULT_COMPOSITES = ("tennis-over-bmx", "bmx-over-sintel")
"""Run by default (a few minutes on 2 CPU cores); ``bmx-beside-girl`` on request."""


# ------------------------------------------------------------------------------------- data

def find_data_dir(data: str | Path | None = None) -> Path:
    """The shared footage folder: ``data``, else ``$CLEANPLATE_DATA``, else ``../shared/data``.

    ``../shared/data`` is looked for next to the repository root (and next to the current
    folder). InputError (one line) when none of them holds the clips.
    """
    if data is not None:
        tried = [Path(data)]
    elif os.environ.get("CLEANPLATE_DATA"):
        tried = [Path(os.environ["CLEANPLATE_DATA"])]
    else:
        repo = Path(__file__).resolve().parents[3]
        tried = [repo.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]
        if os.environ.get("CLEANPLATE_SHARED"):
            tried.insert(0, Path(os.environ["CLEANPLATE_SHARED"]) / "data")
    for d in tried:
        if (d / "davis_tennis").is_dir():
            return d.resolve()
    raise InputError(f"benchmark footage not found (looked in {', '.join(str(d) for d in tried)}): "
                     "give --data or set $CLEANPLATE_DATA")


def _frame_files(clip: Path) -> list[Path]:
    folder = clip / "frames" if (clip / "frames").is_dir() else clip
    files = [p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg")]
    if not files:
        raise InputError(f"no frames in {folder}")
    return sorted(files)


def _gt_mask(clip: Path, frame: Path) -> np.ndarray | None:
    p = clip / "masks" / f"{frame.stem}.png"
    try:
        return read_mask(p) if p.is_file() else None
    except OSError:
        return None


def strip_shadow_band(mask: np.ndarray) -> np.ndarray:
    """Remove a thin band running sideways from the feet (DAVIS tennis: the shadow on the court).

    The body is the largest part made of vertical runs >= 45 px; band pixels are in vertical
    runs < 25 px, below the body's middle and beside the body's columns (4 px margin). An arm
    held out sideways is above the middle and stays. Pieces left apart from the body are
    dropped. HxW bool in and out.
    """
    m = mask.astype(np.uint8)
    tall = cv2.morphologyEx(m, cv2.MORPH_OPEN, np.ones((45, 1), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(tall, connectivity=8)
    if n <= 1:
        return mask.astype(bool)
    core = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x0, y0, w, h = (int(v) for v in stats[core, :4])
    thin = (m > 0) & (cv2.morphologyEx(m, cv2.MORPH_OPEN, np.ones((25, 1), np.uint8)) == 0)
    rows = (np.arange(m.shape[0]) > y0 + h // 2)[:, None]
    cols = np.ones(m.shape[1], dtype=bool)
    cols[max(0, x0 - 4): x0 + w + 4] = False
    obj = (m > 0) & ~(thin & rows & cols[None, :])
    n, labels, stats, _ = cv2.connectedComponentsWithStats(obj.astype(np.uint8), connectivity=8)
    if n <= 1:
        return obj
    body = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    near = dilate(labels == body, 15)
    keep = np.zeros(n, dtype=bool)
    for k in range(1, n):
        keep[k] = bool((near & (labels == k)).any())
    return keep[labels]


@dataclass
class _Cutout:
    rgb: np.ndarray  # hxwx3 uint8 RGB, already scaled
    mask: np.ndarray  # hxw bool


def _pingpong(start: int, count: int, n: int) -> list[int]:
    """``n`` indices from ``start`` walking forward through ``count`` frames, then back and forth."""
    span = count - start
    if span <= 0:
        raise InputError(f"clip has only {count} frames, fewer than the start {start}")
    if span == 1:
        return [start] * n
    period = 2 * span - 2
    return [start + (k % period if k % period < span else period - k % period) for k in range(n)]


def _cutouts(clip: Path, start: int, n: int, band: bool) -> list[_Cutout]:
    files = _frame_files(clip)
    idx = _pingpong(start, len(files), n)
    out = []
    for i in idx:
        image = read_image_rgb(files[i])
        mask = _gt_mask(clip, files[i])
        if mask is None:
            raise InputError(f"no mask for {files[i].name} in {clip / 'masks'}")
        if band:
            mask = strip_shadow_band(mask)
        core = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        mask = core if core.sum() >= 0.5 * mask.sum() else mask  # drop the 1-px fringe of background
        ys, xs = np.nonzero(mask)
        if len(xs) == 0:
            raise InputError(f"empty object mask {files[i].name} in {clip}")
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        out.append(_Cutout(image[y0:y1, x0:x1].copy(), mask[y0:y1, x0:x1].copy()))
    return out


def _scale(cut: _Cutout, f: float) -> _Cutout:
    h, w = cut.mask.shape
    size = (max(1, round(w * f)), max(1, round(h * f)))
    rgb = cv2.resize(cut.rgb, size, interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
    m = cv2.resize(cut.mask.astype(np.float32), size, interpolation=cv2.INTER_LINEAR) >= 0.5
    return _Cutout(rgb, m)


def _free_run(blocked: np.ndarray) -> tuple[int, int]:
    """Longest run of False in a 1-D bool array: (start, length)."""
    best, cur, start = (0, 0), 0, 0
    for x, b in enumerate(blocked.tolist() + [True]):
        if b:
            if cur > best[1]:
                best = (start, cur)
            cur = 0
        else:
            if cur == 0:
                start = x
            cur += 1
    return best


def plan_path(blocked: list[np.ndarray], width: int, speed: int) -> tuple[list[int], int]:
    """Left x of an object ``width`` px wide in each frame, moving steadily, clear of blocked columns.

    ``blocked[k]`` is a 1-D bool array per frame (columns the object must not cover). The
    straight path (start, speed in {+speed, -speed, 0}) clear in the most frames wins, moving
    paths first; a frame where the path is blocked takes the nearest clear position, or keeps
    the path's position when it has none. Returns the positions and how many frames overlap.
    """
    n, w = len(blocked), len(blocked[0])
    last = max(w - width, 0)
    clear = np.zeros((n, last + 1), dtype=bool)  # clear[k, x]: the object at x in frame k covers no blocked column
    for k, b in enumerate(blocked):
        cover = np.convolve(b.astype(np.int32), np.ones(min(width, w), np.int32), mode="valid")
        clear[k] = cover[: last + 1] == 0
    free = [np.flatnonzero(c) for c in clear]
    frames = np.arange(n)
    best_path, best_key = [0] * n, (-1, 0)
    for rank, v in enumerate((speed, -speed, 0)):
        for x0 in range(last + 1):
            path = np.clip(x0 + v * frames, 0, last)
            key = (int(clear[frames, path].sum()), -rank)
            if key > best_key:
                best_path, best_key = path.tolist(), key
    xs, overlapping = [], 0
    for x, f in zip(best_path, free, strict=True):
        if len(f) == 0:
            xs.append(x)
            overlapping += 1
        else:
            xs.append(int(f[np.argmin(np.abs(f - x))]))
    return xs, overlapping


@dataclass
class CompositeFrames:
    """A built composite: per frame the pasted frame, the truth, the object and the exclusion zone."""

    spec: Composite
    frames_dir: Path
    ids: list[str]
    truth: list[np.ndarray]  # HxWx3 uint8 RGB: the base frame
    pasted: list[np.ndarray]  # HxW bool: the object's pixels
    exclusion: list[np.ndarray]  # HxW bool: the base's own character (dilated): not over-masking
    notes: list[str] = field(default_factory=list)


def build_composite(spec: Composite, data: Path, out: Path, n: int, config: Config,
                    predictor: Any) -> CompositeFrames:
    """Paste the moving object over ``n`` base frames; write them to ``out/frames/``."""
    base_clip, obj_clip = data / spec.base_clip, data / spec.object_clip
    base_files = _frame_files(base_clip)[spec.base_start:]
    n = min(n, len(base_files))
    if n < 1:
        raise InputError(f"no frames to use in {base_clip}")
    base_files = base_files[:n]
    bases = [read_image_rgb(p) for p in base_files]
    band = config.masks.dilate
    exclusion = []
    for p, img in zip(base_files, bases, strict=True):
        zone = predictor.predict(img) >= config.segment.saliency.threshold
        gt = _gt_mask(base_clip, p)
        if gt is not None:
            zone |= gt
        exclusion.append(dilate(zone, band + 6))
    notes = []
    if spec.crop_clear:
        start, length = _free_run(np.logical_or.reduce(exclusion).any(axis=0))
        if length >= bases[0].shape[1] // 5:
            bases = [np.ascontiguousarray(b[:, start:start + length]) for b in bases]
            exclusion = [np.zeros(b.shape[:2], dtype=bool) for b in bases]
        else:
            notes.append(f"{spec.name}: no clear span to crop to; full frames used")
    h, w = bases[0].shape[:2]
    cuts = _cutouts(obj_clip, spec.object_start, n, band=spec.object_clip == "davis_tennis")
    f = spec.object_height * h / max(c.mask.shape[0] for c in cuts)
    cuts = [_scale(c, f) for c in cuts]
    ow = max(c.mask.shape[1] for c in cuts)
    oh = max(c.mask.shape[0] for c in cuts)
    bottom = min(h, round(0.95 * h))
    top = max(0, bottom - oh)
    xs, overlapping = plan_path([z[top:bottom].any(axis=0) for z in exclusion], ow, round(0.012 * w))
    if overlapping:
        notes.append(f"{spec.name}: {overlapping} of {n} frames have no position clear of the base character; "
                     "the object overlaps it there")
    frames_dir = out / "frames"
    frames_dir.mkdir(parents=True, exist_ok=True)
    (out / "truth").mkdir(exist_ok=True)
    ids, pasted = [], []
    for k, (img, cut, x) in enumerate(zip(bases, cuts, xs, strict=True)):
        ch, cw = cut.mask.shape
        y = bottom - ch
        m = np.zeros((h, w), dtype=bool)
        m[y:y + ch, x:x + cw] = cut.mask[: h - y, : w - x]
        comp = img.copy()
        comp[m] = cut.rgb[: h - y, : w - x][cut.mask[: h - y, : w - x]]
        fid = f"{spec.name}_{k:04d}"
        write_image(frames_dir / f"{fid}.png", comp)
        write_image(out / "truth" / f"{fid}.png", img)
        ids.append(fid)
        pasted.append(m)
    return CompositeFrames(spec, frames_dir, ids, bases, pasted, exclusion, notes)


__all__ = ["COMPOSITES", "DEFAULT_COMPOSITES", "Composite", "CompositeFrames", "build_composite", "find_data_dir",
           "plan_path", "strip_shadow_band"]
