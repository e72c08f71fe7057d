"""Bench case: a large character that barely moves for the whole shot (issue 20).

The DAVIS tennis player (its true mask, shadow band stripped) is scaled up to cover more than a
quarter of the frame and pasted nearly still (a few px of sway) over consecutive Sintel frames
(the market clip, cropped to its left part where Sintel's own character never is, ping-ponged to the shot length). No frame of the shot sees the
set behind him, so every method has to invent it: the case measures the inventor, not the borrowing.
The truth is the frame before pasting; the masks are the true ones dilated as the pipeline does.

Metrics per method: PSNR and SSIM in the hole, the flat score of :mod:`cleanplate.qa.metrics`
(plates above ``qa.flat_threshold`` are counted as flagged), and the steadiness of the filled
region: the mean absolute change of the hole's pixels between consecutive frames, after
registering the earlier frame onto the later (levels), next to the truth's own change there. It is
measured twice: along the shot model's whole-frame registration (``steadiness``, as the methods
see the shot), and along the set's own motion at the hole, fitted to the truth there
(``steadiness_set``, :func:`set_motion`). The first counts the whole-frame fit's error at the
hole as change (a sharp texture that moves exactly with the set scores worse than a blur); the
second is the flicker a viewer sees, the invented region moving otherwise than the set around it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from cleanplate.config import Config
from cleanplate.fill.base import INPAINTERS
from cleanplate.fill.exemplar import ExemplarInpainter
from cleanplate.fill.patchmatch import PatchMatchInpainter
from cleanplate.fill.shot_fill import invent_once
from cleanplate.io.outputs import read_image_rgb
from cleanplate.masks import dilate, dilation_radius
from cleanplate.motion.shot_model import ShotModel
from cleanplate.qa.metrics import flat_score, psnr, ssim
from cleanplate.report.bench_data import _cutouts, _frame_files, _pingpong, _scale, find_data_dir

METHODS = ("patchmatch", "exemplar", "exemplar-once", "temporal+patchmatch", "temporal+patchmatch-fresh")
"""``temporal+patchmatch`` is the offline default (what no frame saw invented once and carried
along the registration, ``fill.temporal.carry_invented``); ``-fresh`` invents anew in every frame."""


@dataclass(frozen=True)
class StillSpec:
    """How the still-character composite is made."""

    name: str = "still-tennis-over-sintel"
    base_clip: str = "sintel_market"
    base_start: int = 0  # first frame of the base clip
    base_x0: int = 0  # the base frames are cropped to columns base_x0 : base_x0 + base_width,
    base_width: int = 340  # clear of Sintel's own character (the truth behind the player is the set)
    object_clip: str = "davis_tennis"
    object_frame: int = 40
    object_height: float = 0.68  # share of the frame height
    sway: int = 3  # px of horizontal sway (a third of it vertically)
    frames: int = 16


HELD_OUT = StillSpec(name="still-tennis-over-bmx", base_clip="davis_bmx-trees", base_start=48, base_x0=180,
                     base_width=252, object_height=0.8)
"""A second composite nothing was tuned on: the same player over DAVIS bmx-trees frames 48.. cropped to
the trees right of the rider (the bench's ``nobody-bmx`` crop, a panning camera)."""


@dataclass
class StillShot:
    """The built shot: composites, truth, pasted character and the holes to fill (HxW bool)."""

    spec: StillSpec
    frames: list[np.ndarray]
    truth: list[np.ndarray]
    pasted: list[np.ndarray]
    holes: list[np.ndarray]
    notes: list[str] = field(default_factory=list)

    @property
    def character_fraction(self) -> float:
        return float(np.mean([m.mean() for m in self.pasted]))

    @property
    def never_seen_fraction(self) -> float:
        """Share of the first frame's hole that every frame's hole covers (no frame sees it)."""
        always = np.logical_and.reduce(self.holes)
        return float(always[self.holes[0]].mean())


def build_still(config: Config, data: str | Path | None = None, spec: StillSpec = StillSpec()) -> StillShot:
    """Build the composite in memory (HxWx3 uint8 RGB frames and truth, HxW bool masks)."""
    root = find_data_dir(data)
    files = _frame_files(root / spec.base_clip)
    idx = _pingpong(spec.base_start, len(files), spec.frames)
    bases = [read_image_rgb(files[i]) for i in idx]
    x0 = spec.base_x0
    bases = [np.ascontiguousarray(b[:, x0:x0 + spec.base_width]) for b in bases]
    h, w = bases[0].shape[:2]
    cut = _cutouts(root / spec.object_clip, spec.object_frame, 1, band=True)[0]
    cut = _scale(cut, spec.object_height * h / cut.mask.shape[0])
    ch, cw = cut.mask.shape
    radius = dilation_radius(config.masks.dilate, config.masks.dilate_relative, (h, w))
    frames, pasted, holes = [], [], []
    for k, base in enumerate(bases):
        phase = 2 * math.pi * k / spec.frames
        x = (w - cw) // 2 + round(spec.sway * math.sin(phase))
        y = h - ch - 2 + round(spec.sway / 3 * math.sin(2 * phase))
        m = np.zeros((h, w), bool)
        ys, xs = slice(max(y, 0), min(y + ch, h)), slice(max(x, 0), min(x + cw, w))
        m[ys, xs] = cut.mask[ys.start - y:ys.stop - y, xs.start - x:xs.stop - x]
        comp = base.copy()
        comp[m] = cut.rgb[ys.start - y:ys.stop - y, xs.start - x:xs.stop - x][m[ys, xs]]
        frames.append(comp)
        pasted.append(m)
        holes.append(dilate(m, radius))
    return StillShot(spec, frames, bases, pasted, holes)


def register_shot(frames: list[np.ndarray], holes: list[np.ndarray], config: Config) -> list[np.ndarray]:
    """Each frame's 3x3 homography onto the middle frame (frame (x, y) -> reference (x, y)), read off
    the shot model (the frames registered one after the other, as the pipeline does)."""
    model = ShotModel.build(frames, config.shots)
    ref = len(frames) // 2
    return [m if (m := model.matrix(i, ref)) is not None else np.eye(3) for i in range(len(frames))]


def _pairs(homs: list[np.ndarray]) -> list[np.ndarray]:
    """Frame t-1 -> frame t (3x3) for t >= 1 (index 0: identity), from the frames' matrices onto the reference."""
    return [np.eye(3)] + [np.linalg.inv(homs[t]) @ homs[t - 1] for t in range(1, len(homs))]


def set_motion(shot: StillShot, homs: list[np.ndarray]) -> list[np.ndarray]:
    """How the set itself moves at the hole, frame t-1 -> frame t (3x3; index 0: identity).

    The shot model's homography is fitted to the whole frame; in a set with depth the ground at a
    character's feet moves otherwise than the far wall. This registration is fitted (ECC,
    homography, from the shot model's) to the TRUTH (the frames before pasting) over the hole and
    a ring around it, so a fill that moves with the set there shows no change, and the truth's own
    change is what is left after the best warp (light, parallax inside the hole). Bench only: it
    reads the truth, which no method sees.
    """
    out = [np.eye(3)]
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-5)
    for t, m in enumerate(_pairs(homs)[1:], start=1):
        h, w = shot.holes[t].shape
        region = dilate(shot.holes[t], max(4, round(0.05 * min(h, w))))
        a = cv2.cvtColor(shot.truth[t], cv2.COLOR_RGB2GRAY).astype(np.float32)
        b = cv2.cvtColor(shot.truth[t - 1], cv2.COLOR_RGB2GRAY).astype(np.float32)
        warp = np.linalg.inv(m)
        warp = (warp / warp[2, 2]).astype(np.float32)  # ECC: template (frame t) -> input (frame t-1)
        try:
            _, warp = cv2.findTransformECC(a, b, warp, cv2.MOTION_HOMOGRAPHY, criteria, region.astype(np.uint8), 5)
            fitted = np.linalg.inv(warp.astype(np.float64))
            out.append(fitted / fitted[2, 2])
        except cv2.error:
            out.append(m)
    return out


