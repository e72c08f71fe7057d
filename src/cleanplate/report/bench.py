"""Ground-truth benchmark: paste a moving DAVIS object over other footage, remove it, compare.

The frame before pasting is the ground truth, so the benchmark measures what a viewer cannot:

* **recall**: share of the pasted object's pixels inside the final removal mask;
* **over-masking**: removed area outside the object's band (the object dilated by
  ``masks.dilate`` + 6 px) and outside the base footage's own character, relative to the
  object's area (0.5 = an extra half object removed);
* **PSNR / SSIM** of the plate against the ground truth inside the pasted object's pixels
  (where the paste changed the frame; object pixels the mask missed count with their error);
* the same with the **true mask** (the pasted object, dilated like the pipeline's masks): the
  fill's quality apart from what the detector found;
* **seconds per frame** of the segment model, the fill and the plate checks;
* the automatic checks' scores and flag rates per method.

The base clips have characters of their own (the bmx rider, Sintel's girl). The pipeline removes
them too, and that is right, so the benchmark keeps them out of the measures. Their zone is the
base's ground-truth mask where the clip has one, plus the saliency detector's mask on the unpasted
frame, dilated by ``masks.dilate`` + 6 px. ``tennis-over-bmx`` keeps the rider (two characters in
a frame, a real case) and moves the pasted player along a steady path clear of that zone in every
frame; ``bmx-over-sintel`` crops the Sintel frames to the full-height span clear of the girl, so
the pasted rider is the only character (``bmx-beside-girl``, on request, keeps the full frames).
That zone counts neither as over-masking nor in PSNR / SSIM: the measures are about the pasted
object only. The DAVIS tennis masks include the player's long shadow band on
the court; it is cut off (thin horizontal structure at foot level) before pasting.

The segment stage runs once per composite; every method fills the same masks, so recall and
over-masking are equal across methods by design. Plates are written as PNG so JPEG does not
enter PSNR.
"""

from __future__ import annotations

import math
import os
import platform
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from cleanplate.config import Config, load_config
from cleanplate.errors import CleanplateError, InputError
from cleanplate.io.outputs import atomic_write_bytes, read_image_rgb, read_mask, write_image, write_json
from cleanplate.masks import dilate

DEFAULT_METHODS = ("opencv-telea", "opencv-ns", "patchmatch", "lama", "temporal+patchmatch")
"""Methods tried by default; those that are not available here are listed as skipped."""

Progress = Callable[[str], None]


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


# ---------------------------------------------------------------------------------- measures

def frame_measures(plate: np.ndarray, truth: np.ndarray, removal: np.ndarray, pasted: np.ndarray,
                   exclusion: np.ndarray, band: int) -> dict[str, float]:
    """Recall, over-masking, PSNR and SSIM of one plate (see the module docstring)."""
    from cleanplate.qa.metrics import psnr, ssim

    area = max(int(pasted.sum()), 1)
    allowed = dilate(pasted, band) | exclusion
    extra = removal & ~allowed
    region = pasted & ~exclusion
    return {
        "recall": float((removal & pasted).sum()) / area,
        "over_mask": float(extra.sum()) / area,
        "over_mask_frame": float(extra.mean()),
        "psnr": psnr(plate, truth, region),
        "ssim": ssim(plate, truth, region),
    }


def _mean(values: list[float]) -> float | None:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return sum(vals) / len(vals) if vals else None


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


# ------------------------------------------------------------------------------- availability

def method_unavailable(method: str, config: Config, device: str) -> str | None:
    """Why ``method`` cannot run here (None when it can): unknown, missing dependency or weights."""
    from cleanplate import weights
    from cleanplate.fill import create_inpainter

    try:
        cfg = _method_config(config, method)
    except CleanplateError as exc:
        return str(exc)
    if "lama" in method:
        lc = cfg.fill.lama
        try:
            weights.resolve(lc.model, lc.checkpoint, download=False)
        except CleanplateError as exc:
            return f"weights missing: {exc}"
        except KeyError as exc:  # pragma: no cover - defensive: registry lookups
            return f"weights missing: {exc}"
    try:
        create_inpainter(cfg, device)
    except CleanplateError as exc:
        return str(exc)
    return None


