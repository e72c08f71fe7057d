"""``OUT/report.html``: is the run good? Statistics next to targets, histograms, a seeded random
sample of frames (original | mask overlay | plate), the frames the automatic checks flag worst.

The page is self-contained and opens offline: CSS and the histograms (SVG) are inline, the
thumbnails are JPEG files in ``OUT/report_files/``, every link is relative. Missing or failed
frames are shown as such, never as broken images. A small inline script reports images that
did not load (e.g. when ``report_files/`` was not copied along).
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from jinja2 import Environment, PackageLoader, select_autoescape

from cleanplate.io.outputs import atomic_write_bytes, encode_image, read_image_rgb, read_mask
from cleanplate.qa.checks import CHECK_HELP, CHECKS

THUMB_WIDTH = 360
FILES_DIR = "report_files"
PLATE_EXTS = (".jpg", ".png", ".jpeg")


def _env() -> Environment:
    return Environment(loader=PackageLoader("cleanplate.report", "templates"),
                       autoescape=select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# ------------------------------------------------------------------------------------- frames

@dataclass
class FrameInfo:
    """What the metadata files say about one frame."""

    frame_id: str
    index: int
    source: str | None = None
    segment: dict[str, Any] = field(default_factory=dict)
    fill: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> str | None:
        """The failure reason of the first failed stage, or None."""
        for stage, rec in (("segment", self.segment), ("fill", self.fill)):
            if rec and rec.get("status") not in (None, "ok"):
                return f"{stage}: {rec.get('error') or 'failed'}"
        return None

    @property
    def checks(self) -> dict[str, Any] | None:
        c = self.fill.get("checks")
        return c if isinstance(c, dict) else None

    @property
    def extra(self) -> dict[str, Any]:
        e = self.fill.get("extra")
        return e if isinstance(e, dict) else {}


def load_frames(out: Path) -> tuple[list[FrameInfo], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Frames (in input order) and the three metadata documents (empty when missing or unreadable)."""
    seg = _read_json(out / "instances_metadata.json")
    fill = _read_json(out / "inpainting_metadata.json")
    run = _read_json(out / "run.json")
    frames: dict[str, FrameInfo] = {}
    for stage, doc in (("segment", seg), ("fill", fill)):
        recs = doc.get("frames") if isinstance(doc.get("frames"), dict) else {}
        for fid, rec in recs.items():
            if not isinstance(rec, dict):
                continue
            info = frames.setdefault(fid, FrameInfo(fid, int(rec.get("index", len(frames)) or 0)))
            setattr(info, stage, rec)
            info.source = info.source or rec.get("source")
    return sorted(frames.values(), key=lambda f: (f.index, f.frame_id)), seg, fill, run


def find_plate(out: Path, frame_id: str) -> Path | None:
    for ext in PLATE_EXTS:
        p = out / "backgrounds" / f"{frame_id}{ext}"
        if p.is_file():
            return p
    return None


# --------------------------------------------------------------------------------- thumbnails

class Thumbs:
    """Writes thumbnails into ``report_files/`` once each; returns their relative URLs."""

    def __init__(self, out: Path, width: int = THUMB_WIDTH) -> None:
        self.out, self.width = out, width
        self.dir = out / FILES_DIR
        self.done: dict[str, dict[str, str | None]] = {}
        self.n = 0

    def _save(self, arr: np.ndarray, name: str) -> str:
        h, w = arr.shape[:2]
        if w > self.width:
            arr = cv2.resize(arr, (self.width, max(1, round(h * self.width / w))), interpolation=cv2.INTER_AREA)
        atomic_write_bytes(self.dir / name, encode_image(arr, ".jpg", 85))
        return f"{FILES_DIR}/{name}"

    def frame(self, info: FrameInfo) -> dict[str, str | None]:
        """URLs of the original, the mask overlay and the plate thumbnails (None where missing)."""
        if info.frame_id in self.done:
            return self.done[info.frame_id]
        stem = f"f{self.n:05d}"
        self.n += 1
        original = _load_rgb(Path(info.source)) if info.source else None  # None for video frames
        plate_path = find_plate(self.out, info.frame_id)
        plate = _load_rgb(plate_path) if plate_path else None
        mask = _load_mask(self.out / "masks" / f"{info.frame_id}.png")
        urls: dict[str, str | None] = {"original": None, "overlay": None, "plate": None}
        if original is not None:
            urls["original"] = self._save(original, f"{stem}_orig.jpg")
        base = original if original is not None else plate
        if base is not None and mask is not None and mask.shape == base.shape[:2]:
            urls["overlay"] = self._save(overlay(base, mask), f"{stem}_mask.jpg")
        if plate is not None:
            urls["plate"] = self._save(plate, f"{stem}_plate.jpg")
        urls["plate_full"] = _rel(plate_path, self.out) if plate_path else None
        mpath = self.out / "masks" / f"{info.frame_id}.png"
        urls["mask_full"] = _rel(mpath, self.out) if mpath.is_file() else None
        urls["original_full"] = _rel(Path(info.source), self.out) if original is not None and info.source else None
        self.done[info.frame_id] = urls
        return urls


