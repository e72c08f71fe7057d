"""Character benchmark cases (issue 26, item 6): real footage from ``../shared/data`` with known truth.

Each case is a short shot with, per frame, the truth mask of every character in view and the
regions that must stay unmasked (still props):

* ``nobody-tennis`` / ``nobody-bmx``: crops of DAVIS frames where the truth masks show nobody
  (tennis: a static camera on a banner, fence and trees; bmx-trees: a panning camera on trees).
* ``still-prop``: ``nobody-tennis`` with a prop cut by hand from Sintel's ``frame_0016.png``
  (the crates and hanging bucket, crop box x 70-215, y 205-436) standing still in the scene: the
  camera pans, so it is pasted where the registration carries it (:func:`scene_fixed`).
* ``still-character``: ``nobody-tennis`` with the bmx rider of ``davis_bmx-trees`` frame 0, cut with
  its DAVIS mask, standing still in the scene and unchanged in every frame (only a concept model
  can tell).
* ``standing-character``: the same place, the rider's successive cut-outs (frames 0..n-1) anchored
  there: no motion against the set, but change inside, as a living figure.
* ``two-characters``: DAVIS tennis frames 20.. (the player in view, his truth without the shadow
  band) with a small bmx rider (30 % of the frame's height) pasted moving across.
* ``three-characters``: ``two-characters`` plus a second rider (cut from frames 40..) moving fast
  the other way (half the frame's width in a quarter of the shot).
* ``large-character-beside-prop``: ``nobody-tennis`` with the DAVIS tennis player (his cut-outs of
  frames 0-7 ping-ponged, shadow band stripped, 80 % of the frame's height: a large character who
  moves a little) standing in the scene right beside the still crates of ``still-prop`` (half the
  frame's height), overlapping them by a few px: the detector's blob joins the two.
* ``sintel-girl``: the 10 Sintel frames as they are (at most ``n``). There is no truth mask of the
  girl; a generous region around her (hair, body, arm, hand and the apple she holds), drawn by hand
  per frame (:data:`SINTEL_GIRL`, how it was made is in the file), is where masking is *allowed*;
  the share of the frame masked outside it is scored (issue 26: under 5 %).

:func:`build_case` makes one; :func:`score_case` runs the real default pipeline on it and measures;
:func:`oracle_for` gives the oracle concept source that names its characters.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from cleanplate.config import Config, load_config
from cleanplate.errors import InputError
from cleanplate.io.frames import load_image
from cleanplate.report.bench_data import find_data_dir, strip_shadow_band

TENNIS_CLEAR = (236, 0, 432, 156)
"""XYXY crop of DAVIS tennis frames 0-19 where the player's truth mask (shadow included) is empty."""
BMX_CLEAR = (180, 0, 432, 240)
"""XYXY crop of DAVIS bmx-trees frames 48-67 where the rider's truth mask is empty."""
SINTEL_PROP = ("sintel_market/frame_0016.png", (70, 205, 215, 436))
"""The still prop: crates with a hanging bucket, cut by hand (XYXY box) from a Sintel frame."""

SINTEL_GIRL = Path(__file__).with_name("sintel_girl.json")
"""Per Sintel frame, a hand-drawn polygon generously around the girl (see its ``how``)."""

CASES = ("nobody-tennis", "nobody-bmx", "still-prop", "still-character", "standing-character", "two-characters",
         "three-characters", "large-character-beside-prop", "sintel-girl")


@dataclass
class Pasted:
    """Where a pasted cut-out went in one frame: ``rgb`` (hxwx3 uint8) and ``mask`` (hxw bool) at
    top-left ``xy`` (may lie partly outside the frame)."""

    rgb: np.ndarray
    mask: np.ndarray
    xy: tuple[int, int]