def _method_config(config: Config, method: str) -> Config:
    """``config`` with the fill method set, plates as PNG, no cut-outs, and no checks in the run."""
    data = config.to_dict()
    data["fill"]["method"] = method
    data["qa"]["enabled"] = False  # the benchmark scores plates itself, timed apart
    data["output"].update({"plate_format": "png", "save_instances": False, "save_masks": False})
    data["input"]["limit"] = None
    return Config.model_validate(data)


# --------------------------------------------------------------------------------------- run

@dataclass
class BenchResult:
    """What :func:`run_bench` wrote: the JSON and Markdown paths and the data behind them."""

    json_path: Path
    markdown_path: Path
    data: dict[str, Any]
    markdown: str


@dataclass
class _MethodRun:
    rows: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, list[float]] = field(default_factory=lambda: {"segment": [], "fill": [], "checks": []})
    failures: list[str] = field(default_factory=list)
    error: str | None = None


def _write_true_masks(comp: CompositeFrames, folder: Path) -> Path:
    """The pasted objects' masks as a mask folder (the fill stage dilates them by masks.dilate)."""
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    for fid, m in zip(comp.ids, comp.pasted, strict=True):
        write_image(folder / "masks" / f"{fid}.png", m.astype(np.uint8) * 255)
    return folder


def _measure_method(comp: CompositeFrames, cdir: Path, method: str, cfg: Config, checker: Any,
                    seg_spf: float | None, band: int, run: _MethodRun) -> None:
    """Fill the composite with the pipeline's masks and with the true masks; measure both."""
    from cleanplate.pipeline import inpaint
    from cleanplate.qa.checks import CHECKS

    mdir = cdir / _safe(method)
    tdir = cdir / f"{_safe(method)}.truemask"
    res = inpaint(cdir / "segment", mdir, cfg, frames=comp.frames_dir, force=True)
    true_res = inpaint(cdir / "truemask", tdir, cfg, frames=comp.frames_dir, force=True)
    fill_spf = res.fill.seconds_per_frame().get("fill") if res.fill else None
    run.failures += [f"{fid}: {why}" for fid, why in (res.fill.failures if res.fill else {}).items()]
    run.failures += [f"{fid} (true mask): {why}" for fid, why in
                     (true_res.fill.failures if true_res.fill else {}).items()]
    for k, fid in enumerate(comp.ids):
        plate_path, mask_path = mdir / "backgrounds" / f"{fid}.png", mdir / "masks" / f"{fid}.png"
        if not plate_path.is_file() or not mask_path.is_file():
            continue
        plate, removal = read_image_rgb(plate_path), read_mask(mask_path)
        rec: dict[str, Any] = {"frame": fid, "composite": comp.spec.name}
        rec.update(frame_measures(plate, comp.truth[k], removal, comp.pasted[k], comp.exclusion[k], band))
        true_plate = tdir / "backgrounds" / f"{fid}.png"
        if true_plate.is_file():
            tm = frame_measures(read_image_rgb(true_plate), comp.truth[k], comp.pasted[k], comp.pasted[k],
                                comp.exclusion[k], band)
            rec.update({"psnr_true_mask": tm["psnr"], "ssim_true_mask": tm["ssim"]})
        else:
            rec.update({"psnr_true_mask": None, "ssim_true_mask": None})
        t = time.perf_counter()
        checks = checker.check(read_image_rgb(comp.frames_dir / f"{fid}.png"), plate, removal)
        run.timings["checks"].append(time.perf_counter() - t)
        rec.update({c: checks[c] for c in CHECKS})
        rec["flags"] = checks["flags"]
        run.rows.append(rec)
        if seg_spf is not None:
            run.timings["segment"].append(seg_spf)
        if fill_spf is not None:
            run.timings["fill"].append(fill_spf)


