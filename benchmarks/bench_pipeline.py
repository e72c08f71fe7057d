"""Seconds per frame and frames/s per stage of `cleanplate run` on the bundled sample (10 Sintel frames, 1024x436).

Not a test: timings on shared machines are noisy. Run: ``python benchmarks/bench_pipeline.py
[--runner local ray] [--methods patchmatch opencv-telea] [--device cpu] [--no-qa] [--size 1280x720]``
(``--size``: the input frames resized to a film resolution first, e.g. 1280x720 or 1920x1080); it prints a
Markdown table per runner and method: each stage's mean seconds per frame (as the records of the
metadata files hold them: time in the stage, wherever it ran) and the frames/s that makes for one
worker, then the whole run's wall time per frame and frames/s. With ``--runner ray`` a local Ray
cluster is started before the clock starts (``--ray-address`` to use a running one).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from cleanplate import load_config
from cleanplate.pipeline import run
from cleanplate.sample import sample_dir

STAGES = ("decode", "shots", "segment", "characters", "masks", "fill", "checks", "commit")


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def stage_seconds(out: Path) -> dict[str, float]:
    """Mean seconds per frame of every stage, from the frame records of both metadata files."""
    seg = json.loads((out / "instances_metadata.json").read_text())["frames"].values()
    fill = json.loads((out / "inpainting_metadata.json").read_text())["frames"].values()
    per: dict[str, list[float]] = {s: [] for s in STAGES}
    for r in seg:
        t = r.get("timings", {})
        for s in ("decode", "shots", "segment", "characters", "masks"):
            if s in t:
                per[s].append(t[s])
        per["commit"].append(t.get("write", 0.0))
    for k, r in enumerate(fill):
        t = r.get("timings", {})
        for s in ("fill", "checks"):
            if s in t:
                per[s].append(t[s])
        if k < len(per["commit"]):
            per["commit"][k] += t.get("write", 0.0)
    return {s: _mean(v) for s, v in per.items()}


def resize_frames(src: Path, dst: Path, size: str) -> Path:
    """The frames of folder ``src`` resized to ``size`` ("WxH", Lanczos) as PNG files in ``dst``."""
    from PIL import Image

    w, h = (int(v) for v in size.lower().split("x"))
    for p in sorted(src.iterdir()):
        if p.suffix.lower() in (".png", ".jpg", ".jpeg"):
            Image.open(p).convert("RGB").resize((w, h), Image.LANCZOS).save(dst / f"{p.stem}.png")
    return dst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runner", nargs="+", default=["local"], choices=["local", "ray"])
    ap.add_argument("--methods", nargs="+", default=[None], help="fill methods (default: the config's)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--input", type=Path, default=sample_dir())
    ap.add_argument("--no-qa", action="store_true", help="skip the automatic plate checks")
    ap.add_argument("--size", default=None, help="WxH: resize the input frames to this size first (film resolution)")
    ap.add_argument("--ray-address", default=None)
    ap.add_argument("--models", help="then time model stages at 1920x1080 with bench_models.py: 'all' or a list "
                    "(sam2-amg,lama,...); e.g. --device cuda --models all")
    args = ap.parse_args()
    resized = None
    if args.size:
        resized = tempfile.TemporaryDirectory()
        args.input = resize_frames(args.input, Path(resized.name), args.size)
    if "ray" in args.runner:
        import ray

        ray.init(address=args.ray_address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    print(f"# cleanplate pipeline benchmark — {args.input} — {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, device {args.device}\n")
    for runner in args.runner:
        for method in args.methods:
            over = {"run.runner": runner, "run.device": args.device, "qa.enabled": not args.no_qa}
            if method:
                over["fill.method"] = method
            cfg = load_config(overrides=over)
            with tempfile.TemporaryDirectory() as tmp:
                t = time.perf_counter()
                s = run(args.input, Path(tmp) / "out", cfg)
                wall = time.perf_counter() - t
                secs = stage_seconds(Path(tmp) / "out")
            n = s.frames_total
            print(f"## runner {runner}, fill {cfg.fill.method}, checks {'on' if cfg.qa.enabled else 'off'}, "
                  f"{n} frames\n")
            print("| stage | s/frame | frames/s |")
            print("|---|---|---|")
            for stage in STAGES:
                v = secs[stage]
                print(f"| {stage} | {v:.4f} | {1 / v:.1f} |" if v > 0 else f"| {stage} | - | - |")
            print(f"| **run (wall)** | {wall / n:.4f} | {n / wall:.2f} |\n")
    print("Stage figures are time in the stage per frame, for one worker; the wall row includes model loading "
          "(and, for ray, starting the actors).")
    if args.models:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bench_models import MODELS
        from bench_models import main as bench_models

        bench_models(["--device", args.device, "--models", ",".join(MODELS) if args.models == "all" else args.models])


if __name__ == "__main__":
    main()
