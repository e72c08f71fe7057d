"""The benchmark's summary: per-method and per-composite means, and the Markdown table."""

from __future__ import annotations

import math
from typing import Any

from cleanplate.qa.checks import CHECKS
from cleanplate.report.bench_calib import calibration_markdown


def _mean(values: list[float]) -> float | None:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return sum(vals) / len(vals) if vals else None


_MEASURES = ("recall", "over_mask", "over_mask_frame", "psnr", "ssim", "psnr_true_mask", "ssim_true_mask")


def _aggregate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"frames": len(rows)}
    for key in (*_MEASURES, *CHECKS):
        v = _mean([r.get(key) for r in rows])
        out[key] = None if v is None else round(v, 4)
    for c in CHECKS:
        out[f"flagged_{c}"] = round(sum(c in r["flags"] for r in rows) / len(rows), 4) if rows else None
    return out


def _summarise(runs: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """Per method (a ``bench._MethodRun`` each): means, seconds per frame, failures; and per composite."""
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
    lines += calibration_markdown(payload.get("calibration") or {}, CHECKS)
    lines.append("")
    for m, why in payload["errors"].items():
        lines.append(f"- {m} failed: {why}")
    for note in payload["notes"]:
        lines.append(f"- note: {note}")
    return "\n".join(lines) + "\n"


__all__ = ["to_markdown"]