def _rel(path: Path, start: Path) -> str:
    try:
        rel = os.path.relpath(path.resolve(), start.resolve())
    except ValueError:  # another drive (Windows)
        return path.resolve().as_uri()
    return Path(rel).as_posix()


def _load_rgb(path: Path) -> np.ndarray | None:
    try:
        return read_image_rgb(path) if path.is_file() else None
    except OSError:
        return None


def _load_mask(path: Path) -> np.ndarray | None:
    try:
        return read_mask(path) if path.is_file() else None
    except OSError:
        return None


def overlay(image: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int] = (255, 40, 40)) -> np.ndarray:
    """The frame with the mask tinted (45 %) and outlined: HxWx3 uint8 RGB."""
    out = image.copy()
    m = mask.astype(bool)
    tint = np.array(colour, np.float32)
    out[m] = (0.55 * out[m].astype(np.float32) + 0.45 * tint).astype(np.uint8)
    contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, colour, max(1, round(max(image.shape[:2]) / 400)))
    return out


# --------------------------------------------------------------------------------- histograms

def svg_histogram(values: list[float], edges: list[float], labels: list[str], title: str,
                  colour: str = "#3b7dd8", width: int = 420, height: int = 170) -> str:
    """A bar chart of ``values`` binned by ``edges`` (len(labels) == len(edges) - 1), as SVG markup."""
    counts = [0] * (len(edges) - 1)
    for v in values:
        for i in range(len(counts)):
            last = i == len(counts) - 1
            if edges[i] <= v < edges[i + 1] or (last and v == edges[-1]):
                counts[i] += 1
                break
    top = max(counts) if counts and max(counts) > 0 else 1
    left, bottom, pad_top = 34, 34, 22
    plot_w, plot_h = width - left - 8, height - bottom - pad_top
    bw = plot_w / max(len(counts), 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{escape(title)}" class="hist">',
             f'<text x="{left}" y="14" class="t">{escape(title)} ({len(values)} frames)</text>',
             f'<line x1="{left}" y1="{pad_top + plot_h}" x2="{left + plot_w}" y2="{pad_top + plot_h}" class="ax"/>',
             f'<text x="{left - 4}" y="{pad_top + 8}" class="y">{top}</text>',
             f'<text x="{left - 4}" y="{pad_top + plot_h}" class="y">0</text>']
    step = max(1, math.ceil(len(labels) / 10))
    for i, c in enumerate(counts):
        h = plot_h * c / top
        x = left + i * bw
        parts.append(f'<rect x="{x + 1:.1f}" y="{pad_top + plot_h - h:.1f}" width="{max(bw - 2, 1):.1f}" '
                     f'height="{h:.1f}" fill="{colour}"><title>{escape(labels[i])}: {c}</title></rect>')
        if i % step == 0:
            parts.append(f'<text x="{x + bw / 2:.1f}" y="{pad_top + plot_h + 14}" class="x">{escape(labels[i])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _coverage_hist(values: list[float]) -> str:
    edges = [i / 20 for i in range(21)]
    labels = [f"{5 * i}%" for i in range(20)]
    return svg_histogram(values, edges, labels, "mask coverage")


def _count_hist(values: list[int], title: str, colour: str) -> str:
    top = max(values, default=0)
    edges = [float(i) for i in range(top + 2)]
    labels = [str(i) for i in range(top + 1)]
    return svg_histogram([float(v) for v in values], edges, labels, title, colour)


# ------------------------------------------------------------------------------------ summary

def _fmt(v: Any, kind: str = "num") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if kind == "pct":
        return f"{100 * float(v):.1f} %"
    if kind == "int":
        return f"{int(v)}"
    return f"{float(v):.3g}"


def _stat(label: str, value: Any, kind: str = "num", target: str = "", ok: bool | None = None,
          note: str = "") -> dict[str, Any]:
    return {"label": label, "value": _fmt(value, kind), "target": target, "ok": ok, "note": note}


def summary_rows(frames: list[FrameInfo], seg: dict[str, Any], fill: dict[str, Any],
                 run: dict[str, Any]) -> list[dict[str, Any]]:
    """The statistics users track, each next to its target where the project sets one."""
    ss, fs = seg.get("summary") or {}, fill.get("summary") or {}
    total = len(frames)
    failed = sum(1 for f in frames if f.failed)
    max_failed = ((run.get("config") or {}).get("run") or {}).get("max_failed", 0.05)
    failed_frac = failed / total if total else None
    success = fs.get("success_rate")
    seg_run, fill_run = run.get("segment") or {}, run.get("fill") or {}
    secs = [s.get("seconds") for s in (seg_run, fill_run) if isinstance(s.get("seconds"), (int, float))]
    done = max(int(seg_run.get("done") or 0), int(fill_run.get("done") or 0))
    e2e = done / sum(secs) if secs and sum(secs) > 0 and done else None
    rows = [
        _stat("frames", total, "int", note=f"{total - failed} ok, {failed} failed"),
        _stat("instances per frame (mean)", ss.get("instances_per_frame"),
              note=f"characters per frame {_fmt(ss.get('characters_per_frame'))}"),
        _stat("frames with ≥ 2 characters", (ss.get("frames_with_2plus_characters_pct") or 0) / 100
              if ss else None, "pct", note=f"{ss.get('frames_with_2plus_characters', '—')} frames; "
              f"{ss.get('frames_without_characters', '—')} frames without any"),
        _stat("failed frames", failed_frac, "pct", f"< {100 * max_failed:.0f} %",
              None if failed_frac is None else failed_frac < max_failed),
        _stat("fill success", success, "pct", "> 95 %", None if success is None else success > 0.95,
              note=f"method {fs.get('method', '—')}"),
        _stat("mean mask coverage", ss.get("mean_mask_coverage", fs.get("mean_mask_coverage")), "pct",
              note=f"before dilation {_fmt(ss.get('mean_mask_coverage_undilated'), 'pct')}"),
        _stat("images/s, segment", seg_run.get("images_per_s")),
        _stat("images/s, fill", fill_run.get("images_per_s")),
        _stat("images/s, end to end", e2e, note="frames done / (segment + fill seconds)"),
    ]
    checked = [f for f in frames if f.checks]
    thresholds = check_thresholds(run)
    for name in CHECKS:
        n = sum(1 for f in checked if name in (f.checks or {}).get("flags", []))
        frac = n / len(checked) if checked else None
        rows.append(_stat(f"flagged: {name}", frac, "pct",
                          note=f"{n} of {len(checked)} checked frames; threshold {thresholds.get(name, '—')}"))
    temporal = [f.extra.get("temporal_fraction") for f in frames if "temporal_fraction" in f.extra]
    inpainted = [f.extra.get("inpainted_fraction") for f in frames if "inpainted_fraction" in f.extra]
    if temporal:
        rows.append(_stat("filled from other frames (mean)", _mean(temporal), "pct",
                          note="extra.temporal_fraction: share of the mask filled with real pixels"))
    if inpainted:
        rows.append(_stat("invented by the inpainter (mean)", _mean(inpainted), "pct",
                          note="extra.inpainted_fraction"))
    return rows


def _mean(values: list[Any]) -> float | None:
    vals = [float(v) for v in values if isinstance(v, (int, float))]
    return sum(vals) / len(vals) if vals else None


def check_thresholds(run: dict[str, Any]) -> dict[str, float]:
    """The thresholds the run used (run.json's config), else the current defaults."""
    from cleanplate.config import QAConfig

    qa = (run.get("config") or {}).get("qa") or {}
    defaults = QAConfig()
    return {name: qa.get(f"{name}_threshold", getattr(defaults, f"{name}_threshold")) for name in CHECKS}


# ------------------------------------------------------------------------------------- report

def _compute_missing_checks(out: Path, frames: list[FrameInfo], run: dict[str, Any]) -> int:
    """Score the ok frames that have no stored checks (older outputs, qa disabled). Returns how many."""
    from cleanplate.config import QAConfig
    from cleanplate.qa.checks import PlateChecker

    qa_data = (run.get("config") or {}).get("qa") or {}
    try:
        qa = QAConfig.model_validate(qa_data)
    except ValueError:
        qa = QAConfig()
    checker: PlateChecker | None = None
    n = 0
    for info in frames:
        if info.failed or info.checks or not info.source:
            continue
        plate_path = find_plate(out, info.frame_id)
        image = _load_rgb(Path(info.source))
        mask = _load_mask(out / "masks" / f"{info.frame_id}.png")
        plate = _load_rgb(plate_path) if plate_path else None
        if image is None or plate is None or mask is None or not (image.shape == plate.shape
                                                                  and mask.shape == image.shape[:2]):
            continue
        checker = checker or PlateChecker(qa, "cpu")
        info.fill = {**info.fill, "checks": checker.check(image, plate, mask)}
        n += 1
    return n


def write_report(out_dir: str | Path, sample: int = 16, seed: int = 0, worst: int = 6,
                 compute_checks: bool = False) -> Path:
    """Write ``OUT/report.html`` (thumbnails in ``OUT/report_files/``) and return its path.

    ``sample`` frames are drawn at random with ``seed`` among the frames that have a plate;
    ``worst`` frames are shown per check. With ``compute_checks`` the checks are run now on
    frames whose records hold none (CPU, ~0.4 s per 1024-px frame).
    """
    out = Path(out_dir)
    frames, seg, fill, run = load_frames(out)
    computed = _compute_missing_checks(out, frames, run) if compute_checks else 0
    files = out / FILES_DIR
    if files.is_dir():
        shutil.rmtree(files)
    files.mkdir(parents=True, exist_ok=True)
    thumbs = Thumbs(out)

    with_plate = [f for f in frames if not f.failed and find_plate(out, f.frame_id)]
    rng = random.Random(seed)
    picked = sorted(rng.sample(with_plate, min(sample, len(with_plate))), key=lambda f: f.index)
    sample_rows = [_row(f, thumbs) for f in picked]

    thresholds = check_thresholds(run)
    flagged = []
    checked = [f for f in frames if f.checks and not f.failed]
    for name in CHECKS:
        hits = sorted((f for f in checked if name in (f.checks or {}).get("flags", [])),
                      key=lambda f: -float((f.checks or {}).get(name, 0.0)))
        flagged.append({"name": name, "help": CHECK_HELP[name], "threshold": thresholds[name],
                        "count": len(hits), "rows": [_row(f, thumbs) for f in hits[:worst]],
                        "all": [(f.frame_id, (f.checks or {}).get(name)) for f in hits]})
    ok_seg = [f.segment for f in frames if f.segment.get("status") == "ok"]
    coverage = [float(r.get("coverage", 0.0)) for r in ok_seg]
    instances = [int(r.get("n_instances", 0)) for r in ok_seg]
    characters = [int(r.get("n_characters", 0)) for r in ok_seg]
    hists = []
    if ok_seg:
        hists += [_coverage_hist(coverage), _count_hist(instances, "instances per frame", "#6a5acd"),
                  _count_hist(characters, "characters per frame", "#2e8b57")]
    temporal = [float(f.extra["temporal_fraction"]) for f in frames
                if isinstance(f.extra.get("temporal_fraction"), (int, float))]
    if temporal:
        edges = [i / 10 for i in range(11)]
        hists.append(svg_histogram(temporal, edges, [f"{10 * i}%" for i in range(10)],
                                   "share filled from other frames", "#d2691e"))
    failed = [{"frame": f.frame_id, "reason": f.failed} for f in frames if f.failed]
    missing = [f.frame_id for f in frames if not f.failed and f.fill and not find_plate(out, f.frame_id)]
    cfg = run.get("config") or {}
    dataset = _dataset_section(out, thumbs)
    context = {
        "title": f"cleanplate report — {out.resolve().name}",
        "out": str(out.resolve()),
        "created": time.strftime("%Y-%m-%d %H:%M"),
        "version": run.get("cleanplate", "—"),
        "method": (cfg.get("fill") or {}).get("method", (fill.get("summary") or {}).get("method", "—")),
        "backend": (cfg.get("segment") or {}).get("backend", "—"),
        "device": (run.get("fill") or run.get("segment") or {}).get("device", "—"),
        "input": ((run.get("segment") or {}).get("input") or {}).get("path", "—"),
        "stats": summary_rows(frames, seg, fill, run),
        "stage_times": _stage_times(run),
        "hists": hists,
        "sample": sample_rows,
        "sample_n": sample,
        "seed": seed,
        "flagged": flagged,
        "checks_present": bool(checked),
        "checks_computed": computed,
        "failed": failed,
        "missing": missing,
        "has_metadata": bool(seg or fill),
        "temporal": bool(temporal),
        "dataset": dataset,
    }
    html = _env().get_template("report.html.j2").render(**context)
    path = out / "report.html"
    atomic_write_bytes(path, html.encode("utf-8"))
    return path


_DATASET_STEPS = (("dedupe", "Near-duplicates"), ("organize", "Scene clusters"), ("export", "LoRA export"))


def _dataset_section(out: Path, thumbs: Thumbs) -> list[dict[str, Any]]:
    """What ``cleanplate dedupe / organize / export-lora`` did (OUT/dataset/*.json), with cluster sheets."""
    steps = []
    for step, title in _DATASET_STEPS:
        data = _read_json(out / "dataset" / f"{step}.json")
        if not data:
            continue
        summary = data.get("summary") or {}
        facts = [(k.replace("_", " "), _fmt(v) if isinstance(v, float) else str(v))
                 for k, v in summary.items() if not isinstance(v, (dict, list)) and v is not None]
        sheets = []
        if step == "organize":
            for label in summary.get("labels") or []:
                sheet = out / "dataset" / "clusters" / f"{label}.jpg"
                arr = _load_rgb(sheet) if sheet.is_file() else None
                if arr is not None:
                    thumbs.n += 1
                    sheets.append({"label": label, "url": thumbs._save(arr, f"cluster{thumbs.n:05d}.jpg")})
        steps.append({"step": step, "title": title, "facts": facts, "sheets": sheets})
    return steps


def _stage_times(run: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for stage in ("segment", "fill"):
        st = run.get(stage) or {}
        for step, secs in (st.get("seconds_per_frame") or {}).items():
            rows.append({"stage": stage, "step": step, "seconds": _fmt(secs)})
    return rows


def _row(info: FrameInfo, thumbs: Thumbs) -> dict[str, Any]:
    checks = info.checks or {}
    seg = info.segment
    facts = []
    if "n_characters" in seg:
        facts.append(f"{seg['n_characters']} character(s)")
    if "coverage" in seg or "coverage" in info.fill:
        facts.append(f"coverage {_fmt(seg.get('coverage', info.fill.get('coverage')), 'pct')}")
    for key, label in (("temporal_fraction", "from other frames"), ("inpainted_fraction", "invented")):
        if isinstance(info.extra.get(key), (int, float)):
            facts.append(f"{label} {_fmt(info.extra[key], 'pct')}")
    scores = [{"name": c, "value": _fmt(checks.get(c)), "flagged": c in checks.get("flags", [])}
              for c in CHECKS if c in checks]
    return {"id": info.frame_id, "urls": thumbs.frame(info), "facts": ", ".join(facts), "scores": scores}


__all__ = ["FrameInfo", "load_frames", "overlay", "svg_histogram", "summary_rows", "write_report"]
