"""Ground-truth benchmark: paste a moving DAVIS object over other footage, remove it, compare.

``cleanplate bench`` runs up to three families (``--cases``): ``fill`` (this module, the default),
``characters`` and ``still`` (:mod:`cleanplate.report.bench_suites`: every character and only
characters, issue 26; a large still character, issue 20). All write into one bench.json / bench.md.
The rest of this docstring is about ``fill``.

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
* the automatic checks' scores and flag rates per method, and each check's precision and recall
  on "the plate still shows >= 20 % of the pasted character", from the detected masks, the true
  masks and deliberately truncated ones (:mod:`cleanplate.report.bench_calib`).

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
over-masking are equal across methods by design. Each composite is one continuous shot; the shots
the run cut it into are recorded (``composites[].shots``, [first, last] frame of each) and a cut is
noted: the shot-level stages see only the windows between cuts, which changes the masks. Plates are written as PNG so JPEG does not
enter PSNR.
"""

from __future__ import annotations

import os
import platform
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cleanplate.config import Config, load_config
from cleanplate.errors import CleanplateError, InputError
from cleanplate.io.outputs import atomic_write_bytes, read_image_rgb, read_mask, write_image, write_json
from cleanplate.masks import dilate, dilation_radius
from cleanplate.qa.checks import CHECKS
from cleanplate.report.bench_calib import calibrate, shown_fraction, truncate
from cleanplate.report.bench_data import (
    COMPOSITES,
    DEFAULT_COMPOSITES,
    Composite,
    CompositeFrames,
    build_composite,
    find_data_dir,
    plan_path,
    strip_shadow_band,
)
from cleanplate.report.bench_summary import _summarise, to_markdown

DEFAULT_METHODS = ("opencv-telea", "opencv-ns", "patchmatch", "lama", "temporal+patchmatch")
"""Methods tried by default; those that are not available here are listed as skipped."""

Progress = Callable[[str], None]


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


def shot_runs(segment_dir: Path, ids: list[str]) -> list[list[int]]:
    """[first, last] frame index of each shot the segment run cut the composite into, in order.

    Read from ``segment_dir/instances_metadata.json`` (each frame's ``shot_id``); a frame with no
    record is left out. A composite is one continuous shot of its base clip, so more than one run is
    a false cut: the shot-level stages then see shorter windows, which changes the masks (a cut moved
    from frames 9 and 13 to frame 1 took tennis-over-bmx's over-masking from 1.9x to 8.1x).
    """
    import json

    try:
        frames = json.loads((segment_dir / "instances_metadata.json").read_text())["frames"]
    except (OSError, ValueError, KeyError):
        return []
    recs = frames.values() if isinstance(frames, dict) else frames
    shot = {r.get("frame_id"): r.get("shot_id") for r in recs if isinstance(r, dict)}
    runs: list[list[int]] = []
    last: object = None
    for k, fid in enumerate(ids):
        if fid not in shot:
            continue
        if runs and shot[fid] == last:
            runs[-1][1] = k
        else:
            runs.append([k, k])
        last = shot[fid]
    return runs


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
    calib: list[dict[str, Any]] = field(default_factory=list)  # every checked plate: shown share, flags, source
    timings: dict[str, list[float]] = field(default_factory=lambda: {"segment": [], "fill": [], "checks": []})
    failures: list[str] = field(default_factory=list)
    error: str | None = None


def _write_masks(comp: CompositeFrames, folder: Path, masks: list[np.ndarray]) -> Path:
    """Masks as a mask folder (the fill stage dilates them by masks.dilate)."""
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    for fid, m in zip(comp.ids, masks, strict=True):
        write_image(folder / "masks" / f"{fid}.png", m.astype(np.uint8) * 255)
    return folder


def _write_true_masks(comp: CompositeFrames, cdir: Path) -> None:
    """``truemask/``: the pasted object plus the base's character zone (a plate with every character
    removed); ``truncated/``: the same with the upper part of the pasted object left out."""
    _write_masks(comp, cdir / "truemask", [p | z for p, z in zip(comp.pasted, comp.exclusion, strict=True)])
    _write_masks(comp, cdir / "truncated", [truncate(p) | z for p, z in zip(comp.pasted, comp.exclusion, strict=True)])