@dataclass
class BenchCase:
    """One benchmark shot.

    ``frames``: HxWx3 uint8 RGB; ``characters``: name -> per-frame HxW bool truth (all False where it
    is out of view); ``props``: name -> per-frame HxW bool regions that must stay unmasked;
    ``allowed``: name -> per-frame HxW bool region around a character with no truth mask, where
    masking is allowed (outside it and the truths, whatever is masked is not a character's);
    ``pasted``: name -> per-frame :class:`Pasted` (None where not pasted) for each pasted object;
    ``sources``: how each character and prop was made.
    """

    name: str
    description: str
    frames: list[np.ndarray]
    characters: dict[str, list[np.ndarray]] = field(default_factory=dict)
    props: dict[str, list[np.ndarray]] = field(default_factory=dict)
    allowed: dict[str, list[np.ndarray]] = field(default_factory=dict)
    pasted: dict[str, list[Pasted | None]] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def nobody(self) -> list[bool]:
        """Per frame: no character in view (none with a truth mask, none with an allowed region)."""
        return [not any(m[t].any() for m in (*self.characters.values(), *self.allowed.values()))
                for t in range(len(self.frames))]

    def truths(self) -> list[list[np.ndarray]]:
        """Per frame, the truth mask of each character in view (for the oracle concept source)."""
        return [[m[t] for m in self.characters.values() if m[t].any()] for t in range(len(self.frames))]


# --- footage ------------------------------------------------------------------------------------

