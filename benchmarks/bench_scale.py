"""Film scale: the tool's own cost per frame at 1 000, 10 000 (and 100 000) frames.

For each N it builds N tiny 64x36 frames (block patterns, each different) and a segment-free mask
folder (``masks/<frame>.png``, hard links to a few masks), then runs, each as its own subprocess of
the ``cleanplate`` CLI: the fill (``inpaint --method opencv-telea --set qa.enabled=false``), the
rerun of the finished fill (resume: all frames done), ``report``, ``dedupe --no-embeddings`` and
``export-lora``. The fill of 64x36 frames costs almost nothing, so what is measured is the
bookkeeping around it. Printed per step: wall and CPU seconds (user + system: the figure to compare
on a shared machine), ms per frame, the marginal ms per frame of the fill (its time minus that of a
``--calibrate``-frame run, over the extra frames), the peak RSS of that step's process
(``os.wait4``), and the sizes of the files the run leaves.

    python benchmarks/bench_scale.py [--sizes 1000 10000] [--huge] [--work DIR] [--keep] [--json FILE]
    python benchmarks/bench_scale.py --synthetic [--patterns P] [--sizes ...] [--huge]

``--synthetic`` skips the fill: it writes a finished output folder of N plates directly
(:func:`synthetic`, seconds even at 100 000) and times only ``dedupe`` and ``export-lora``.

``--huge`` adds 100 000 frames (~10-20 min on 2 cores). Run it with ``PYTHONPATH`` pointing at
another checkout's ``src`` to measure that version: the CLI runs as ``python -m cleanplate._cli.main``
with the same environment.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

W, H = 64, 36
FILL = ["--method", "opencv-telea", "--set", "qa.enabled=false", "--device", "cpu", "--quiet"]
STEPS = ("fill", "rerun", "report", "dedupe", "export")


def build(root: Path, n: int) -> tuple[Path, Path]:
    """``n`` distinct 64x36 PNG frames in root/frames; root/seg/masks/<frame>.png hard links to 8 masks."""
    frames, masks = root / "frames", root / "seg" / "masks"
    frames.mkdir(parents=True)
    masks.mkdir(parents=True)
    shapes = []
    for k in range(8):
        m = np.zeros((H, W), np.uint8)
        m[8 + k: 22 + k, 6 + 6 * k: 20 + 6 * k] = 255
        path = root / f"mask{k}.png"
        cv2.imwrite(str(path), m)
        shapes.append(path)
    rng = np.random.default_rng(0)
    for i in range(n):
        blocks = rng.integers(0, 256, (4, 8, 3), dtype=np.uint8)  # a different coarse pattern per frame
        img = cv2.resize(blocks, (W, H), interpolation=cv2.INTER_LINEAR)
        name = f"frame_{i:06d}.png"
        cv2.imwrite(str(frames / name), img)
        os.link(shapes[i % 8], masks / name)
    return frames, root / "seg"


def synthetic(root: Path, n: int, shot_len: int = 40, patterns: int = 1000) -> Path:
    """A finished output folder of ``n`` plates without running the fill; returns it.

    Shots of ``shot_len`` frames cycle over ``patterns`` coarse block patterns; each shot has four
    variants of its pattern (small per-block changes: near-duplicates, hashed and grouped like real
    plates), and every plate is a hard link to its variant's JPEG. ``inpainting_metadata.json``
    and ``instances_metadata.json`` (shot ids, one or two tracked characters) are written in the
    pipeline's format, with masks hard-linked from eight shapes.
    """
    out = root / "out"
    bg, mk, src = out / "backgrounds", out / "masks", root / "src"
    for d in (bg, mk, src):
        d.mkdir(parents=True)
    rng = np.random.default_rng(1)
    shapes = []
    for k in range(8):
        m = np.zeros((H, W), np.uint8)
        m[8 + k: 22 + k, 6 + 6 * k: 20 + 6 * k] = 255
        cv2.imwrite(str(src / f"mask{k}.png"), m)
        shapes.append((src / f"mask{k}.png", float((m > 0).mean())))
    shots = -(-n // shot_len)
    variants: dict[tuple[int, int], Path] = {}
    base = rng.integers(0, 256, (patterns, 4, 8, 3), dtype=np.uint8)
    frames: dict[str, object] = {}
    inst: dict[str, object] = {}
    for i in range(n):
        s, v = i // shot_len, (i % shot_len) * 4 // shot_len
        key = (s % max(1, min(patterns, shots)), v)
        if key not in variants:
            blocks = base[key[0]].astype(np.int16) + np.random.default_rng(key[0] * 4 + v).integers(
                -6, 7, (4, 8, 3))
            img = cv2.resize(np.clip(blocks, 0, 255).astype(np.uint8), (W, H), interpolation=cv2.INTER_LINEAR)
            variants[key] = src / f"p{key[0]}_{v}.jpg"
            cv2.imwrite(str(variants[key]), img)
        fid = f"frame_{i:06d}"
        os.link(variants[key], bg / f"{fid}.jpg")
        mask, cov = shapes[i % 8]
        os.link(mask, mk / f"{fid}.png")
        frames[fid] = {"frame_id": fid, "index": i, "source": f"frames/{fid}.png", "stage_hash": "0" * 16,
                       "status": "ok", "error": None, "method": "opencv-telea", "extra_dilate": 20,
                       "timings": {"decode": 0.001, "fill": 0.001, "write": 0.001}, "coverage": round(cov, 6),
                       "extra": {}, "shape": [H, W], "outputs": [f"backgrounds/{fid}.jpg", f"masks/{fid}.png"]}
        tracks = [2 * s] + ([2 * s + 1] if i % 3 else [])
        inst[fid] = {"frame_id": fid, "shot_id": s, "instances": [
            {"track_id": t, "label": "person", "score": 0.9, "character": True, "bbox": [4, 4, 20, 30]}
            for t in tracks]}
    summary = {"frames": n, "frames_ok": n, "frames_failed": 0, "success_rate": 1.0, "method": "opencv-telea"}
    (out / "inpainting_metadata.json").write_text(json.dumps({"summary": summary, "frames": frames}, indent=2))
    (out / "instances_metadata.json").write_text(json.dumps({"frames": inst}, indent=2))
    return out


def step(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float, int]:
    """Run ``cmd``; (wall seconds, CPU seconds (user + system), peak RSS in MB of that process, exit code).

    CPU seconds are what to compare on a shared machine: wall time grows with the other users' load.
    """
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    secs = time.perf_counter() - t
    code = os.waitstatus_to_exitcode(status)
    if code != 0 and proc.stderr is not None:
        sys.stderr.write(f"{' '.join(cmd[3:5])}: exit {code}: {proc.stderr.read().decode()[-500:]}\n")
    if proc.stderr is not None:
        proc.stderr.close()
    return secs, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0, code  # ru_maxrss: KiB on Linux


def size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return 0


def measure(work: Path, n: int, env: dict[str, str]) -> dict[str, object]:
    """Build ``n`` frames under ``work`` and time every step on them."""
    root = work / f"n{n}"
    shutil.rmtree(root, ignore_errors=True)
    t = time.perf_counter()
    frames, seg = build(root, n)
    built = time.perf_counter() - t
    out, lora = root / "out", root / "lora"
    cli = [sys.executable, "-m", "cleanplate._cli.main"]
    inpaint = [*cli, "inpaint", "-s", str(seg), "-o", str(out), "-i", str(frames), *FILL]
    cmds = {
        "fill": inpaint,
        "rerun": inpaint,
        "report": [*cli, "--quiet", "report", str(out)],
        "dedupe": [*cli, "--quiet", "dedupe", str(out), "--no-embeddings"],
        "export": [*cli, "--quiet", "export-lora", str(out), "-o", str(lora)],
    }
    res: dict[str, object] = {"frames": n, "build_s": round(built, 1)}
    for name in STEPS:
        secs, cpu, rss, code = step(cmds[name], env)
        res[name] = {"s": round(secs, 2), "cpu_s": round(cpu, 2), "ms_per_frame": round(1000 * secs / n, 3),
                     "cpu_ms_per_frame": round(1000 * cpu / n, 3), "rss_mb": round(rss, 1), "exit": code}
        print(f"  N={n:>7} {name:<7} {secs:8.2f} s  {1000 * secs / n:7.3f} ms/frame  CPU {cpu:8.2f} s "
              f"{1000 * cpu / n:7.3f} ms/frame  RSS {rss:7.1f} MB  exit {code}", flush=True)
    res["sizes_bytes"] = {
        "inpainting_metadata.json": size(out / "inpainting_metadata.json"),
        ".cleanplate/fill.jsonl": size(out / ".cleanplate" / "fill.jsonl"),
        "report.html": size(out / "report.html"),
        "report (all files but plates)": sum(size(p) for p in out.iterdir()
                                             if p.name not in ("backgrounds", "masks", ".cleanplate")) - size(
            out / "inpainting_metadata.json") - size(out / "run.json"),
        "lora/": size(lora),
    }
    return res


def measure_synthetic(work: Path, n: int, env: dict[str, str], patterns: int) -> dict[str, object]:
    """``dedupe --no-embeddings`` then ``export-lora`` on a :func:`synthetic` folder of ``n`` plates."""
    root = work / f"syn{n}"
    shutil.rmtree(root, ignore_errors=True)
    out = synthetic(root, n, patterns=patterns)
    cli = [sys.executable, "-m", "cleanplate._cli.main", "--quiet"]
    res: dict[str, object] = {"plates": n, "patterns": patterns}
    for name, cmd in (("dedupe", [*cli, "dedupe", str(out), "--no-embeddings"]),
                      ("export", [*cli, "export-lora", str(out), "-o", str(root / "lora")])):
        secs, cpu, rss, code = step(cmd, env)
        res[name] = {"s": round(secs, 2), "cpu_s": round(cpu, 2), "cpu_ms_per_plate": round(1000 * cpu / n, 3),
                     "rss_mb": round(rss, 1), "exit": code}
        print(f"  N={n:>7} {name:<7} {secs:8.2f} s  CPU {cpu:8.2f} s {1000 * cpu / n:7.3f} ms/plate  "
              f"RSS {rss:7.1f} MB  exit {code}", flush=True)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--huge", action="store_true", help="add N = 100 000")
    ap.add_argument("--calibrate", type=int, default=100, help="frames of the run whose fill time is the fixed cost")
    ap.add_argument("--work", type=Path, help="folder for the frames and outputs (default: a temp folder)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--synthetic", action="store_true",
                    help="only dedupe and export-lora, on a finished folder written without the fill (synthetic())")
    ap.add_argument("--patterns", type=int, default=1000,
                    help="with --synthetic: distinct scenes the shots cycle over (0: every shot its own)")
    args = ap.parse_args(argv)
    sizes = [*args.sizes, *([100_000] if args.huge else [])]
    work = args.work or Path(tempfile.mkdtemp(prefix="cp-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CLEANPLATE_OFFLINE": "1"}
    if args.synthetic:
        try:
            rows = [measure_synthetic(work, n, env, args.patterns or n) for n in sizes]
        finally:
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=2) + "\n")
        return 0
    results: list[dict[str, object]] = []
    try:
        base = measure(work, args.calibrate, env)
        fixed, fixed_cpu = base["fill"]["s"], base["fill"]["cpu_s"]  # type: ignore[index]
        print(f"calibration: {args.calibrate} frames fill in {fixed:.2f} s, CPU {fixed_cpu:.2f} s", flush=True)
        for n in sizes:
            res = measure(work, n, env)
            fill_s, fill_cpu = res["fill"]["s"], res["fill"]["cpu_s"]  # type: ignore[index]
            res["fill_marginal_ms_per_frame"] = round(1000 * (fill_s - fixed) / (n - args.calibrate), 3)
            res["fill_marginal_cpu_ms_per_frame"] = round(1000 * (fill_cpu - fixed_cpu) / (n - args.calibrate), 3)
            results.append(res)
            print(f"  N={n:>7} fill marginal {res['fill_marginal_ms_per_frame']:.3f} ms/frame wall, "
                  f"{res['fill_marginal_cpu_ms_per_frame']:.3f} ms/frame CPU; sizes "
                  + ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in res["sizes_bytes"].items()),  # type: ignore[union-attr]
                  flush=True)
            if not args.keep:
                shutil.rmtree(work / f"n{n}", ignore_errors=True)
    finally:
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print("\n| frames | fill s (CPU s) | fill marginal ms/frame wall (CPU) | fill RSS MB | rerun s (CPU s) "
          "| report s | dedupe s (CPU ms/plate) | export s (CPU ms/plate) | max RSS MB | metadata MB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        s = {k: r[k] for k in STEPS}
        print(f"| {r['frames']} | {s['fill']['s']} ({s['fill']['cpu_s']}) "  # type: ignore[index]
              f"| {r['fill_marginal_ms_per_frame']} ({r['fill_marginal_cpu_ms_per_frame']}) "
              f"| {s['fill']['rss_mb']} | {s['rerun']['s']} ({s['rerun']['cpu_s']}) | {s['report']['s']} "  # type: ignore[index]
              f"| {s['dedupe']['s']} ({s['dedupe']['cpu_ms_per_frame']}) "  # type: ignore[index]
              f"| {s['export']['s']} ({s['export']['cpu_ms_per_frame']}) "  # type: ignore[index]
              f"| {max(v['rss_mb'] for v in s.values())} "  # type: ignore[index]
              f"| {r['sizes_bytes']['inpainting_metadata.json'] / 1e6:.2f} |")  # type: ignore[index]
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
