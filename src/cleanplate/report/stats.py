"""The report's numbers: statistics next to their targets, and SVG histograms (binned with ``np.histogram``)."""

from __future__ import annotations

import math
from html import escape
from typing import Any

import numpy as np

from cleanplate.qa.checks import CHECKS
from cleanplate.report.evidence import all_scenery, has_scenery
from cleanplate.report.frames import FrameInfo

E2E_TARGET = 1 / 1.5
"""The project's speed target (issue 13): the default run at 1.5 s per frame or less on 2 CPU cores."""


def svg_histogram(values: list[float], edges: list[float], labels: list[str], title: str,
                  colour: str = "#3b7dd8", width: int = 420, height: int = 170) -> str:
    """A bar chart of ``values`` binned by ``edges`` (len(labels) == len(edges) - 1), as SVG markup."""
    counts = np.histogram(np.asarray(values, dtype=np.float64), bins=np.asarray(edges, dtype=np.float64))[0].tolist()
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


def coverage_hist(values: list[float]) -> str:
    edges = [i / 20 for i in range(21)]
    labels = [f"{5 * i}%" for i in range(20)]
    return svg_histogram(values, edges, labels, "mask coverage")


def count_hist(values: list[int], title: str, colour: str) -> str:
    top = max(values, default=0)
    edges = [float(i) for i in range(top + 2)]
    labels = [str(i) for i in range(top + 1)]
    return svg_histogram([float(v) for v in values], edges, labels, title, colour)


def fmt(v: Any, kind: str = "num") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if kind == "pct":
        return f"{100 * float(v):.1f} %"
    if kind == "int":
        return f"{int(v)}"
    return f"{float(v):.3g}"


def stat(label: str, value: Any, kind: str = "num", target: str = "", ok: bool | None = None,
          note: str = "") -> dict[str, Any]:
    return {"label": label, "value": fmt(value, kind), "target": target, "ok": ok, "note": note}


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
        stat("frames", total, "int", note=f"{total - failed} ok, {failed} failed"),
        stat("instances per frame (mean)", ss.get("instances_per_frame"),
              note=f"characters per frame {fmt(ss.get('characters_per_frame'))}"),
        stat("frames with ≥ 2 characters", (ss.get("frames_with_2plus_characters_pct") or 0) / 100
              if ss else None, "pct", note=f"{ss.get('frames_with_2plus_characters', '—')} frames; "
              f"{ss.get('frames_without_characters', '—')} frames without any"),
        stat("failed frames", failed_frac, "pct", f"< {100 * max_failed:.0f} %",
              None if failed_frac is None else failed_frac < max_failed),
        stat("fill success", success, "pct", "> 95 %", None if success is None else success > 0.95,
              note=f"method {fs.get('method', '—')}"),
        stat("mean mask coverage", ss.get("mean_mask_coverage", fs.get("mean_mask_coverage")), "pct",
              note=f"before dilation {fmt(ss.get('mean_mask_coverage_undilated'), 'pct')}"),
        stat("images/s, segment", seg_run.get("images_per_s")),
        stat("images/s, fill", fill_run.get("images_per_s")),
        stat("images/s, end to end", e2e, target=f"≥ {E2E_TARGET:.2f}",
             ok=None if e2e is None else e2e >= E2E_TARGET,
             note="frames done / (segment + fill seconds); target: 1.5 s per frame on 2 CPU cores"),
    ]
    detected = [f for f in frames if f.segment.get("status") == "ok" and f.segment.get("instances")]
    if detected:
        scen = sum(all_scenery(f.segment) for f in detected)
        some = sum(has_scenery(f.segment) for f in detected)
        rows.append(stat("frames whose detections were all judged scenery", scen / len(detected), "pct",
                         note=f"{scen} of {len(detected)} frames with detections (their masks hold no character); "
                              f"{some} frames have at least one detection judged scenery"))
    checked = [f for f in frames if f.checks]
    thresholds = check_thresholds(run)
    for name in CHECKS:
        n = sum(1 for f in checked if name in (f.checks or {}).get("flags", []))
        frac = n / len(checked) if checked else None
        rows.append(stat(f"flagged: {name}", frac, "pct",
                          note=f"{n} of {len(checked)} checked frames; threshold {thresholds.get(name, '—')}"))
    temporal = [f.extra.get("temporal_fraction") for f in frames if "temporal_fraction" in f.extra]
    inpainted = [f.extra.get("inpainted_fraction") for f in frames if "inpainted_fraction" in f.extra]
    if temporal:
        rows.append(stat("filled from other frames (mean)", _mean(temporal), "pct",
                          note="extra.temporal_fraction: share of the mask filled with real pixels"))
    if inpainted:
        rows.append(stat("invented by the inpainter (mean)", _mean(inpainted), "pct",
                          note="extra.inpainted_fraction"))
    return rows


def _mean(values: list[Any]) -> float | None:
    vals = [float(v) for v in values if isinstance(v, (int, float))]
    return sum(vals) / len(vals) if vals else None


def stage_times(run: dict[str, Any]) -> list[dict[str, Any]]:
    """Seconds per frame of each step of each stage, from run.json."""
    rows = []
    for stage in ("segment", "fill"):
        st = run.get(stage) or {}
        for step, secs in (st.get("seconds_per_frame") or {}).items():
            rows.append({"stage": stage, "step": step, "seconds": fmt(secs)})
    return rows


def check_thresholds(run: dict[str, Any]) -> dict[str, float]:
    """The thresholds the run used (run.json's config), else the current defaults."""
    from cleanplate.config import QAConfig

    qa = (run.get("config") or {}).get("qa") or {}
    defaults = QAConfig()
    return {name: qa.get(f"{name}_threshold", getattr(defaults, f"{name}_threshold")) for name in CHECKS}


__all__ = ["check_thresholds", "coverage_hist", "count_hist", "fmt", "stage_times", "summary_rows", "svg_histogram"]