def _steadiness(plates: list[np.ndarray], holes: list[np.ndarray], pairs: list[np.ndarray]) -> float:
    """Mean |change| (levels) of the hole's pixels between consecutive frames, frame t-1 warped onto
    frame t by ``pairs[t]``."""
    vals = []
    for t in range(1, len(plates)):
        h, w = holes[t].shape
        m = pairs[t]
        prev = cv2.warpPerspective(plates[t - 1], m, (w, h), flags=cv2.INTER_LINEAR)
        prev_hole = cv2.warpPerspective(holes[t - 1].astype(np.float32), m, (w, h)) > 0.999
        region = holes[t] & prev_hole
        if region.any():
            vals.append(np.abs(plates[t][region].astype(np.float32) - prev[region]).mean())
    return float(np.mean(vals)) if vals else float("nan")


def evaluate(shot: StillShot, plates: list[np.ndarray], homs: list[np.ndarray], config: Config,
             motion: list[np.ndarray] | None = None) -> dict[str, float]:
    """PSNR / SSIM in the hole, flat score and flags, steadiness (with the truth's) of ``plates``:
    ``steadiness`` along the shot model's registration (``homs``), ``steadiness_set`` along the set's
    own motion at the hole (``motion``, :func:`set_motion`; computed when not given)."""
    motion = motion if motion is not None else set_motion(shot, homs)
    pairs = _pairs(homs)
    flats = [flat_score(p, m)[0] for p, m in zip(plates, shot.holes, strict=True)]
    return {
        "psnr_hole": round(float(np.mean([psnr(p, t, m) for p, t, m in
                                          zip(plates, shot.truth, shot.holes, strict=True)])), 2),
        "ssim_hole": round(float(np.mean([ssim(p, t, m) for p, t, m in
                                          zip(plates, shot.truth, shot.holes, strict=True)])), 4),
        "flat_max": round(float(max(flats)), 4),
        "flat_flagged": int(sum(f > config.qa.flat_threshold for f in flats)),
        "steadiness": round(_steadiness(plates, shot.holes, pairs), 2),
        "steadiness_truth": round(_steadiness(shot.truth, shot.holes, pairs), 2),
        "steadiness_set": round(_steadiness(plates, shot.holes, motion), 2),
        "steadiness_set_truth": round(_steadiness(shot.truth, shot.holes, motion), 2),
    }


