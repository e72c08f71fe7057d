"""Re-score the plates of saved ``cleanplate bench`` runs with the current plate checks.

``cleanplate bench -o DIR`` keeps every plate it filled (detected, true and truncated masks, per
method) and the truth of each (``calibration_plates`` in ``DIR/bench.json``: the share of the pasted
character each plate still shows). This script runs :meth:`PlateChecker.check_shot` again on those
plates, one shot per composite, method and mask source, and prints the residue check's precision,
recall and false flags (share of correct plates flagged) per method and composite, and the curve
over thresholds, without filling anything again (the fill is most of a bench run's time).

A run cut short before it wrote ``bench.json`` still has each composite's ``frames/`` and ``truth/``
(the frame before pasting): the pasted object is then where they differ, and the share it shows
is computed from that (:func:`cleanplate.report.bench_calib.shown_fraction`).

``--split`` is the honest figure: for each composite, the threshold is chosen on the *other*
composites' plates (:func:`cleanplate.report.bench_calib.choose_threshold`: false flags at most
``--max-false-flags`` there, then the best recall, then the middle threshold) and the composite is
scored with it, so no plate is judged by a threshold tuned on itself.

    python benchmarks/bench_residue.py DIR [DIR ...] [--threshold T] [--split] [--json OUT] [--verbose]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from cleanplate.config import load_config
from cleanplate.io.outputs import read_image_rgb, read_mask
from cleanplate.qa.checks import PlateChecker
from cleanplate.records import CheckFrame
from cleanplate.report.bench_calib import CURVE, SHOWN, calibration_curve, held_out_residue, shown_fraction

SOURCES = {"detected": "", "true": ".truemask", "truncated": ".truncated"}
METHODS = ("patchmatch", "temporal+patchmatch")


def _shown_from_truth(cdir: Path, ids: list[str], images: list[np.ndarray]) -> dict[str, np.ndarray]:
    """The pasted object of each frame: where the composite differs from the frame before pasting."""
    out = {}
    for i, im in zip(ids, images, strict=True):
        truth = cdir / "truth" / f"{i}.png"
        if truth.is_file():
            out[i] = np.abs(im.astype(np.int16) - read_image_rgb(truth).astype(np.int16)).max(axis=2) > 0
    return out


def rescore(bench_dir: Path, checker: PlateChecker) -> list[dict[str, Any]]:
    """One row per plate: method, composite, source, frame, shown share, residue score and detail."""
    bench_json = bench_dir / "bench.json"
    data = json.loads(bench_json.read_text()) if bench_json.is_file() else None
    shown: dict[tuple[str, str, str], float] = {}
    if data is not None:
        shown = {(m, r["frame"], r["source"]): r["shown"] for m, rows in data["calibration_plates"].items()
                 for r in rows}
        comps = [c["name"] for c in data["composites"]]
        methods = list(data["calibration_plates"])
    else:
        comps = sorted(p.name for p in bench_dir.iterdir() if (p / "frames").is_dir() and (p / "truth").is_dir())
        methods = [m for m in METHODS if any((bench_dir / c / m.replace("+", "_")).is_dir() for c in comps)]
    rows = []
    for comp in comps:
        cdir = bench_dir / comp
        ids = sorted(p.stem for p in (cdir / "frames").glob("*.png"))
        images = [read_image_rgb(cdir / "frames" / f"{i}.png") for i in ids]
        pasted = _shown_from_truth(cdir, ids, images) if data is None else {}
        sal = [checker._saliency(im) for im in images]
        for method in methods:
            for source, suffix in SOURCES.items():
                sub = cdir / (method.replace("+", "_") + suffix)
                frames = []
                for i, im, s in zip(ids, images, sal, strict=True):
                    plate, mask = sub / "backgrounds" / f"{i}.png", sub / "masks" / f"{i}.png"
                    if not plate.is_file() or not mask.is_file():
                        continue
                    removal = read_mask(mask)
                    if data is None and i in pasted:
                        shown[(method, i, source)] = round(shown_fraction(pasted[i], removal), 4)
                    if (method, i, source) in shown:
                        frames.append(CheckFrame(i, im, read_image_rgb(plate), removal, s, shot_id=0))
                for f, res in zip(frames, checker.check_shot(frames), strict=True):
                    rows.append({"method": method, "composite": comp, "source": source, "frame": f.frame_id,
                                 "shown": shown[(method, f.frame_id, source)], "residue": res["residue"],
                                 "detail": res.get("detail", {})})
    return rows


def _fmt(v: float | None) -> str:
    return "   -" if v is None else f"{v:4.2f}"


def split_scores(rows: list[dict[str, Any]], max_false_flags: float) -> list[dict[str, Any]]:
    """Per method and held-out composite: the threshold chosen on the other composites, and the held-out
    scores (:func:`cleanplate.report.bench_calib.held_out_residue`)."""
    out = []
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        out += [{"method": method, **s} for s in held_out_residue(mine, max_false_flags)]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bench_dirs", type=Path, nargs="+")
    ap.add_argument("--threshold", type=float, default=None, help="residue threshold (default: the config's)")
    ap.add_argument("--split", action="store_true",
                    help="also choose the threshold on the other composites and score each held-out one")
    ap.add_argument("--max-false-flags", type=float, default=0.1, help="false-flag bound for --split")
    ap.add_argument("--json", type=Path, default=None, help="write every plate's row here")
    ap.add_argument("--verbose", action="store_true", help="print every wrongly judged plate")
    args = ap.parse_args()
    cfg = load_config()
    checker = PlateChecker(cfg.qa, "cpu", threads=cfg.run.threads)
    th = checker.thresholds["residue"] if args.threshold is None else args.threshold
    rows = [r for d in args.bench_dirs for r in rescore(d, checker)]
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    print(f"residue threshold {th}; 'shows the character' = shown >= {SHOWN}")
    print("method                composite          precision recall false-flags (showing/correct)")
    for method in dict.fromkeys(r["method"] for r in rows):
        for comp in [None, *dict.fromkeys(r["composite"] for r in rows)]:
            sel = [r for r in rows if r["method"] == method and comp in (None, r["composite"])]
            p = calibration_curve(sel, "residue", (th,))[0]
            pos = sum(r["shown"] >= SHOWN for r in sel)
            print(f"{method:22s}{comp or 'all':19s}{_fmt(p['precision']):>9s} {_fmt(p['recall']):>6s} "
                  f"{_fmt(p['false_flags']):>11s} ({pos}/{len(sel) - pos})")
        curve = calibration_curve([r for r in rows if r["method"] == method], "residue", CURVE)
        print("  curve: " + "  ".join(f">{c['threshold']:g}: {c['precision']}/{c['recall']}/{c['false_flags']}"
                                      for c in curve))
    if args.split:
        print(f"\nheld-out composite, threshold chosen on the others (false flags <= {args.max_false_flags} there)")
        for s in split_scores(rows, args.max_false_flags):
            print(f"{s['method']:22s}{s['held_out']:19s} threshold {s['threshold']:.3f}: precision "
                  f"{_fmt(s['precision'])} recall {_fmt(s['recall'])} false flags {_fmt(s['false_flags'])} "
                  f"({s['showing']}/{s['correct']})")
    if args.verbose:
        for r in rows:
            if (r["shown"] >= SHOWN) != (r["residue"] > th):
                print(r["method"], r["composite"], r["frame"], r["source"], r["shown"], r["residue"], r["detail"])


if __name__ == "__main__":
    main()