def _check_variant(comp: CompositeFrames, folder: Path, source: str, checker: Any, saliency: list[np.ndarray],
                   run: _MethodRun) -> dict[str, dict[str, Any]]:
    """Check the plates of one fill of the composite as one shot; record them for the calibration."""
    from cleanplate.records import CheckFrame

    frames, masks = [], []
    for k, fid in enumerate(comp.ids):
        plate_path, mask_path = folder / "backgrounds" / f"{fid}.png", folder / "masks" / f"{fid}.png"
        if plate_path.is_file() and mask_path.is_file():
            removal = read_mask(mask_path)
            frames.append(CheckFrame(fid, read_image_rgb(comp.frames_dir / f"{fid}.png"),
                                     read_image_rgb(plate_path), removal, saliency[k], shot_id=0))
            masks.append((k, removal))
    t = time.perf_counter()
    results = checker.check_shot(frames) if frames else []
    if frames and source == "detected":  # the checks' time per frame, as a run would spend it
        run.timings["checks"] += [(time.perf_counter() - t) / len(frames)] * len(frames)
    out = {}
    for f, (k, removal), res in zip(frames, masks, results, strict=True):
        run.calib.append({"frame": f.frame_id, "composite": comp.spec.name, "source": source,
                          "shown": round(shown_fraction(comp.pasted[k], removal), 4), "flags": res["flags"],
                          **{c: res[c] for c in ("residue", "flat", "seam")}})
        out[f.frame_id] = res
    return out


def _measure_method(comp: CompositeFrames, cdir: Path, method: str, cfg: Config, checker: Any,
                    seg_spf: float | None, band: int, run: _MethodRun, saliency: list[np.ndarray]) -> None:
    """Fill the composite with the pipeline's masks, the true masks and the truncated ones; measure."""
    from cleanplate.pipeline import inpaint

    mdir = cdir / _safe(method)
    tdir = cdir / f"{_safe(method)}.truemask"
    xdir = cdir / f"{_safe(method)}.truncated"
    res = inpaint(cdir / "segment", mdir, cfg, frames=comp.frames_dir, force=True)
    true_res = inpaint(cdir / "truemask", tdir, cfg, frames=comp.frames_dir, force=True)
    trunc_res = inpaint(cdir / "truncated", xdir, cfg, frames=comp.frames_dir, force=True)
    fill_spf = res.fill.seconds_per_frame().get("fill") if res.fill else None
    for label, r in (("", res), (" (true mask)", true_res), (" (truncated mask)", trunc_res)):
        run.failures += [f"{fid}{label}: {why}" for fid, why in (r.fill.failures if r.fill else {}).items()]
    checked = _check_variant(comp, mdir, "detected", checker, saliency, run)
    _check_variant(comp, tdir, "true", checker, saliency, run)
    _check_variant(comp, xdir, "truncated", checker, saliency, run)
    for k, fid in enumerate(comp.ids):
        plate_path, mask_path = mdir / "backgrounds" / f"{fid}.png", mdir / "masks" / f"{fid}.png"
        if not plate_path.is_file() or not mask_path.is_file() or fid not in checked:
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
        checks = checked[fid]
        rec.update({c: checks[c] for c in CHECKS})
        rec["flags"] = checks["flags"]
        rec["shown"] = round(shown_fraction(comp.pasted[k], removal), 4)
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
    suites: list[str] | tuple[str, ...] = ("fill",),
    cases: list[str] | None = None,
    case_frames: int = 8,
    still_frames: int = 8,
    still_methods: list[str] | None = None,
) -> BenchResult:
    """Run the benchmark ``suites`` (:data:`~cleanplate.report.bench_suites.SUITES`); write bench.json and bench.md.

    ``fill``: build the composites, run segment + fill per method, measure. ``methods`` defaults to
    :data:`DEFAULT_METHODS`; unavailable ones are skipped with the reason. ``frames`` is per
    composite (clips shorter than that give what they have). Each method also fills the true
    (pasted) masks, dilated like the pipeline's, which measures the fill apart from the detection
    (``psnr_true_mask``, ``ssim_true_mask``). Its figures are the payload's top-level keys.

    ``characters``: the character ``cases`` (default all) with ``case_frames`` frames each, run by the
    default pipeline in ``out_dir/characters/`` (payload key ``characters``). ``still``: the large still
    character with ``still_frames`` frames filled by ``still_methods`` (payload key ``still``).
    """
    from cleanplate.devices import resolve_device
    from cleanplate.report.bench_still import still_markdown
    from cleanplate.report.bench_suites import (
        SUITES,
        characters_markdown,
        check_options,
        run_characters,
        run_still,
    )

    unknown = [s for s in suites if s not in SUITES]
    if unknown or not suites:
        raise InputError(f"unknown bench case family {', '.join(unknown) or '(none)'} (known: {', '.join(SUITES)})")
    check_options(cases, case_frames, still_methods, still_frames)
    say = progress or (lambda _msg: None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data_dir = find_data_dir(data)
    base_cfg = config or load_config()
    device = resolve_device(base_cfg.run.device)
    payload: dict[str, Any] = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "data": str(data_dir),
        "device": device,
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "threads": base_cfg.run.threads},
        "suites": list(suites),
    }
    parts: list[str] = []
    if "fill" in suites:
        payload.update(_run_fill(out, methods, frames, composites, data_dir, base_cfg, device, say))
        parts.append(to_markdown(payload))
    if "characters" in suites:
        payload["characters"] = run_characters(out / "characters", base_cfg, cases=cases, frames=case_frames,
                                               data=data_dir, progress=say)
        parts.append("\n".join(["## Character cases", "", *characters_markdown(payload["characters"])]) + "\n")
    if "still" in suites:
        payload["still"] = run_still(base_cfg, frames=still_frames, methods=still_methods, data=data_dir,
                                     progress=say)
        parts.append("\n".join(["## Still character (issue 20)", "", *still_markdown(payload["still"])]) + "\n")
    md = "\n".join(parts)
    json_path, md_path = out / "bench.json", out / "bench.md"
    write_json(json_path, payload)
    atomic_write_bytes(md_path, md.encode())
    return BenchResult(json_path, md_path, payload, md)


