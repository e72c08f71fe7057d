"""Re-score the plates of a saved ``cleanplate bench`` run with the current plate checks.

``cleanplate bench -o DIR`` keeps every plate it filled (detected, true and truncated masks, per
method) and the truth of each (``calibration_plates`` in ``DIR/bench.json``: the share of the pasted
character each plate still shows). This script runs :meth:`PlateChecker.check_shot` again on those
plates, one shot per composite, method and mask source, and prints the residue check's precision,
recall and false flags (share of correct plates flagged) per method and composite, and the curve
over thresholds, without filling anything again (the fill is most of a bench run's time).

    python benchmarks/bench_residue.py DIR [--threshold T] [--verbose]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cleanplate.config import load_config
from cleanplate.io.outputs import read_image_rgb, read_mask
from cleanplate.qa.checks import PlateChecker
from cleanplate.records import CheckFrame
from cleanplate.report.bench_calib import CURVE, SHOWN, calibration_curve

SOURCES = {"detected": "", "true": ".truemask", "truncated": ".truncated"}


def rescore(bench_dir: Path, checker: PlateChecker) -> list[dict]:
    """One row per plate: method, composite, source, frame, shown share, residue score and detail."""
    data = json.loads((bench_dir / "bench.json").read_text())
    shown = {(m, r["frame"], r["source"]): r["shown"] for m, rows in data["calibration_plates"].items() for r in rows}
    rows = []
    for comp in (c["name"] for c in data["composites"]):
        cdir = bench_dir / comp
        ids = sorted(p.stem for p in (cdir / "frames").glob("*.png"))
        images = [read_image_rgb(cdir / "frames" / f"{i}.png") for i in ids]
        sal = [checker._saliency(im) for im in images]
        for method in data["calibration_plates"]:
            for source, suffix in SOURCES.items():
                sub = cdir / (method.replace("+", "_") + suffix)
                frames = [CheckFrame(i, im, read_image_rgb(sub / "backgrounds" / f"{i}.png"),
                                     read_mask(sub / "masks" / f"{i}.png"), s, shot_id=0)
                          for i, im, s in zip(ids, images, sal, strict=True)
                          if (sub / "backgrounds" / f"{i}.png").is_file() and (method, i, source) in shown]
                for f, res in zip(frames, checker.check_shot(frames), strict=True):
                    rows.append({"method": method, "composite": comp, "source": source, "frame": f.frame_id,
                                 "shown": shown[(method, f.frame_id, source)], "residue": res["residue"],
                                 "detail": res.get("detail", {})})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bench_dir", type=Path)
    ap.add_argument("--threshold", type=float, default=None, help="residue threshold (default: the config's)")
    ap.add_argument("--verbose", action="store_true", help="print every wrongly judged plate")
    args = ap.parse_args()
    cfg = load_config()
    checker = PlateChecker(cfg.qa, "cpu", threads=cfg.run.threads)
    th = checker.thresholds["residue"] if args.threshold is None else args.threshold
    rows = rescore(args.bench_dir, checker)
    print(f"residue threshold {th}; 'shows the character' = shown >= {SHOWN}")
    print("method                composite          precision recall false-flags (showing/correct)")
    for method in dict.fromkeys(r["method"] for r in rows):
        for comp in [None, *dict.fromkeys(r["composite"] for r in rows)]:
            sel = [r for r in rows if r["method"] == method and comp in (None, r["composite"])]
            p = calibration_curve(sel, "residue", (th,))[0]
            pos = sum(r["shown"] >= SHOWN for r in sel)

            def f(v: float | None) -> str:
                return "   -" if v is None else f"{v:4.2f}"

            print(f"{method:22s}{comp or 'all':19s}{f(p['precision']):>9s} {f(p['recall']):>6s} "
                  f"{f(p['false_flags']):>11s} ({pos}/{len(sel) - pos})")
        curve = calibration_curve([r for r in rows if r["method"] == method], "residue", CURVE)
        print("  curve: " + "  ".join(f">{c['threshold']:g}: {c['precision']}/{c['recall']}/{c['false_flags']}"
                                      for c in curve))
    if args.verbose:
        for r in rows:
            if (r["shown"] >= SHOWN) != (r["residue"] > th):
                print(r["method"], r["frame"], r["source"], r["shown"], r["residue"], r["detail"])


if __name__ == "__main__":
    main()