def _clip_frames(data: Path, clip: str, start: int, n: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Frames ``start``..``start+n-1`` of a DAVIS clip (HxWx3 uint8 RGB) with their truth masks (HxW bool)."""
    folder = data / clip
    files = sorted(p for p in (folder / "frames").iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if len(files) < start + n:
        raise InputError(f"{folder / 'frames'} has {len(files)} frames, the case needs {start + n}")
    frames, masks = [], []
    for p in files[start:start + n]:
        frames.append(np.array(load_image(p)))  # writable: cut-outs are pasted into it
        m = cv2.imread(str(folder / "masks" / f"{p.stem}.png"), cv2.IMREAD_GRAYSCALE)
        masks.append(np.zeros(frames[-1].shape[:2], bool) if m is None else m > 127)
    return frames, masks


def _crop(images: list[np.ndarray], box: tuple[int, int, int, int]) -> list[np.ndarray]:
    x0, y0, x1, y1 = box
    return [np.ascontiguousarray(im[y0:y1, x0:x1]) for im in images]


def _cutout(rgb: np.ndarray, mask: np.ndarray, height: int) -> tuple[np.ndarray, np.ndarray]:
    """The masked object's bounding-box crop scaled to ``height`` px: (hxwx3 uint8 RGB, hxw bool)."""
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    f = height / (y1 - y0)
    size = (max(1, round((x1 - x0) * f)), max(1, round((y1 - y0) * f)))
    small = cv2.resize(rgb[y0:y1, x0:x1], size, interpolation=cv2.INTER_AREA)
    m = cv2.resize(mask[y0:y1, x0:x1].astype(np.float32), size, interpolation=cv2.INTER_AREA) >= 0.5
    return small, m


def paste(frame: np.ndarray, rgb: np.ndarray, mask: np.ndarray, xy: tuple[int, int]) -> np.ndarray:
    """Paste ``rgb`` where ``mask`` at top-left ``xy`` into ``frame`` (in place, clipped to it);
    returns the HxW bool footprint."""
    h, w = frame.shape[:2]
    x, y = xy
    fx0, fy0, fx1, fy1 = max(0, x), max(0, y), min(w, x + rgb.shape[1]), min(h, y + rgb.shape[0])
    foot = np.zeros((h, w), bool)
    if fx1 <= fx0 or fy1 <= fy0:
        return foot
    m = mask[fy0 - y:fy1 - y, fx0 - x:fx1 - x]
    frame[fy0:fy1, fx0:fx1][m] = rgb[fy0 - y:fy1 - y, fx0 - x:fx1 - x][m]
    foot[fy0:fy1, fx0:fx1] = m
    return foot


def _paste_all(case: BenchCase, name: str, cuts: list[tuple[np.ndarray, np.ndarray]], xys: list[tuple[int, int]],
               kind: str) -> None:
    """Paste one cut-out per frame over everything before it (earlier truths lose what it covers)."""
    feet, pasted = [], []
    for t, ((rgb, m), xy) in enumerate(zip(cuts, xys, strict=True)):
        foot = paste(case.frames[t], rgb, m, xy)
        for group in (case.characters, case.props):
            for masks in group.values():
                masks[t] &= ~foot
        feet.append(foot)
        pasted.append(Pasted(rgb, m, xy))
    (case.characters if kind == "character" else case.props)[name] = feet
    case.pasted[name] = pasted


def _across(n: int, width: int, obj_w: int, bottom: int, obj_h: int, reverse: bool = False,
            span: float = 1.0) -> list[tuple[int, int]]:
    """Top-left positions moving an object across the frame (left to right, or back) over ``span`` of the
    shot, then off screen."""
    out = []
    steps = max(1, round((n - 1) * span))
    for t in range(n):
        a = min(t / steps, 1.0) if t <= steps else 1.0 + (t - steps) / steps
        x = round(-obj_w / 2 + a * width)
        out.append((width - obj_w - x if reverse else x, bottom - obj_h))
    return out


# --- the cases ----------------------------------------------------------------------------------

def _nobody_tennis(data: Path, n: int) -> BenchCase:
    frames, masks = _clip_frames(data, "davis_tennis", 0, n)
    if any(m.any() for m in _crop([mk.astype(np.uint8) for mk in masks], TENNIS_CLEAR)):
        raise InputError(f"the tennis player's mask enters the crop {TENNIS_CLEAR} within frames 0..{n - 1}")
    return BenchCase("nobody-tennis", f"DAVIS tennis frames 0-{n - 1} cropped to {TENNIS_CLEAR} (XYXY): the banner, "
                     "fence and trees, nobody in view (static camera)", _crop(frames, TENNIS_CLEAR))


def _nobody_bmx(data: Path, n: int) -> BenchCase:
    frames, masks = _clip_frames(data, "davis_bmx-trees", 48, n)
    if any(m.any() for m in _crop([mk.astype(np.uint8) for mk in masks], BMX_CLEAR)):
        raise InputError(f"the bmx rider's mask enters the crop {BMX_CLEAR} within frames 48..{47 + n}")
    return BenchCase("nobody-bmx", f"DAVIS bmx-trees frames 48-{47 + n} cropped to {BMX_CLEAR} (XYXY): trees and "
                     "a fence under a panning camera, nobody in view", _crop(frames, BMX_CLEAR))


def _rider_cuts(data: Path, start: int, n: int, height: int) -> list[tuple[np.ndarray, np.ndarray]]:
    frames, masks = _clip_frames(data, "davis_bmx-trees", start, n)
    return [_cutout(f, m, height) for f, m in zip(frames, masks, strict=True)]


def scene_fixed(frames: list[np.ndarray], xy: tuple[int, int], anchor: tuple[int, int]) -> list[tuple[int, int]]:
    """Top-left positions that keep an object pasted at ``xy`` in the first frame still *in the
    scene*: its ``anchor`` point (x, y, in the object) follows the camera (the frames registered
    one after the other, :class:`~cleanplate.motion.shot_model.ShotModel`). A still prop in a
    panning shot moves across the picture with the scenery; pasted at one place in the picture,
    it would move against the set."""
    from cleanplate.motion.shot_model import ShotModel

    model = ShotModel.build(frames)
    p = np.array([[[xy[0] + anchor[0], xy[1] + anchor[1]]]], np.float64)
    out = []
    for t in range(len(frames)):
        m = model.matrix(0, t)
        q = p[0, 0] if m is None else cv2.perspectiveTransform(p, m)[0, 0]
        out.append((int(round(q[0] - anchor[0])), int(round(q[1] - anchor[1]))))
    return out


def _crates(root: Path, height: int) -> tuple[np.ndarray, np.ndarray, str]:
    """The still prop (:data:`SINTEL_PROP`) cut out ``height`` px high: (rgb, mask, where it came from)."""
    path, (x0, y0, x1, y1) = SINTEL_PROP
    src = load_image(root / path)
    box = np.zeros(src.shape[:2], bool)
    box[y0:y1, x0:x1] = True
    rgb, m = _cutout(src, box, height)
    return rgb, m, f"{path} crop box {SINTEL_PROP[1]} (XYXY), scaled to {rgb.shape[0]} px high"


def _large_beside_prop(root: Path, n: int) -> BenchCase:
    """``large-character-beside-prop`` (see the module docstring)."""
    from cleanplate.report.bench_data import _pingpong

    case = _nobody_tennis(root, n)
    case.name = "large-character-beside-prop"
    h, w = case.frames[0].shape[:2]
    frames, masks = _clip_frames(root, "davis_tennis", 0, 8)
    cuts = [_cutout(f, strip_shadow_band(m), round(0.8 * h)) for f, m in zip(frames, masks, strict=True)]
    cuts = [cuts[i] for i in _pingpong(0, len(cuts), n)]
    bw = max(c[0].shape[1] for c in cuts)
    rgb, m, src = _crates(root, round(0.5 * h))
    x = 4  # the camera pans right to left: the pair drifts right across the frame
    xys = scene_fixed(case.frames, (x + bw - 8, h - rgb.shape[0] - 4), (rgb.shape[1] // 2, rgb.shape[0]))
    _paste_all(case, "crates", [(rgb, m)] * n, xys, "prop")
    feet = scene_fixed(case.frames, (x, h - 4), (bw // 2, 0))
    _paste_all(case, "player", cuts, [(fx + (bw - c[0].shape[1]) // 2, fy - c[0].shape[0])
                                      for (fx, fy), c in zip(feet, cuts, strict=True)], "character")
    case.sources["crates"] = src
    case.sources["player"] = ("davis_tennis frames 0-7 (ping-ponged) cut with their DAVIS masks, the shadow band "
                              f"removed, {round(0.8 * h)} px high")
    case.description = ("nobody-tennis with the tennis player (80 % of the frame's height, moving a little) standing "
                        "in the scene right beside the still crates, overlapping them")
    return case


def girl_regions(shape: tuple[int, int], frame_ids: list[str]) -> list[np.ndarray]:
    """HxW bool: the hand-drawn region around Sintel's girl (:data:`SINTEL_GIRL`) in each of ``frame_ids``
    (file stems, ``frame_0016`` ...), rasterised at ``shape`` (H, W; the polygons are in 1024x436 pixels)."""
    import json

    polys = json.loads(SINTEL_GIRL.read_text())["frames"]
    missing = [f for f in frame_ids if f not in polys]
    if missing:
        raise InputError(f"{SINTEL_GIRL.name} has no region for {', '.join(missing)}")
    h, w = shape
    out = []
    for f in frame_ids:
        pts = np.array(polys[f], np.float64) * [w / 1024.0, h / 436.0]
        m = np.zeros((h, w), np.uint8)
        cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 1)
        out.append(m.astype(bool))
    return out


def _sintel_girl(data: Path, n: int) -> BenchCase:
    folder = data / "sintel_market"
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png")[:n] if folder.is_dir() else []
    if not files:
        raise InputError(f"no Sintel frames in {folder}")
    frames = [np.array(load_image(p)) for p in files]
    case = BenchCase("sintel-girl", f"the {len(files)} Sintel market frames as they are: the girl with an apple, the "
                     "camera and she move a little; no truth mask, a generous hand-drawn region around her",
                     frames)
    case.allowed["girl"] = girl_regions(frames[0].shape[:2], [p.stem for p in files])
    case.sources["girl"] = f"hand-drawn polygon per frame around the girl, her arm and the apple ({SINTEL_GIRL.name})"
    return case


def build_case(name: str, data: str | Path | None = None, n: int = 16) -> BenchCase:
    """Benchmark case ``name`` (one of :data:`CASES`) with ``n`` frames (``sintel-girl``: at most its 10),
    from the footage in ``data`` (default: :func:`~cleanplate.report.bench_data.find_data_dir`)."""
    root = find_data_dir(data)
    if name == "sintel-girl":
        return _sintel_girl(root, n)
    if name == "nobody-tennis":
        return _nobody_tennis(root, n)
    if name == "nobody-bmx":
        return _nobody_bmx(root, n)
    if name == "large-character-beside-prop":
        return _large_beside_prop(root, n)
    if name in ("still-prop", "still-character", "standing-character"):
        case = _nobody_tennis(root, n)
        h, w = case.frames[0].shape[:2]
        if name == "still-prop":
            path = SINTEL_PROP[0]
            rgb, m, where = _crates(root, round(0.55 * h))
            xy = (w - rgb.shape[1] - 12, h - rgb.shape[0] - 4)
            xys = scene_fixed(case.frames, xy, (rgb.shape[1] // 2, rgb.shape[0]))
            _paste_all(case, "crates", [(rgb, m)] * n, xys, "prop")
            case.sources["crates"] = where
            case.description = (f"nobody-tennis with a still prop (crates and a bucket cut by hand from {path}, box "
                                f"{SINTEL_PROP[1]}) standing still in the scene at the right (it pans with the camera)")
        else:
            cuts = _rider_cuts(root, 0, n, round(0.6 * h))
            if name == "still-character":
                cuts = [cuts[0]] * n
            bw = max(c[0].shape[1] for c in cuts)
            feet = scene_fixed(case.frames, (w // 2 - bw // 2, h - 6), (bw // 2, 0))  # where the feet stand
            xys = [(x, y - c[0].shape[0]) for (x, y), c in zip(feet, cuts, strict=True)]
            _paste_all(case, "rider", cuts, xys, "character")
            case.sources["rider"] = ("davis_bmx-trees frame 0 cut with its DAVIS mask" if name == "still-character"
                                     else f"davis_bmx-trees frames 0-{n - 1} cut with their DAVIS masks")
            case.description = ("nobody-tennis with the bmx rider of frame 0 standing still in the scene, unchanged"
                                if name == "still-character" else
                                "nobody-tennis with the bmx rider's successive cut-outs anchored at one place in "
                                "the scene")
        case.name = name
        return case
    if name in ("two-characters", "three-characters"):
        frames, masks = _clip_frames(root, "davis_tennis", 20, n)
        h, w = frames[0].shape[:2]
        case = BenchCase(name, "", frames, {"player": [strip_shadow_band(m) for m in masks]})
        case.sources["player"] = "davis_tennis frames 20.. with their DAVIS masks, the shadow band removed"
        small = _rider_cuts(root, 0, n, round(0.3 * h))
        bw, bh = max(c[0].shape[1] for c in small), max(c[0].shape[0] for c in small)
        _paste_all(case, "small-rider", small, _across(n, w, bw, h - 4, bh), "character")
        case.sources["small-rider"] = (f"davis_bmx-trees frames 0-{n - 1} cut with their DAVIS masks, "
                                       f"{bh} px high, moving left to right")
        case.description = "DAVIS tennis (player in view) with a small bmx rider pasted moving across"
        if name == "three-characters":
            fast = _rider_cuts(root, 40, n, round(0.45 * h))
            fw, fh = max(c[0].shape[1] for c in fast), max(c[0].shape[0] for c in fast)
            _paste_all(case, "fast-rider", fast, _across(n, w, fw, h - 30, fh, reverse=True, span=0.5), "character")
            case.sources["fast-rider"] = (f"davis_bmx-trees frames 40-{39 + n} cut with their DAVIS masks, {fh} px "
                                          "high, moving right to left across the frame in half the shot")
            case.description += ", and a second, fast rider crossing the other way"
        return case
    raise InputError(f"unknown benchmark case '{name}' (known: {', '.join(CASES)})")


def oracle_for(case: BenchCase) -> Any:
    """The oracle concept source that names exactly ``case``'s characters (label "person", score 1)."""
    from cleanplate.segment.concept_oracle import OracleConceptSource

    return OracleConceptSource(case.frames, case.truths())


# --- scoring ------------------------------------------------------------------------------------

@dataclass
class CaseScore:
    """What the pipeline did on one case (see :func:`score_case`)."""

    name: str
    frames: int
    nobody_frames: int
    nobody_masked_fraction: float | None  # mean share of the frame masked, over frames with nobody in view
    nobody_plates_equal: float | None  # share of those frames whose plate equals the input exactly
    prop_masked: float | None  # share of frames in which a still prop is masked (>= 10 % of its pixels)
    recall: dict[str, dict[str, float]]  # character -> mean, min, frames_below_half, frames
    seconds: float
    # share of the frame masked outside the allowed regions and truths (mean, max over frames), where
    # the case has allowed regions (a character with no truth mask)
    outside_allowed: dict[str, float] | None = None

    def row(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


def write_frames(case: BenchCase, folder: Path) -> list[str]:
    """Write the case's frames as PNG (``frame_0000.png`` ...); returns their frame ids."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = []
    for t, f in enumerate(case.frames):
        ids.append(f"frame_{t:04d}")
        cv2.imwrite(str(folder / f"{ids[-1]}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    return ids


def measure(case: BenchCase, masks: list[np.ndarray], plates: list[np.ndarray] | None, seconds: float = 0.0,
            prop_share: float = 0.1) -> CaseScore:
    """Score removal ``masks`` (HxW bool per frame) and ``plates`` (HxWx3 uint8 RGB, or None) against ``case``."""
    nobody = case.nobody
    idx = [t for t, e in enumerate(nobody) if e]
    frac = float(np.mean([masks[t].mean() for t in idx])) if idx else None
    equal = (float(np.mean([np.array_equal(plates[t], case.frames[t]) for t in idx]))
             if idx and plates is not None else None)
    prop_hits = [masks[t][p[t]].mean() >= prop_share for p in case.props.values() for t in range(len(masks))
                 if p[t].any()]
    recall = {}
    for name, truth in case.characters.items():
        r = [float(masks[t][truth[t]].mean()) for t in range(len(masks)) if truth[t].any()]
        if r:
            recall[name] = {"mean": round(float(np.mean(r)), 3), "min": round(min(r), 3),
                            "frames_below_half": int(sum(v < 0.5 for v in r)), "frames": len(r)}
    outside = None
    if case.allowed:
        shares = []
        for t, m in enumerate(masks):
            ok = np.zeros(m.shape, bool)
            for group in (case.allowed, case.characters):
                for regions in group.values():
                    ok |= regions[t]
            shares.append(float((m & ~ok).mean()))
        outside = {"mean": round(float(np.mean(shares)), 4), "max": round(max(shares), 4)}
    return CaseScore(case.name, len(case.frames), len(idx), None if frac is None else round(frac, 4),
                     None if equal is None else round(equal, 3),
                     round(float(np.mean(prop_hits)), 3) if prop_hits else None, recall, round(seconds, 1), outside)


def score_case(case: BenchCase, work: str | Path, config: Config | None = None) -> CaseScore:
    """Run the pipeline (``config``, default: ``load_config()`` with PNG plates, so a plate can equal its
    input exactly) on ``case`` in ``work`` and measure the removal masks and plates."""
    from cleanplate.masks import from_png
    from cleanplate.pipeline import run

    work = Path(work)
    config = config or load_config(overrides={"output.plate_format": "png"})
    ids = write_frames(case, work / "frames")
    t0 = time.perf_counter()
    run(work / "frames", work / "out", config, force=True)
    seconds = time.perf_counter() - t0
    masks, plates = [], []
    for i, frame in zip(ids, case.frames, strict=True):
        mp = work / "out" / "masks" / f"{i}.png"
        m = cv2.imread(str(mp), cv2.IMREAD_GRAYSCALE) if mp.is_file() else None
        masks.append(np.zeros(frame.shape[:2], bool) if m is None else from_png(m))
        pp = work / "out" / "backgrounds" / f"{i}.{config.output.plate_format}"
        p = cv2.imread(str(pp)) if pp.is_file() else None
        plates.append(np.zeros_like(frame) if p is None else cv2.cvtColor(p, cv2.COLOR_BGR2RGB))
    return measure(case, masks, plates, seconds)
