"""Calibration of the plate checks against the benchmark's ground truth.

Each composite frame is filled three ways per method, so the checks meet both kinds of plate:

* ``detected``: the pipeline's masks as they come (they miss parts of the pasted object at times);
* ``true``: the pasted object's own mask plus the base footage's character zone: a plate with
  every character removed (the fill is judged elsewhere, here it is a correct plate);
* ``truncated``: the true mask with the upper part of the pasted object cut off
  (:func:`truncate`, :data:`TRUNCATE` of its pixels), so the plate still shows that part.

The truth of a plate is how much of the pasted object it still shows: the share of the object's
pixels outside the removal mask (:func:`shown_fraction`). A plate *still shows the character*
when that share is at least :data:`SHOWN` (20 %). For each check, a flag is a prediction that it
does: :func:`calibrate` gives precision, recall, and false flags (share of correct plates — those
showing less than :data:`SHOWN` — that are flagged).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cleanplate.qa.verdict import EXPORT_RESIDUE

SHOWN = 0.2
"""A plate still shows the character when at least this share of it is outside the removal mask."""
TRUNCATE = 0.6
"""Share of the pasted object's pixels (its upper part) left out of a truncated mask; the fill stage's dilation
gives some of it back, so the plates show less than that."""
SOURCES = ("detected", "true", "truncated")


def truncate(mask: np.ndarray, share: float = TRUNCATE) -> np.ndarray:
    """The HxW bool ``mask`` without its upper rows holding ``share`` of its pixels (a head and torso
    left out of the mask, the way a detector misses them)."""
    rows = mask.sum(axis=1)
    total = int(rows.sum())
    if total == 0:
        return mask.copy()
    cut = int(np.searchsorted(np.cumsum(rows), share * total)) + 1
    out = mask.copy()
    out[:cut] = False
    return out


def shown_fraction(pasted: np.ndarray, removal: np.ndarray) -> float:
    """Share of the object's pixels (HxW bool ``pasted``) outside the removal mask (HxW bool)."""
    area = int(pasted.sum())
    return float((pasted & ~removal).sum()) / area if area else 0.0


CURVE = (0.02, 0.05, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5)
"""Thresholds at which :func:`calibration_curve` scores a check."""


BAR_SHOWN = 0.1
"""The line the training set's residue bar (:data:`cleanplate.dataset.ranking.EXPORT_RESIDUE`) is
judged at: a LoRA image should not show a tenth of a character."""


def calibration_curve(rows: list[dict[str, Any]], check: str, thresholds: tuple[float, ...] = CURVE,
                      shown: float = SHOWN) -> list[dict[str, Any]]:
    """Precision, recall and false flags of ``check`` if it flagged plates scoring above each threshold;
    rows carry the check's score under its name (``{"shown": float, "residue": float, ...}``); a plate
    counts as showing the character from ``shown`` of it on."""
    pos = [float(r[check]) for r in rows if r["shown"] >= shown and r.get(check) is not None]
    neg = [float(r[check]) for r in rows if r["shown"] < shown and r.get(check) is not None]
    out = []
    for th in thresholds:
        tp, fp = sum(v > th for v in pos), sum(v > th for v in neg)
        out.append({"threshold": th, "precision": round(tp / (tp + fp), 4) if tp + fp else None,
                    "recall": round(tp / len(pos), 4) if pos else None,
                    "false_flags": round(fp / len(neg), 4) if neg else None})
    return out


def calibrate(rows: list[dict[str, Any]], checks: tuple[str, ...]) -> dict[str, Any]:
    """Precision, recall and false flags of each check on rows ``{"shown": float, "flags": [...], "source": str}``."""
    pos = [r for r in rows if r["shown"] >= SHOWN]
    neg = [r for r in rows if r["shown"] < SHOWN]
    out: dict[str, Any] = {"plates": len(rows), "showing": len(pos), "correct": len(neg),
                           "by_source": {s: {"plates": sum(r["source"] == s for r in rows),
                                             "showing": sum(r["source"] == s for r in pos)} for s in SOURCES}}
    for c in checks:
        tp = sum(c in r["flags"] for r in pos)
        fp = sum(c in r["flags"] for r in neg)
        out[c] = {"tp": tp, "fp": fp, "fn": len(pos) - tp, "tn": len(neg) - fp,
                  "precision": round(tp / (tp + fp), 4) if tp + fp else None,
                  "recall": round(tp / len(pos), 4) if pos else None,
                  "false_flags": round(fp / len(neg), 4) if neg else None}
    if rows and all("residue" in r for r in rows):
        out["residue_curve"] = calibration_curve(rows, "residue")
        bar = calibration_curve(rows, "residue", (EXPORT_RESIDUE,), shown=BAR_SHOWN)[0]
        out["residue_bar"] = {**bar, "shown_line": BAR_SHOWN, "showing": sum(r["shown"] >= BAR_SHOWN for r in rows),
                              "correct": sum(r["shown"] < BAR_SHOWN for r in rows)}
        split = held_out_residue(rows)
        if split:
            out["residue_held_out"] = split
    return out


SPLIT_GRID = tuple(round(0.01 + 0.005 * k, 3) for k in range(98))
"""Thresholds :func:`choose_threshold` picks from (0.01 to 0.495)."""
MAX_FALSE_FLAGS = 0.1
"""False flags (share of correct plates) a threshold chosen by :func:`choose_threshold` may give on its plates."""