def run_bench(
    out_dir: str | Path,
    *,
    methods: list[str] | tuple[str, ...] | None = None,
    frames: int = 16,
    composites: list[str] | None = None,
    data: str | Path | None = None,
    config: Config | None = None,
    progress: Progress | None = None,
) -> BenchResult:
    """Build the composites, run segment + fill per method, measure; write bench.json and bench.md.

    ``methods`` defaults to :data:`DEFAULT_METHODS`; unavailable ones are skipped with the
    reason. ``frames`` is per composite (clips shorter than that give what they have). Each
    method also fills the true (pasted) masks, dilated like the pipeline's, which measures the
    fill apart from the detection (``psnr_true_mask``, ``ssim_true_mask``).
    """
    from cleanplate.devices import resolve_device
    from cleanplate.pipeline import segment
    from cleanplate.qa.checks import PlateChecker
    from cleanplate.segment.saliency import SaliencyPredictor

    say = progress or (lambda _msg: None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data_dir = find_data_dir(data)
    base_cfg = config or load_config()
    device = resolve_device(base_cfg.run.device)
    names = list(composites or DEFAULT_COMPOSITES)
    unknown = [c for c in names if c not in COMPOSITES]
    if unknown:
        raise InputError(f"unknown composite {', '.join(unknown)} (available: {', '.join(COMPOSITES)})")
    if frames < 1:
        raise InputError("--frames must be at least 1")
    skipped: dict[str, str] = {}
    runs: dict[str, _MethodRun] = {}
    for m in dict.fromkeys(methods or DEFAULT_METHODS):
        why = method_unavailable(m, base_cfg, device)
        if why:
            skipped[m] = why
            say(f"skip {m}: {why}")
        else:
            runs[m] = _MethodRun()
    seg_cfg = _method_config(base_cfg, "opencv-telea")
    sc = seg_cfg.segment.saliency
    predictor = SaliencyPredictor(sc.model, device, input_size=sc.input_size, threads=seg_cfg.run.threads)
    checker = PlateChecker(base_cfg.qa, device, threads=base_cfg.run.threads)
    checker.load()
    band = seg_cfg.masks.dilate + 6
    notes: list[str] = []
    built: list[dict[str, Any]] = []
    for name in names:
        spec, cdir = COMPOSITES[name], out / name
        say(f"{name}: building {frames} frames")
        comp = build_composite(spec, data_dir, cdir, frames, seg_cfg, predictor)
        _write_true_masks(comp, cdir / "truemask")
        notes += comp.notes
        built.append({"name": name, "description": spec.description, "frames": len(comp.ids),
                      "size": list(comp.truth[0].shape[1::-1]),
                      "object_area_mean": round(float(np.mean([p.sum() for p in comp.pasted])), 1)})
        say(f"{name}: segment")
        seg = segment(comp.frames_dir, cdir / "segment", seg_cfg, force=True)
        seg_spf = seg.segment.seconds_per_frame().get("segment") if seg.segment else None
        for method, run in runs.items():
            if run.error is not None:
                continue
            say(f"{name}: fill {method}")
            try:
                _measure_method(comp, cdir, method, _method_config(base_cfg, method), checker, seg_spf, band, run)
            except CleanplateError as exc:
                run.error = str(exc)
                say(f"{method} failed: {exc}")
    summary = _summarise(runs, names)
    payload = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "data": str(data_dir),
        "device": device,
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "threads": base_cfg.run.threads},
        "frames_per_composite": frames,
        "composites": built,
        "dilate_px": seg_cfg.masks.dilate,
        "band_px": band,
        "segment_backend": seg_cfg.segment.backend,
        "thresholds": checker.thresholds,
        "methods": summary["methods"],
        "by_composite": summary["by_composite"],
        "skipped": skipped,
        "errors": {m: r.error for m, r in runs.items() if r.error},
        "notes": notes,
        "frames": {m: r.rows for m, r in runs.items()},
    }
    md = to_markdown(payload)
    json_path, md_path = out / "bench.json", out / "bench.md"
    write_json(json_path, payload)
    atomic_write_bytes(md_path, md.encode())
    return BenchResult(json_path, md_path, payload, md)


_MEASURES = ("recall", "over_mask", "over_mask_frame", "psnr", "ssim", "psnr_true_mask", "ssim_true_mask")


def _aggregate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    from cleanplate.qa.checks import CHECKS

    out: dict[str, Any] = {"frames": len(rows)}
    for key in (*_MEASURES, *CHECKS):
        v = _mean([r.get(key) for r in rows])
        out[key] = None if v is None else round(v, 4)
    for c in CHECKS:
        out[f"flagged_{c}"] = round(sum(c in r["flags"] for r in rows) / len(rows), 4) if rows else None
    return out


