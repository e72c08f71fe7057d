"""``OUT/report.html``: is the run good? Statistics next to targets, histograms, per-shot strips,
a paged table of every frame (sortable, filterable), a seeded random sample of frames
(original | mask overlay | plate), the frames the automatic checks flag worst, and every plate the
training set leaves out with the reason ``cleanplate export-lora`` gives (:mod:`~cleanplate.report.training`).

The page opens offline from the file: CSS, scripts and the histograms (SVG) are inline, the
thumbnails are JPEG files in ``OUT/report_files/``, the table's data are script files in
``OUT/report_files/data/`` loaded on demand (:mod:`cleanplate.report.table`), every link is
relative. Missing or failed frames are shown as such, never as broken images. Inline scripts
report images that did not load (e.g. when ``report_files/`` was not copied along).
Modules: :mod:`~cleanplate.report.frames` (frames, thumbnails), :mod:`~cleanplate.report.stats`
(statistics, histograms), :mod:`~cleanplate.report.table` (the paged table).
"""

from __future__ import annotations

import random
import shutil
import time
from pathlib import Path
from typing import Any

from cleanplate.io.outputs import atomic_write_bytes
from cleanplate.qa.checks import CHECK_HELP, CHECKS
from cleanplate.report.evidence import instance_rows, verdict_summary
from cleanplate.report.frames import (
    FILES_DIR,
    PLATE_EXTS,
    FrameInfo,
    Thumbs,
    _env,
    _load_mask,
    _load_rgb,
    _read_json,
    _rel,
    find_plate,
    load_frames,
    overlay,
)
from cleanplate.report.stats import (
    check_thresholds,
    count_hist,
    coverage_hist,
    fmt,
    stage_times,
    stat,
    summary_rows,
    svg_histogram,
)
from cleanplate.report.table import shot_of, write_table
from cleanplate.report.training import training_view

LISTED = 200
"""Failed frames (and plates left out of the training set) listed by name; the table's filters reach all of them."""

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
        image = _load_rgb(Path(info.source))  # full size: a thumbs/ original is too small to check
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
    training = training_view(out, frames)
    by_id = {f.frame_id: f for f in frames}
    left_out = [{"frame": fid, "shot": shot_of(by_id[fid]), "reason": why} for fid, why in training.left_out.items()]
    flagged = []
    checked = [f for f in frames if f.checks and not f.failed]
    for name in CHECKS:
        hits = sorted((f for f in checked if name in (f.checks or {}).get("flags", [])),
                      key=lambda f: -float((f.checks or {}).get(name, 0.0)))
        flagged.append({"name": name, "help": CHECK_HELP[name], "threshold": thresholds[name],
                        "count": len(hits), "rows": [_row(f, thumbs) for f in hits[:worst]]})
    ok_seg = [f.segment for f in frames if f.segment.get("status") == "ok"]
    coverage = [float(r.get("coverage", 0.0)) for r in ok_seg]
    instances = [int(r.get("n_instances", 0)) for r in ok_seg]
    characters = [int(r.get("n_characters", 0)) for r in ok_seg]
    hists = []
    if ok_seg:
        hists += [coverage_hist(coverage), count_hist(instances, "instances per frame", "#6a5acd"),
                  count_hist(characters, "characters per frame", "#2e8b57")]
    temporal = [float(f.extra["temporal_fraction"]) for f in frames
                if isinstance(f.extra.get("temporal_fraction"), (int, float))]
    if temporal:
        edges = [i / 10 for i in range(11)]
        hists.append(svg_histogram(temporal, edges, [f"{10 * i}%" for i in range(10)],
                                   "share filled from other frames", "#d2691e"))
    failed_all = [{"frame": f.frame_id, "reason": f.failed} for f in frames if f.failed]
    failed = failed_all[:LISTED]
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
        "stats": summary_rows(frames, seg, fill, run) + [stat(
            "left out of the training set", len(left_out) / len(training.reasons) if training.reasons else None,
            "pct", note=f"{len(left_out)} of {len(training.reasons)} plates: {training.note()}")],
        "left_out": left_out[:LISTED],
        "left_out_total": len(left_out),
        "training_total": len(training.reasons),
        "training_note": training.note(),
        "stage_times": stage_times(run),
        "hists": hists,
        "sample": sample_rows,
        "sample_n": sample,
        "seed": seed,
        "flagged": flagged,
        "checks_present": bool(checked),
        "checks_computed": computed,
        "failed": failed,
        "failed_total": len(failed_all),
        "table": write_table(out, frames, thresholds, training.reasons),
        "checks": list(CHECKS),
        "table_thresholds": thresholds,
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
        facts = [(k.replace("_", " "), fmt(v) if isinstance(v, float) else str(v))
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


def _row(info: FrameInfo, thumbs: Thumbs) -> dict[str, Any]:
    checks = info.checks or {}
    seg = info.segment
    facts = []
    if "n_characters" in seg:
        facts.append(f"{seg['n_characters']} character(s)")
    if "coverage" in seg or "coverage" in info.fill:
        facts.append(f"coverage {fmt(seg.get('coverage', info.fill.get('coverage')), 'pct')}")
    for key, label in (("temporal_fraction", "from other frames"), ("inpainted_fraction", "invented")):
        if isinstance(info.extra.get(key), (int, float)):
            facts.append(f"{label} {fmt(info.extra[key], 'pct')}")
    scores = [{"name": c, "value": fmt(checks.get(c)), "flagged": c in checks.get("flags", [])}
              for c in CHECKS if c in checks]
    return {"id": info.frame_id, "urls": thumbs.frame(info), "facts": ", ".join(facts), "scores": scores,
            "instances": instance_rows(info.segment), "verdicts": verdict_summary(info.segment)}


__all__ = ["PLATE_EXTS", "FrameInfo", "_env", "_rel", "load_frames", "overlay", "summary_rows", "svg_histogram",
           "write_report"]