def choose_threshold(rows: list[dict[str, Any]], check: str = "residue",
                     max_false_flags: float = MAX_FALSE_FLAGS) -> float:
    """The threshold for ``check`` these rows support: among those of :data:`SPLIT_GRID` with false flags at
    most ``max_false_flags``, the ones with the best recall, and of these the middle one (the widest margin
    on both sides); the highest of the grid when none keeps the false flags down."""
    curve = calibration_curve(rows, check, SPLIT_GRID)
    ok = [c for c in curve if c["false_flags"] is not None and c["false_flags"] <= max_false_flags]
    if not ok:
        return SPLIT_GRID[-1]
    top = max(c["recall"] or 0.0 for c in ok)
    best = [c["threshold"] for c in ok if (c["recall"] or 0.0) == top]
    return float(best[len(best) // 2])


def held_out_residue(rows: list[dict[str, Any]], max_false_flags: float = MAX_FALSE_FLAGS) -> list[dict[str, Any]]:
    """The residue check judged out of sample: for each composite of ``rows`` (``{"composite", "shown",
    "residue"}``), the threshold is chosen on the other composites' plates (:func:`choose_threshold`) and
    that composite's plates are scored with it. Empty with fewer than two composites."""
    comps = list(dict.fromkeys(r.get("composite") for r in rows))
    if len(comps) < 2:
        return []
    out = []
    for held in comps:
        fit = [r for r in rows if r.get("composite") != held]
        test = [r for r in rows if r.get("composite") == held]
        th = choose_threshold(fit, "residue", max_false_flags)
        out.append({"held_out": held, "threshold": th, **calibration_curve(test, "residue", (th,))[0],
                    "showing": sum(r["shown"] >= SHOWN for r in test),
                    "correct": sum(r["shown"] < SHOWN for r in test)})
    return out


def calibration_markdown(calib: dict[str, dict[str, Any]], checks: tuple[str, ...]) -> list[str]:
    """Markdown lines: one row per method and check."""
    lines = ["", f"Check calibration: does the plate still show >= {SHOWN:.0%} of the pasted character? "
             f"Plates from the detected masks as they come, the true masks (correct plates) and truncated "
             f"masks (upper {TRUNCATE:.0%} of the character's pixels left out).", "",
             "| method | check | plates (showing / correct) | precision | recall | false flags (of correct) |",
             "|---|---|---|---:|---:|---:|"]
    for method, cal in calib.items():
        for c in checks:
            r = cal[c]

            def pct(v: Any) -> str:
                return "-" if v is None else f"{v:.0%}"

            lines.append(f"| {method} | {c} | {cal['plates']} ({cal['showing']} / {cal['correct']}) "
                         f"| {pct(r['precision'])} | {pct(r['recall'])} | {pct(r['false_flags'])} |")
    curves = {m: cal["residue_curve"] for m, cal in calib.items() if cal.get("residue_curve")}
    if curves:
        lines += ["", "Residue calibration curve: precision / recall / false flags if plates scoring above "
                  "each threshold were flagged.", "",
                  "| method | " + " | ".join(f"> {p['threshold']:g}" for p in next(iter(curves.values()))) + " |",
                  "|---|" + "---:|" * len(next(iter(curves.values())))]
        for method, curve in curves.items():
            lines.append(f"| {method} | " + " | ".join("/".join("-" if p[k] is None else f"{p[k]:.0%}" for k in
                                                                ("precision", "recall", "false_flags"))
                                                       for p in curve) + " |")
    bars = {m: cal["residue_bar"] for m, cal in calib.items() if cal.get("residue_bar")}
    if bars:
        lines += ["", f"The training set's residue bar (dedupe / export-lora `--max-residue`) against plates "
                  f"showing >= {BAR_SHOWN:.0%} of the character.", "",
                  "| method | bar | plates (showing / correct) | precision | recall | kept out (of correct) |",
                  "|---|---:|---|---:|---:|---:|"]
        for method, b in bars.items():
            scores = " | ".join("-" if b[k] is None else f"{b[k]:.0%}" for k in ("precision", "recall", "false_flags"))
            lines.append(f"| {method} | {b['threshold']:g} | {b['showing'] + b['correct']} "
                         f"({b['showing']} / {b['correct']}) | {scores} |")
    split = {m: cal["residue_held_out"] for m, cal in calib.items() if cal.get("residue_held_out")}
    if split:
        lines += ["", "Residue out of sample: each composite judged with the threshold chosen on the others "
                  f"(false flags at most {MAX_FALSE_FLAGS:.0%} there, then the best recall, then the middle "
                  "threshold).", "",
                  "| method | held-out composite | threshold | plates (showing / correct) | precision | recall "
                  "| false flags |", "|---|---|---:|---|---:|---:|---:|"]
        for method, held in split.items():
            for r in held:
                scores = " | ".join("-" if r[k] is None else f"{r[k]:.0%}" for k in ("precision", "recall", "false_flags"))
                lines.append(f"| {method} | {r['held_out']} | {r['threshold']:g} | {r['showing'] + r['correct']} "
                             f"({r['showing']} / {r['correct']}) | {scores} |")
    return lines


__all__ = ["BAR_SHOWN", "CURVE", "MAX_FALSE_FLAGS", "SHOWN", "SOURCES", "SPLIT_GRID", "TRUNCATE", "calibrate", "calibration_curve",
           "calibration_markdown", "choose_threshold", "held_out_residue", "shown_fraction", "truncate"]