def _run_fill(out: Path, methods: list[str] | tuple[str, ...] | None, frames: int, composites: list[str] | None,
              data_dir: Path, base_cfg: Config, device: str, say: Progress) -> dict[str, Any]:
    """The fill suite: composites, segment once each, every method's fills measured; its payload keys."""
    from cleanplate.pipeline import segment
    from cleanplate.qa.checks import PlateChecker
    from cleanplate.segment.saliency import SaliencyPredictor

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
    predictor = SaliencyPredictor.for_config(seg_cfg, device)
    checker = PlateChecker(base_cfg.qa, device, threads=base_cfg.run.threads)
    checker.load()
    bands: dict[str, int] = {}
    notes: list[str] = []
    built: list[dict[str, Any]] = []
    for name in names:
        spec, cdir = COMPOSITES[name], out / name
        say(f"{name}: building {frames} frames")
        comp = build_composite(spec, data_dir, cdir, frames, seg_cfg, predictor)
        _write_true_masks(comp, cdir)
        band = bands[name] = dilation_radius(seg_cfg.masks.dilate, seg_cfg.masks.dilate_relative,
                                             comp.truth[0].shape) + 6
        saliency = [checker._predictor.predict(read_image_rgb(comp.frames_dir / f"{fid}.png")) for fid in comp.ids]
        notes += comp.notes
        built.append({"name": name, "description": spec.description, "frames": len(comp.ids),
                      "size": list(comp.truth[0].shape[1::-1]),
                      "object_area_mean": round(float(np.mean([p.sum() for p in comp.pasted])), 1)})
        say(f"{name}: segment")
        seg = segment(comp.frames_dir, cdir / "segment", seg_cfg, force=True)
        seg_spf = seg.segment.seconds_per_frame().get("segment") if seg.segment else None
        cuts = built[-1]["shots"] = shot_runs(cdir / "segment", comp.ids)
        if len(cuts) > 1:
            notes.append(f"{name}: the shots stage cut this continuous shot into {len(cuts)} (frames "
                         + ", ".join(f"{a}-{b}" for a, b in cuts) + "); the shot-level stages saw those windows")
        for method, run in runs.items():
            if run.error is not None:
                continue
            say(f"{name}: fill {method}")
            try:
                _measure_method(comp, cdir, method, _method_config(base_cfg, method), checker, seg_spf, band, run,
                                saliency)
            except CleanplateError as exc:
                run.error = str(exc)
                say(f"{method} failed: {exc}")
    summary = _summarise(runs, names)
    return {
        "frames_per_composite": frames,
        "composites": built,
        "dilate": seg_cfg.masks.dilate,
        "dilate_relative": seg_cfg.masks.dilate_relative,
        "band_px": bands,
        "segment_backend": seg_cfg.segment.backend,
        "thresholds": checker.thresholds,
        "methods": summary["methods"],
        "by_composite": summary["by_composite"],
        "skipped": skipped,
        "errors": {m: r.error for m, r in runs.items() if r.error},
        "notes": notes,
        "frames": {m: r.rows for m, r in runs.items()},
        "calibration": {m: calibrate(r.calib, CHECKS) for m, r in runs.items() if r.calib},
        "calibration_plates": {m: r.calib for m, r in runs.items()},
    }


__all__ = ["COMPOSITES", "DEFAULT_COMPOSITES", "DEFAULT_METHODS", "BenchResult", "Composite", "build_composite", "find_data_dir",
           "frame_measures", "method_unavailable", "plan_path", "run_bench", "shot_runs", "strip_shadow_band",
           "to_markdown"]
