"""Seconds per frame per stage of `cleanplate run` on the bundled sample (10 Sintel frames, 1024x436).

Not a test: timings on shared machines are noisy. Run: ``python benchmarks/bench_pipeline.py
[--methods opencv-telea patchmatch] [--device cpu]``; it prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from cleanplate import load_config
from cleanplate.pipeline import run
from cleanplate.sample import sample_dir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--methods", nargs="+", default=["opencv-telea", "opencv-ns", "patchmatch"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--input", type=Path, default=sample_dir())
    ap.add_argument("--qa", action="store_true", help="also time the automatic plate checks")
    ap.add_argument("--models", help="then time model stages at 1920x1080 with bench_models.py: 'all' or a list "
                    "(sam2-amg,lama,...); e.g. --device cuda --models all")
    args = ap.parse_args()
    print(f"# cleanplate pipeline benchmark — {args.input} — {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, device {args.device}\n")
    print("| method | frames | decode | segment (u2netp) | masks | write | fill | checks | total s/frame | frames/s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for method in args.methods:
        cfg = load_config(overrides={"fill.method": method, "run.device": args.device, "qa.enabled": args.qa})
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            s = run(args.input, Path(tmp) / "out", cfg)
            wall = time.perf_counter() - t
        seg, fill = s.segment.seconds_per_frame(), s.fill.seconds_per_frame()
        n = s.frames_total
        row = [method, str(n), f"{seg.get('decode', 0) + fill.get('decode', 0):.3f}", f"{seg.get('segment', 0):.3f}",
               f"{seg.get('masks', 0):.3f}", f"{seg.get('write', 0) + fill.get('write', 0):.3f}",
               f"{fill.get('fill', 0):.3f}", f"{fill.get('checks', 0):.3f}", f"{wall / n:.3f}", f"{n / wall:.2f}"]
        print("| " + " | ".join(row) + " |")
    print("\nColumns are mean seconds per frame; decode and write add both stages; total includes model loading.")
    if args.models:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bench_models import MODELS
        from bench_models import main as bench_models

        bench_models(["--device", args.device, "--models", ",".join(MODELS) if args.models == "all" else args.models])


if __name__ == "__main__":
    main()
