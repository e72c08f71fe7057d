"""End-to-end figures on the DAVIS clips with ground-truth masks: the real ``cleanplate run``.

For each clip (``../shared/data/davis_<clip>/frames`` + ``masks``) and each input kind (the frame
folder, and a lossless video made from it), runs ``cleanplate run`` with the given settings
(default: the default profile) and compares every frame's removal mask (``masks/<frame>.png``)
with the truth:

- recall: share of the true object's pixels inside the removal mask (what the plate no longer shows);
- area ratio: removal-mask area over the true mask dilated by the same radius the run used
  (1.0 = exactly the object grown like the tool grows its masks).

With ``--export`` it then runs ``cleanplate dedupe`` and ``cleanplate export-lora`` and checks every
exported image against the truth: the share of the object it still shows is 1 - recall (a plate
keeps every unmasked pixel of its frame). It exports twice: with dedupe's kept list (the default;
at most one plate per near-duplicate group, so the dedupe groups bound what can be exported) and
with ``--all-plates`` (every plate the checks trust). Prints a Markdown table; ``--json`` writes
the figures.

    python benchmarks/bench_davis.py                       # both clips, folder and video
    python benchmarks/bench_davis.py --clips tennis --inputs folder --export
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CLEANPLATE_SHARED", REPO.parent / "shared"))


def _read_mask(path: Path) -> np.ndarray:
    from cleanplate.io.outputs import read_mask

    return read_mask(path)


def make_video(frames: Path, dest: Path) -> Path:
    """Encode the clip's frames into a lossless FFV1 .mkv (RGB kept exactly up to the codec's colour space)."""
    import av

    from cleanplate.io.frames import load_image

    files = sorted(p for p in frames.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    first = load_image(files[0])
    with av.open(str(dest), "w") as out:
        stream = out.add_stream("ffv1", rate=24)
        stream.width, stream.height = first.shape[1], first.shape[0]
        stream.pix_fmt = "bgr0"
        for f in files:
            frame = av.VideoFrame.from_ndarray(load_image(f), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return dest


def _cli(*args: object) -> float:
    t = time.perf_counter()
    cmd = [sys.executable, "-m", "cleanplate._cli.main", *map(str, args), "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return time.perf_counter() - t


def _truth(clip_dir: Path) -> list[np.ndarray]:
    return [_read_mask(p) for p in sorted((clip_dir / "masks").glob("*.png"))]


def _frame_ids(out: Path) -> list[str]:
    meta = json.loads((out / "instances_metadata.json").read_text())
    return list(meta["frames"])


def _radius(out: Path, fid: str, shape: tuple[int, int]) -> int:
    from cleanplate import masks as M

    meta = json.loads((out / "instances_metadata.json").read_text())
    rec = meta["frames"].get(fid, {})
    if rec.get("dilate_px") is not None:
        return int(rec["dilate_px"])
    mc = json.loads((out / "run.json").read_text())["config"]["masks"]
    return M.dilation_radius(int(mc["dilate"]), bool(mc.get("dilate_relative", False)), shape)


def evaluate_masks(out: Path, truth: list[np.ndarray]) -> dict[str, object]:
    from cleanplate import masks as M

    ids = _frame_ids(out)
    recalls: dict[str, float] = {}
    ratios: list[float] = []
    area, area_gt = 0, 0
    for fid, gt in zip(ids, truth, strict=False):
        path = out / "masks" / f"{fid}.png"
        mask = _read_mask(path) if path.is_file() else np.zeros_like(gt)
        if not gt.any():
            continue
        recalls[fid] = float((mask & gt).sum() / gt.sum())
        grown = M.dilate(gt, _radius(out, fid, gt.shape))
        ratios.append(float(mask.sum() / grown.sum()))
        area += int(mask.sum())
        area_gt += int(grown.sum())
    r = np.array(list(recalls.values()))
    return {"frames": len(recalls), "mean_recall": round(float(r.mean()), 4), "min_recall": round(float(r.min()), 4),
            "frames_below_0.5": [f for f, v in recalls.items() if v < 0.5],
            "area_ratio_mean": round(float(np.mean(ratios)), 3), "area_ratio_total": round(area / max(area_gt, 1), 3),
            "recall": {f: round(v, 4) for f, v in recalls.items()}}


def evaluate_export(out: Path, truth: list[np.ndarray], recall: dict[str, float]) -> dict[str, object]:
    ids = _frame_ids(out)
    exported = json.loads((out / "dataset" / "export.json").read_text())
    names = [Path(p).stem for p in exported.get("files", []) if Path(p).suffix.lower() in (".png", ".jpg", ".jpeg")]
    shown = {f: round(1.0 - recall.get(f, 1.0), 4) for f in names if f in ids}
    return {"frames": len(ids), "exported": len(shown), "exported_share": round(len(shown) / max(len(ids), 1), 3),
            "max_shown": max(shown.values(), default=0.0),
            "exported_showing_over_10pct": sorted(f for f, v in shown.items() if v > 0.10)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", nargs="+", default=["bmx-trees", "tennis"])
    ap.add_argument("--inputs", nargs="+", default=["folder", "video"], choices=["folder", "video"])
    ap.add_argument("--out", type=Path, default=Path("/tmp/cleanplate-bench-davis"))
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="config override key=value")
    ap.add_argument("--method", default=None, help="fill method (default: the profile's)")
    ap.add_argument("--export", action="store_true", help="also dedupe + export-lora and check the exported images")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    rows: list[dict[str, object]] = []
    for clip in args.clips:
        clip_dir = SHARED / "data" / f"davis_{clip}"
        truth = _truth(clip_dir)
        for kind in args.inputs:
            out = args.out / f"{clip}-{kind}"
            src: Path = clip_dir / "frames"
            if kind == "video":
                args.out.mkdir(parents=True, exist_ok=True)
                src = make_video(src, args.out / f"{clip}.mkv")
            extra: list[str] = [f"--set={o}" for o in args.overrides]
            if args.method:
                extra += ["--method", args.method]
            secs = _cli("run", src, "-o", out, "--force", "--plate-format", "png", *extra)
            row: dict[str, object] = {"clip": clip, "input": kind, "s_per_frame": round(secs / len(truth), 3)}
            row.update(evaluate_masks(out, truth))
            if args.export:
                _cli("dedupe", out)
                groups = json.loads((out / "dataset" / "dedupe.json").read_text())["summary"]["groups"]
                _cli("export-lora", out, "-o", out.parent / f"{out.name}-lora-all", "--force", "--all-plates")
                row["export_all_plates"] = evaluate_export(out, truth, row["recall"])  # type: ignore[arg-type]
                _cli("export-lora", out, "-o", out.parent / f"{out.name}-lora", "--force")
                row["export"] = {**evaluate_export(out, truth, row["recall"]), "dedupe_groups": groups}  # type: ignore[arg-type]
            rows.append(row)
            print(f"{clip:10s} {kind:6s} recall {row['mean_recall']:.3f} min {row['min_recall']:.3f} "
                  f"below0.5 {len(row['frames_below_0.5'])} area {row['area_ratio_total']:.2f}", flush=True)

    print("\n| clip | input | mean recall | min recall | frames < 0.5 | area / GT dilated (total, mean) | s/frame |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['clip']} | {r['input']} | {r['mean_recall']:.3f} | {r['min_recall']:.3f} | "
              f"{len(r['frames_below_0.5'])} | {r['area_ratio_total']:.2f}, {r['area_ratio_mean']:.2f} | "
              f"{r['s_per_frame']} |")
    if args.export:
        print("\n| clip | input | dedupe | exported / frames | dedupe groups | max share of object shown "
              "| exported showing > 10 % |")
        print("|---|---|---|---|---|---|---|")
        for r in rows:
            for label, key in (("on", "export"), ("off (--all-plates)", "export_all_plates")):
                e = r[key]  # type: ignore[index]
                print(f"| {r['clip']} | {r['input']} | {label} | {e['exported']} / {e['frames']} | "
                      f"{e.get('dedupe_groups', '-')} | {e['max_shown']:.3f} | "
                      f"{', '.join(e['exported_showing_over_10pct']) or '-'} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
