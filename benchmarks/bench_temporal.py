"""Temporal clean plates on real footage: how much is filled from other frames, how well, how fast.

Two clips from ../shared/data: Sintel ``sintel_market`` (1024x436, 10 frames, masks from the real
u2netp saliency model, >= 0.5, dilated 20 px) and DAVIS ``bmx-trees`` (432x240, 80 frames, panning
camera, the dataset's rider masks dilated ``--dilate`` px). For each clip it reports the mean
``temporal_fraction`` and CPU seconds per frame for registration / fusion / inner inpaint.

Accuracy on real footage (``--holdout``): no clean plate exists for these clips, so each frame also
gets a fake hole where there is scenery — the character mask of the frame half a clip away — and
the fill of that hole is compared with the frame's own pixels (PSNR, over the fake hole outside the
real mask), for ``temporal+<inner>`` and for ``<inner>`` alone.

    python benchmarks/bench_temporal.py [--inner patchmatch] [--window 4] [--clips sintel davis]
        [--keyframes N] [--limit N] [--no-holdout] [--out DIR]  (DIR: plates and source maps as PNG)
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import cv2
import numpy as np

from cleanplate import masks as M
from cleanplate.config import load_config
from cleanplate.fill import create_inpainter
from cleanplate.io.frames import load_image
from cleanplate.io.outputs import read_mask
from cleanplate.qa.metrics import psnr
from cleanplate.records import SequenceFrame

DATA = Path(os.environ.get("CLEANPLATE_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "data"


def sintel(limit: int | None) -> tuple[list[str], list[np.ndarray], list[np.ndarray]]:
    from cleanplate.segment.saliency import SaliencyPredictor

    paths = sorted((DATA / "sintel_market").glob("*.png"))[:limit]
    pred = SaliencyPredictor("u2netp", "cpu")
    images = [load_image(p) for p in paths]
    masks = [M.dilate(pred.predict(im) >= 0.5, 20) for im in images]
    return [p.stem for p in paths], images, masks


def davis(limit: int | None, dilate: int) -> tuple[list[str], list[np.ndarray], list[np.ndarray]]:
    root = DATA / "davis_bmx-trees"
    paths = sorted((root / "frames").glob("*.jpg"))[:limit]
    images = [load_image(p) for p in paths]
    masks = [M.dilate(read_mask(root / "masks" / f"{p.stem}.png"), dilate) for p in paths]
    return [p.stem for p in paths], images, masks


def run_clip(name: str, ids: list[str], images: list[np.ndarray], masks: list[np.ndarray], inner: str,
             window: int, holdout: bool, out: Path | None, keyframes: int = 0) -> dict[str, object]:
    n = len(ids)
    fake = [(masks[(i + n // 2) % n] & ~masks[i]) if holdout else np.zeros_like(masks[i]) for i in range(n)]
    holes = [m | f for m, f in zip(masks, fake, strict=True)]
    cfg = load_config(overrides={"fill.method": f"temporal+{inner}", "fill.temporal.window": window,
                                 "fill.temporal.keyframes": keyframes})
    filler = create_inpainter(cfg, "cpu")
    sources: dict[str, np.ndarray] = {}
    filler.on_source_map = lambda fid, s: sources.__setitem__(fid, s)
    frames = (SequenceFrame(f, i, im, mk) for i, (f, im, mk) in enumerate(zip(ids, images, holes, strict=True)))
    t = time.perf_counter()
    results = list(filler.fill_sequence(frames))
    total = time.perf_counter() - t
    rows = {"frames": n, "size": f"{images[0].shape[1]}x{images[0].shape[0]}", "window": window,
            "keyframes": keyframes,
            "inner": inner, "mask_coverage": round(float(np.mean([m.mean() for m in masks])), 4),
            "seconds_per_frame": round(total / n, 4)}
    extras = []
    for _, res in results:
        if isinstance(res, BaseException):
            raise res
        extras.append(res.extra)
    for key in ("temporal_fraction", "inpainted_fraction", "neighbours_used"):
        rows[key] = round(float(np.mean([e[key] for e in extras])), 4)
    errs = [e["registration_error"] for e in extras if e["registration_error"] is not None]
    rows["registration_error_px"] = round(float(np.median(errs)), 4) if errs else None
    for stage in ("registration", "fusion", "inpaint"):
        rows[f"s_{stage}"] = round(float(np.mean([e["temporal_timings"][stage] for e in extras])), 4)
    rows["shots"] = sorted({str(e["shot_id"]) for e in extras})
    if holdout:
        base = create_inpainter(load_config(overrides={"fill.method": inner}), "cpu")
        t = time.perf_counter()
        plain = [base.fill([im], [h])[0].plate for im, h in zip(images, holes, strict=True)]
        rows["seconds_per_frame_inner_only"] = round((time.perf_counter() - t) / n, 4)
        borrowed = [f & (sources[i] == 1) for i, f in zip(ids, fake, strict=True)]
        for tag, sel in (("", fake), ("_borrowed_px", borrowed)):
            truth = np.concatenate([im[f] for im, f in zip(images, sel, strict=True)])
            rows[f"holdout_psnr_temporal{tag}"] = round(psnr(np.concatenate(
                [r.plate[f] for (_, r), f in zip(results, sel, strict=True)]), truth), 2)
            rows[f"holdout_psnr_inner_only{tag}"] = round(psnr(np.concatenate(
                [p[f] for p, f in zip(plain, sel, strict=True)]), truth), 2)
        rows["holdout_temporal_fraction"] = round(int(sum(b.sum() for b in borrowed)) /
                                                  max(int(sum(f.sum() for f in fake)), 1), 4)
    if out is not None:
        d = out / name
        d.mkdir(parents=True, exist_ok=True)
        for (frame, res), im, h in zip(results, images, holes, strict=True):
            plate = M.composite(im, res.plate, h)
            cv2.imwrite(str(d / f"{frame.frame_id}_plate.png"), cv2.cvtColor(plate, cv2.COLOR_RGB2BGR))
            vis = (0.5 * im).astype(np.uint8)
            vis[sources[frame.frame_id] == 1] = (0, 200, 0)
            vis[sources[frame.frame_id] == 2] = (220, 0, 0)
            cv2.imwrite(str(d / f"{frame.frame_id}_source.png"), cv2.cvtColor(vis, cv2.COLOR_RGB2BGR))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inner", default="patchmatch")
    ap.add_argument("--window", type=int, default=4)
    ap.add_argument("--keyframes", type=int, default=0, help="extra keyframes each side (stride 8)")
    ap.add_argument("--clips", nargs="+", default=["sintel", "davis"], choices=["sintel", "davis"])
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--dilate", type=int, default=20, help="DAVIS masks: dilation in px")
    ap.add_argument("--no-holdout", dest="holdout", action="store_false")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    report = {}
    for clip in args.clips:
        ids, images, masks = sintel(args.limit) if clip == "sintel" else davis(args.limit, args.dilate)
        report[clip] = run_clip(clip, ids, images, masks, args.inner, args.window, args.holdout, args.out,
                                 args.keyframes)
        print(clip, json.dumps(report[clip]), flush=True)


if __name__ == "__main__":
    main()