def _per_frame(inpainter: PatchMatchInpainter | ExemplarInpainter) -> Callable[[StillShot, list[np.ndarray]],
                                                                             list[np.ndarray]]:
    def run(shot: StillShot, homs: list[np.ndarray]) -> list[np.ndarray]:
        return [inpainter.fill([f], [m])[0].plate for f, m in zip(shot.frames, shot.holes, strict=True)]
    return run


def _temporal(config: Config, carry: bool) -> Callable[[StillShot, list[np.ndarray]], list[np.ndarray]]:
    tc = config.fill.temporal.model_copy(update={"carry_invented": carry})
    cfg = config.model_copy(update={"fill": config.fill.model_copy(update={"temporal": tc})})
    filler = INPAINTERS.get("temporal+patchmatch")(cfg, "cpu")

    def run(shot: StillShot, homs: list[np.ndarray]) -> list[np.ndarray]:
        return [r.plate for r in filler.fill(shot.frames, shot.holes)]
    return run


def _once(shot: StillShot, homs: list[np.ndarray], config: Config) -> list[np.ndarray]:
    sf = invent_once(shot.frames, shot.holes, homs)
    return [sf.plate(i, f, m) for i, (f, m) in enumerate(zip(shot.frames, shot.holes, strict=True))]


def run_still_bench(config: Config, data: str | Path | None = None, methods: tuple[str, ...] = METHODS,
                    spec: StillSpec = StillSpec()) -> dict[str, object]:
    """Build the case, fill it with each method (true masks), measure. Returns a JSON-ready dict."""
    shot = build_still(config, data, spec)
    homs = register_shot(shot.frames, shot.holes, config)
    motion = set_motion(shot, homs)
    rows: dict[str, dict[str, float]] = {}
    for name in methods:
        if name == "patchmatch":
            fill = _per_frame(PatchMatchInpainter(config, "cpu"))
        elif name == "exemplar":
            fill = _per_frame(ExemplarInpainter(config, "cpu"))
        elif name == "exemplar-once":
            def fill(s: StillShot, h: list[np.ndarray]) -> list[np.ndarray]:
                return _once(s, h, config)
        elif name.startswith("temporal+patchmatch"):
            fill = _temporal(config, carry=not name.endswith("-fresh"))
        else:
            raise ValueError(f"unknown method '{name}' (known: {', '.join(METHODS)})")
        t0 = time.perf_counter()
        plates = fill(shot, homs)
        sec = (time.perf_counter() - t0) / len(plates)
        rows[name] = {**evaluate(shot, plates, homs, config, motion), "s_per_frame": round(sec, 3)}
    h, w = shot.frames[0].shape[:2]
    return {
        "case": spec.name, "frames": len(shot.frames), "size": f"{w}x{h}",
        "character_fraction": round(shot.character_fraction, 3),
        "hole_fraction": round(float(np.mean([m.mean() for m in shot.holes])), 3),
        "never_seen_fraction": round(shot.never_seen_fraction, 3),
        "methods": rows,
    }


def still_markdown(result: dict[str, object]) -> list[str]:
    """The result as a markdown table (and the held-out composite's, when it ran)."""
    lines = _still_table(result)
    held = result.get("held_out")
    if isinstance(held, dict):
        lines += ["", "Held out (nothing tuned on it):", "", *_still_table(held)]
    return lines


def _still_table(result: dict[str, object]) -> list[str]:
    rows = result["methods"]
    assert isinstance(rows, dict)
    lines = [
        f"Still character: {result['case']}, {result['frames']} frames at {result['size']}, character "
        f"{float(result['character_fraction']):.0%} of the frame, hole {float(result['hole_fraction']):.0%}, "  # type: ignore[arg-type]
        f"{float(result['never_seen_fraction']):.0%} of it never seen by any frame",  # type: ignore[arg-type]
        "",
        "| method | PSNR hole (dB) | SSIM hole | flat max | flagged flat | steadiness (levels) | truth's "
        "| steadiness along the set (levels) | truth's | s/frame |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['psnr_hole']:.2f} | {r['ssim_hole']:.3f} | {r['flat_max']:.3f} | "
                     f"{r['flat_flagged']} | {r['steadiness']:.2f} | {r['steadiness_truth']:.2f} | "
                     f"{r.get('steadiness_set', float('nan')):.2f} | {r.get('steadiness_set_truth', float('nan')):.2f} | "
                     f"{r['s_per_frame']:.2f} |")
    return lines


__all__ = ["HELD_OUT", "METHODS", "StillShot", "StillSpec", "build_still", "evaluate", "register_shot", "run_still_bench",
           "set_motion", "still_markdown"]