def _summarise(runs: dict[str, _MethodRun], names: list[str]) -> dict[str, Any]:
    rows, by_comp = {}, {}
    for m, run in runs.items():
        agg = _aggregate(run.rows)
        agg["seconds_per_frame"] = {k: (None if not v else round(sum(v) / len(v), 4)) for k, v in run.timings.items()}
        agg["failed_frames"] = len(run.failures)
        agg["failures"] = run.failures[:20]
        if run.error:
            agg["error"] = run.error
        rows[m] = agg
        by_comp[m] = {c: _aggregate([r for r in run.rows if r["composite"] == c]) for c in names}
    return {"methods": rows, "by_composite": by_comp}


def _f(v: Any, fmt: str = "{:.3f}") -> str:
    return "-" if v is None else fmt.format(v)


def to_markdown(payload: dict[str, Any]) -> str:
    """The benchmark's Markdown: one row per method, then per composite, then notes."""
    lines = [
        "| method | frames | recall | over-mask (x object) | PSNR dB | SSIM | PSNR true mask | SSIM true mask "
        "| segment s/f | fill s/f | checks s/f | flagged residue / flat / seam | failed |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for m, r in payload["methods"].items():
        spf = r["seconds_per_frame"]
        flags = " / ".join(_f(r.get(f"flagged_{c}"), "{:.0%}") for c in ("residue", "flat", "seam"))
        lines.append(
            f"| {m} | {r['frames']} | {_f(r['recall'])} | {_f(r['over_mask'])} | {_f(r['psnr'], '{:.2f}')} "
            f"| {_f(r['ssim'])} | {_f(r['psnr_true_mask'], '{:.2f}')} | {_f(r['ssim_true_mask'])} "
            f"| {_f(spf.get('segment'))} | {_f(spf.get('fill'))} | {_f(spf.get('checks'))} "
            f"| {flags} | {r['failed_frames']}{' (error)' if r.get('error') else ''} |"
        )
    lines += ["", "| composite | method | frames | recall | over-mask | PSNR dB | SSIM | PSNR true mask "
              "| SSIM true mask | residue | flat | seam |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for m, comps in payload["by_composite"].items():
        for c, r in comps.items():
            lines.append(f"| {c} | {m} | {r['frames']} | {_f(r['recall'])} | {_f(r['over_mask'])} "
                         f"| {_f(r['psnr'], '{:.2f}')} | {_f(r['ssim'])} | {_f(r['psnr_true_mask'], '{:.2f}')} "
                         f"| {_f(r['ssim_true_mask'])} | {_f(r['residue'])} | {_f(r['flat'])} | {_f(r['seam'])} |")
    lines.append("")
    comps = "; ".join(f"{c['name']}: {c['description']}, {c['frames']} frames" for c in payload["composites"])
    lines.append(f"Composites: {comps}. Device: {payload['device']}, {payload['machine']['cpu_count']} CPU cores. "
                 f"Segment backend: {payload['segment_backend']}, dilation {payload['dilate_px']} px; "
                 f"over-masking counted outside the object dilated by {payload['band_px']} px and outside the "
                 "base footage's own character, relative to the object's area (thin parts such as bicycle wheels "
                 "make that area small). PSNR/SSIM inside the pasted object; 'true mask': the same fill given "
                 "the pasted object's own mask. Seconds per frame: segment = the model, fill = the inpainter, "
                 "checks = the plate checks.")
    for m, why in payload["skipped"].items():
        lines.append(f"- skipped {m}: {why}")
    for m, why in payload["errors"].items():
        lines.append(f"- {m} failed: {why}")
    for note in payload["notes"]:
        lines.append(f"- note: {note}")
    return "\n".join(lines) + "\n"


__all__ = ["COMPOSITES", "DEFAULT_COMPOSITES", "DEFAULT_METHODS", "BenchResult", "Composite", "build_composite", "find_data_dir",
           "frame_measures", "method_unavailable", "plan_path", "run_bench", "strip_shadow_band", "to_markdown"]
