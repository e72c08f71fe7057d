"""Temporal clean plates (fill.method temporal+<inpainter>) on synthetic shots with known backgrounds.

Each sequence is a textured set (blurred noise + shapes, so keypoints match) seen through a camera
that moves by known whole-pixel shifts or known homographies, with a noise "character" disc that
hides a different place in each frame. The true background of every frame is known, so the tests
check the recovered pixels themselves.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from cleanplate.config import ShotsConfig, load_config
from cleanplate.errors import ConfigError
from cleanplate.fill import INPAINTERS, SequentialInpainter, create_inpainter
from cleanplate.fill.temporal import TemporalFiller
from cleanplate.motion.shots import compile_pattern, parse_shot
from cleanplate.records import FrameRecord, SequenceFrame
from cleanplate.stages.shots import ShotModelStage, ShotStage, shot_windows

H, W = 180, 240


def texture(h: int, w: int, seed: int) -> np.ndarray:
    """A smooth, feature-rich HxWx3 uint8 background."""
    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.integers(0, 256, (h // 6 + 2, w // 6 + 2, 3)).astype(np.uint8), (w, h),
                     interpolation=cv2.INTER_CUBIC)
    for _ in range(h * w // 1500):
        c = tuple(int(v) for v in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        if rng.random() < 0.5:
            cv2.rectangle(img, (x, y), (x + int(rng.integers(4, 20)), y + int(rng.integers(4, 20))), c, -1)
        else:
            cv2.circle(img, (x, y), int(rng.integers(3, 10)), c, -1)
    return cv2.GaussianBlur(img, (0, 0), 1.0)


def character(bg: np.ndarray, cx: int, cy: int, seed: int, r: int = 14) -> tuple[np.ndarray, np.ndarray]:
    """``bg`` with a noise disc at (cx, cy), and its removal mask (the disc grown by 3 px)."""
    disc = np.zeros(bg.shape[:2], np.uint8)
    cv2.circle(disc, (cx, cy), r, 1, -1)
    img = bg.copy()
    img[disc.astype(bool)] = np.random.default_rng(seed).integers(0, 256, (int(disc.sum()), 3))
    mask = np.zeros_like(disc)
    cv2.circle(mask, (cx, cy), r + 3, 1, -1)
    return img, mask.astype(bool)


def panning(n: int = 7, seed: int = 0, xs: list[int] | None = None, step: tuple[int, int] = (3, 2)):
    """Frames, masks and true backgrounds of a camera panning by ``step`` px a frame."""
    canvas = texture(H + 60, W + 80, seed)
    xs = xs or [40 + 25 * i for i in range(n)]
    frames, masks, truths = [], [], []
    for i in range(n):
        ox, oy = 10 + step[0] * i, 8 + step[1] * i
        bg = canvas[oy:oy + H, ox:ox + W].copy()
        img, mask = character(bg, xs[i], H // 2, seed * 100 + i)
        frames.append(img), masks.append(mask), truths.append(bg)
    return frames, masks, truths


def filler(method: str = "temporal+opencv-telea", **temporal: object) -> TemporalFiller:
    overrides = {"fill.method": method, "fill.temporal.window": 2}
    shot_keys = set(ShotsConfig.model_fields)
    overrides.update({f"{'shots' if k in shot_keys else 'fill.temporal'}.{k}": v for k, v in temporal.items()})
    f = create_inpainter(load_config(overrides=overrides), "cpu")
    assert isinstance(f, TemporalFiller) and isinstance(f, SequentialInpainter)
    return f


def run(f: TemporalFiller, frames, masks, ids=None, todo=None):
    ids = ids or [f"frame_{i:04d}" for i in range(len(frames))]
    todo = todo or [True] * len(frames)
    # shots and shot models come from the pipeline's shots stages, with the filler's shot settings
    labelled = ShotStage(f.shots)(FrameRecord(i, k, "", image=im) for k, (i, im) in enumerate(zip(ids, frames, strict=True)))
    recs = [r for w in shot_windows(labelled, 1000) for r in ShotModelStage(f.shots)(w)]
    seq = (SequenceFrame(i, k, im, m, t, r.shot_id, r.shot)
           for k, (i, im, m, t, r) in enumerate(zip(ids, frames, masks, todo, recs, strict=True)))
    out = list(f.fill_sequence(seq))
    for _, res in out:
        assert not isinstance(res, BaseException), res
    return out


# ------------------------------------------------------------------------------------- registry

def test_temporal_names_resolve_in_the_registry():
    f = filler("temporal+patchmatch")
    assert f.inner_name == "patchmatch" and f.name == "temporal+patchmatch"
    assert "temporal+lama" in INPAINTERS and INPAINTERS.get("temporal+opencv-ns").inner_name == "opencv-ns"
    with pytest.raises(ConfigError, match=r"unknown fill method 'temporal\+nope'"):
        create_inpainter(load_config(overrides={"fill.method": "temporal+nope"}), "cpu")


def test_shot_pattern():
    rx = compile_pattern(load_config().shots.shot_pattern)
    assert parse_shot("scene0535_0012", rx) == "scene0535"
    assert parse_shot("sq010_sh020.0001", rx) == "sq010_sh020"
    assert parse_shot("frame_0016", rx) is None and parse_shot("00012", rx) is None
    with pytest.raises(ConfigError):
        compile_pattern("(unclosed")
    with pytest.raises(ConfigError, match="shot"):
        compile_pattern(r"(\w+)_\d+")


# ------------------------------------------------------------------------------------ recovery

@pytest.mark.parametrize("features", ["orb", "sift"])
def test_panning_shot_recovers_hidden_pixels_exactly(features: str):
    frames, masks, truths = panning()
    out = run(filler(features=features), frames, masks)
    assert [fr.frame_id for fr, _ in out] == [f"frame_{i:04d}" for i in range(7)]
    for i, ((_, res), mask, truth) in enumerate(zip(out, masks, truths, strict=True)):
        e = res.extra
        assert e["temporal_fraction"] == 1.0 and e["inpainted_fraction"] == 0.0
        assert np.array_equal(res.plate[mask], truth[mask])  # whole-pixel pan: copied, not resampled
        assert e["neighbours_used"] == min(2, i) + min(2, 6 - i)  # every frame of the window, 2 each side
        assert e["registration_error"] < 1.0  # px, the worst link's median keypoint residual
    # the content detector scores a busy pan like a cut; registration vetoes it: one shot
    assert {res.extra["shot_id"] for _, res in out} == {"shot0000"}


def test_homography_shot_recovers_within_interpolation_error():
    canvas = texture(300, 400, 3)
    frames, masks, truths = [], [], []
    for i in range(7):
        a, s = np.deg2rad(0.6 * i), 1 + 0.012 * i
        g = np.array([[np.cos(a) * s, -np.sin(a) * s, -40 - 4 * i],
                      [np.sin(a) * s, np.cos(a) * s, -30 - 3 * i], [2e-5 * i, 1e-5 * i, 1.0]])
        bg = cv2.warpPerspective(canvas, g, (W, H), flags=cv2.INTER_LINEAR)
        img, mask = character(bg, 40 + 25 * i, H // 2, i)
        frames.append(img), masks.append(mask), truths.append(bg)
    out = run(filler(), frames, masks)
    for (_, res), mask, truth in zip(out, masks, truths, strict=True):
        err = np.abs(res.plate.astype(int) - truth)[mask]
        assert res.extra["temporal_fraction"] == 1.0
        assert err.mean() < 1.5 and err.max() <= 12 and np.percentile(err, 99) <= 4
    # an inner inpainter alone is far worse on the same holes
    plain = create_inpainter(load_config(overrides={"fill.method": "opencv-telea"}), "cpu")
    err = np.abs(plain.fill([frames[3]], [masks[3]])[0].plate.astype(int) - truths[3])[masks[3]]
    assert err.mean() > 10


@pytest.mark.parametrize("margin", [0, 8])
def test_missed_character_parts_next_to_a_neighbours_mask_are_not_borrowed(margin: int):
    """A detector that misses a thin part (a red tail) just outside each mask: with a margin it is not copied."""
    bg = texture(H, W, 5)
    frames, masks, tails = [], [], []
    for i in range(5):
        cx = 60 + 12 * i  # overlapping positions: frame i+1's tail lies inside frame i's hole
        img, mask = character(bg, cx, H // 2, i)
        img[H // 2 - 10:H // 2 + 10, cx - 20:cx - 17] = (255, 0, 0)  # 1-3 px outside the mask, not masked
        frames.append(img), masks.append(mask), tails.append(cx)
    out = run(filler(window=1, neighbour_margin=margin, detector="none"), frames, masks)
    _, res = out[2]
    cx = tails[2]
    band = res.plate[H // 2 - 10:H // 2 + 10, cx - 9:cx - 4]  # where frame 3's tail would be copied
    red = int(np.all(band == (255, 0, 0), axis=2).sum())
    if margin == 0:
        assert red > 20  # the ghost the margin prevents
    else:
        assert red == 0
        assert res.extra["temporal_fraction"] > 0.1  # the rest of the hole still comes from the neighbours


def test_static_shot_without_keypoints_recovers_exactly():
    yy, xx = np.mgrid[0:H, 0:W]
    flat = np.dstack([xx * 255 // W, yy * 255 // H, np.full((H, W), 90)]).astype(np.uint8)  # no corners
    frames, masks = zip(*(character(flat, 40 + 30 * i, H // 2, i) for i in range(5)), strict=True)
    out = run(filler(), list(frames), list(masks))
    for (_, res), mask in zip(out, masks, strict=True):
        assert res.extra["temporal_fraction"] == 1.0
        assert np.array_equal(res.plate[mask], flat[mask])


def test_gain_compensation_and_ring_check():
    bg = texture(H, W, 5)
    xs = [40, 100, 40, 160, 200]
    frames, masks = map(list, zip(*(character(bg, x, H // 2, i) for i, x in enumerate(xs)), strict=True))
    # frame 0's hole is seen only by frame 1, which is 8% brighter (exposure flicker)
    frames[1] = np.clip(frames[1].astype(np.float32) * 1.08, 0, 255).astype(np.uint8)
    # frame 3 shows something else where frames 0 and 2 have their hole (a prop moved)
    cv2.circle(frames[3], (40, H // 2), 26, (255, 0, 255), -1)
    out = {fr.frame_id: res for fr, res in run(filler(), frames, masks)}
    r0 = out["frame_0000"]
    assert r0.extra["temporal_fraction"] == 1.0 and r0.extra["neighbour_ids"] == ["frame_0001"]
    assert np.abs(r0.plate.astype(int) - bg)[masks[0]].mean() < 1.5  # frame 1's brightness compensated
    r2 = out["frame_0002"]
    assert "frame_0003" not in r2.extra["neighbour_ids"] and "frame_0003" in r2.extra["neighbours_rejected"]
    assert r2.extra["temporal_fraction"] == 1.0
    assert np.abs(r2.plate.astype(int) - bg)[masks[2]].mean() < 1.0
    without_gain = run(filler(gain=False), frames, masks)[0][1]
    assert np.abs(without_gain.plate.astype(int) - bg)[masks[0]].mean() > 4


# ------------------------------------------------------------------------------------------ cuts

def test_no_pixel_borrowed_across_a_scene_id_cut():
    # same set, same camera; scene0002's character stands where scene0001 saw the wall
    bg = texture(H, W, 7)
    xs = [40, 80, 120, 160, 120, 120, 120, 120]
    frames, masks = map(list, zip(*(character(bg, x, H // 2, i) for i, x in enumerate(xs)), strict=True))
    ids = [f"scene0001_{i:04d}" for i in range(4)] + [f"scene0002_{i:04d}" for i in range(4)]
    out = run(filler(), frames, masks, ids)
    shots = [res.extra["shot_id"] for _, res in out]
    assert shots == ["scene0001"] * 4 + ["scene0002"] * 4
    for _, res in out[4:]:
        assert res.extra["temporal_fraction"] == 0.0 and res.extra["inpainted_fraction"] == 1.0
        assert all(n.startswith("scene0002") for n in res.extra["neighbour_ids"])
    first_b = out[4][1]
    assert not np.array_equal(first_b.plate[masks[4]], bg[masks[4]])  # invented, not copied from scene0001
    assert out[3][1].extra["temporal_fraction"] == 1.0 and np.array_equal(out[3][1].plate[masks[3]], bg[masks[3]])


@pytest.mark.parametrize("detector", ["content", "adaptive"])
def test_detector_cut_between_two_sets(detector: str):
    a, b = texture(H, W, 11), texture(H, W, 12)
    n = 6
    xs = [40 + 30 * i for i in range(n)] + [120] * n
    bgs = [a] * n + [b] * n
    frames, masks = map(list, zip(*(character(bg, x, H // 2, i) for i, (bg, x) in enumerate(zip(bgs, xs, strict=True))),
                                  strict=True))
    out = run(filler(detector=detector), frames, masks)
    shots = [res.extra["shot_id"] for _, res in out]
    assert shots == ["shot0000"] * n + ["shot0001"] * n
    cut = out[n][1].extra
    assert cut["temporal_fraction"] == 0.0 and cut["neighbours_used"] == 0
    assert all(int(i[-4:]) >= n for _, r in out[n:] for i in r.extra["neighbour_ids"])
    assert out[n - 1][1].extra["temporal_fraction"] == 1.0


def test_unregistrable_neighbours_fall_back_to_the_inner_inpainter():
    frames, masks, truths = panning(5)
    rng = np.random.default_rng(9)
    for i in (0, 1, 3, 4):  # the neighbours of frame 2 become unrelated noise
        frames[i] = rng.integers(0, 256, frames[i].shape, dtype=np.uint8)
    out = run(filler(detector="none"), frames, masks)
    res = out[2][1]
    assert {o[0].frame_id for o in out} >= {"frame_0002"}
    assert res.extra["temporal_fraction"] == 0.0 and res.extra["inpainted_fraction"] == 1.0
    assert res.extra["neighbours_used"] == 0 and res.extra["registration_error"] is None
    assert len(res.extra["neighbours_rejected"]) == 4
    alone = create_inpainter(load_config(overrides={"fill.method": "opencv-telea"}), "cpu").fill([frames[2]], [masks[2]])
    assert np.array_equal(res.plate, alone[0].plate)


def test_frame_without_mask_and_per_frame_failures():
    frames, masks, truths = panning(5)
    frames[0], masks[0] = truths[0], np.zeros_like(masks[0])  # no character in frame 0
    for m in masks[1:]:  # a box hidden in frames 1-4: frame 2 has pixels its neighbours never saw
        m[20:40, 190:210] = True
    # carry_seen off: the shot's layer would give frame 2 the box as frame 0 showed it, and the
    # inner inpainter would not run there
    f = filler(window=1, neighbour_margin=0, carry_seen=False)
    inner_fill = f.inner.fill

    def flaky(images, holes):  # the inner inpainter breaks on frame 2 only
        if np.array_equal(images[0][~masks[2]], frames[2][~masks[2]]):
            raise RuntimeError("inner inpainter broke")
        return inner_fill(images, holes)

    f.inner.fill = flaky
    seq = [SequenceFrame(f"frame_{i:04d}", i, im, m) for i, (im, m) in enumerate(zip(frames, masks, strict=True))]
    out = list(f.fill_sequence(iter(seq)))
    assert [fr.frame_id for fr, _ in out] == [s.frame_id for s in seq]
    assert isinstance(out[2][1], RuntimeError)
    assert out[0][1].extra["temporal_fraction"] == 0.0 and np.array_equal(out[0][1].plate, frames[0])
    assert all(out[i][1].extra["temporal_fraction"] > 0.5 for i in (1, 3, 4))
    # a mask that does not fit its frame fails that frame only
    masks[3] = masks[3][:-1]
    out = list(filler().fill_sequence(SequenceFrame(f"frame_{i:04d}", i, im, m)
                                      for i, (im, m) in enumerate(zip(frames, masks, strict=True))))
    assert [isinstance(r, Exception) for _, r in out] == [False, False, False, True, False]


# ------------------------------------------------------------------------ streaming and resume

def test_context_frames_lend_pixels_but_get_no_result():
    # frames 3-5 hide the same place; only the done frames 1-2 saw it
    xs = [40, 80, 200, 120, 120, 120]
    frames, masks, truths = panning(6, xs=xs, step=(0, 0))
    out = run(filler(), frames, masks, todo=[False] * 3 + [True] * 3)
    assert [fr.frame_id for fr, _ in out] == ["frame_0003", "frame_0004", "frame_0005"]
    r3 = out[0][1].extra
    assert r3["temporal_fraction"] == 1.0 and set(r3["neighbour_ids"]) <= {"frame_0001", "frame_0002"}
    assert np.array_equal(out[0][1].plate[masks[3]], truths[3][masks[3]])
    # frame 5's neighbours hide the same place: it comes back as frames 1-2 showed it, through what
    # frames 3-4 borrowed into the shot's layer; without the layer it is invented
    r5 = out[2][1].extra
    assert r5["carried_seen_fraction"] == 1.0 and r5["temporal_fraction"] == 1.0
    assert np.array_equal(out[2][1].plate[masks[5]], truths[5][masks[5]])
    alone = run(filler(carry_seen=False), frames, masks, todo=[False] * 3 + [True] * 3)
    assert alone[2][1].extra["temporal_fraction"] == 0.0


def test_lookahead_is_bounded():
    frames, masks, _ = panning(12)
    pulled: list[int] = []

    def stream():
        for i, (im, m) in enumerate(zip(frames, masks, strict=True)):
            pulled.append(i)
            yield SequenceFrame(f"frame_{i:04d}", i, im, m)

    f = filler(keyframes=1, keyframe_stride=2)  # reach: window 2 + one keyframe 2 further = 4
    for k, (fr, _) in enumerate(f.fill_sequence(stream())):
        assert fr.index == k and len(pulled) <= k + f.reach + 1


# ---------------------------------------------------------------------------------- fill stage

def _write_sequence(root: Path, frames, masks) -> tuple[Path, Path, list[str]]:
    fdir, mdir = root / "frames", root / "maskdir"
    (mdir / "masks").mkdir(parents=True)
    fdir.mkdir()
    ids = [f"frame_{i:04d}" for i in range(len(frames))]
    for fid, im, m in zip(ids, frames, masks, strict=True):
        cv2.imwrite(str(fdir / f"{fid}.png"), cv2.cvtColor(im, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(mdir / "masks" / f"{fid}.png"), m.astype(np.uint8) * 255)
    return fdir, mdir, ids


def _read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def test_fill_stage_writes_exact_plates_and_metadata(tmp_path: Path):
    from cleanplate.pipeline import inpaint

    frames, masks, truths = panning(6)
    fdir, mdir, ids = _write_sequence(tmp_path, frames, masks)
    cfg = load_config(overrides={"fill.method": "temporal+opencv-telea", "output.plate_format": "png",
                                 "fill.mask_dilate": 0, "fill.temporal.window": 2})
    summary = inpaint(mdir, tmp_path / "out", cfg, frames=fdir, raise_errors=True)
    assert summary.fill.failures == {}
    meta = json.loads((tmp_path / "out" / "inpainting_metadata.json").read_text())
    for fid, im, m, truth in zip(ids, frames, masks, truths, strict=True):
        plate = _read_rgb(tmp_path / "out" / "backgrounds" / f"{fid}.png")
        assert np.array_equal(plate[~m], im[~m])  # unmasked pixels are the input's bytes
        assert np.array_equal(plate[m], truth[m])  # masked pixels are the true background
        extra = meta["frames"][fid]["extra"]
        assert {"temporal_fraction", "inpainted_fraction", "registration_error", "shot_id",
                "neighbours_used"} <= set(extra)
        assert extra["temporal_fraction"] == 1.0 and extra["shot_id"] == "shot0000"
        source = np.asarray(Image.open(tmp_path / "out" / "sources" / f"{fid}.png"))
        assert (source[~m] == 0).all() and (source[m] == 128).all()  # all from other frames, nothing invented


def test_fill_stage_resume_uses_done_frames_as_context(tmp_path: Path):
    from cleanplate.pipeline import inpaint

    frames, masks, _ = panning(6)
    fdir, mdir, ids = _write_sequence(tmp_path, frames, masks)
    over = {"fill.method": "temporal+opencv-telea", "output.plate_format": "png", "fill.mask_dilate": 0,
            "fill.temporal.window": 2}
    inpaint(mdir, tmp_path / "out", load_config(overrides={**over, "input.limit": 4}), frames=fdir)
    second = inpaint(mdir, tmp_path / "out", load_config(overrides=over), frames=fdir)
    assert second.fill.skipped == 4
    meta = json.loads((tmp_path / "out" / "inpainting_metadata.json").read_text())
    assert set(meta["frames"]) == set(ids)
    assert {"frame_0002", "frame_0003"} <= set(meta["frames"]["frame_0004"]["extra"]["neighbour_ids"])


# ------------------------------------------------------------------ invented once, carried on

def _standing(n: int = 6, step: int = 3, noise: int = 4):
    """A camera panning by ``step`` px a frame to the right past a character who stands still in
    the set (so no frame sees what he hides), with a little sensor noise per frame: a fill
    invented anew in every frame differs."""
    frames, masks, _ = panning(n, xs=[120 - step * i for i in range(n)], step=(step, 0))
    rng = np.random.default_rng(7)
    frames = [np.clip(f.astype(np.int16) + rng.integers(-noise, noise + 1, f.shape), 0, 255).astype(np.uint8)
              for f in frames]
    return frames, masks


def test_invented_pixels_are_carried_along_the_registration():
    frames, masks = _standing()
    carried = run(filler(), frames, masks)
    fresh = run(filler(carry_invented=False), frames, masks)
    assert all(r.extra["temporal_fraction"] < 0.05 for _, r in carried)  # nobody saw behind him
    assert carried[0][1].extra["carried_fraction"] == 0.0
    for k in range(1, len(frames)):
        ex = carried[k][1].extra
        assert ex["carried_fraction"] >= 0.95, ex
        assert fresh[k][1].extra["carried_fraction"] == 0.0
        # the same set point shows the same invented pixel as in the frame before, exactly
        prev, cur = carried[k - 1][1].plate, carried[k][1].plate
        both = masks[k] & np.roll(masks[k - 1], -3, axis=1)  # the set moves 3 px left a frame
        ys, xs = np.nonzero(both)
        same = cur[ys, xs] == prev[ys, xs + 3]
        assert same.all(axis=1).mean() >= 0.95
        # invented anew, the noise in the frame makes the fill differ
        fp, fc = fresh[k - 1][1].plate, fresh[k][1].plate
        assert (fc[ys, xs] == fp[ys, xs + 3]).all(axis=1).mean() < 0.9
        # unmasked pixels are the frame's own
        assert np.array_equal(carried[k][1].plate[~masks[k]], frames[k][~masks[k]])


def test_the_set_seen_frames_ago_comes_back_as_it_was_seen():
    """A camera panning past a character who stays at one place on the screen: a point of the set
    hidden now was shown by frames beyond the fill's reach (window 1). The shot's layer kept it as
    seen, so it comes back exactly, not invented (``fill.temporal.carry_seen``)."""
    n, step = 10, 3
    frames, masks, truths = panning(n, xs=[120] * n, step=(step, 0))
    k = n - 1
    deep = np.zeros_like(masks[k])  # hidden in frames k-1 and k, shown by some frame before
    ys, xs = np.nonzero(masks[k])
    for j in range(k - 1):
        xj = xs + step * (k - j)
        ok = xj < W
        shown = np.zeros(len(xs), bool)
        shown[ok] = ~masks[j][ys[ok], xj[ok]]
        deep[ys[shown], xs[shown]] = True
    xk1 = np.clip(xs + step, 0, W - 1)
    deep[ys, xs] &= masks[k - 1][ys, xk1]
    assert deep.sum() > 300
    seen = run(filler(window=1), frames, masks)
    anew = run(filler(window=1, carry_seen=False), frames, masks)
    exact = (seen[k][1].plate[deep] == truths[k][deep]).all(axis=1).mean()
    assert exact >= 0.95, exact
    assert (anew[k][1].plate[deep] == truths[k][deep]).all(axis=1).mean() < 0.5
    assert seen[k][1].extra["carried_seen_fraction"] >= 0.9 * deep.sum() / masks[k].sum()
    assert seen[k][1].extra["temporal_fraction"] > anew[k][1].extra["temporal_fraction"]
    assert np.array_equal(seen[k][1].plate[~masks[k]], frames[k][~masks[k]])


def test_resumed_frames_carry_what_an_uninterrupted_run_carried():
    from cleanplate.fill.temporal import mark_refill

    frames, masks = _standing()
    whole = run(filler(), frames, masks)
    f = filler()
    labelled = ShotStage(f.shots)(FrameRecord(f"frame_{k:04d}", k, "", image=im) for k, im in enumerate(frames))
    recs = [r for w in shot_windows(labelled, 1000) for r in ShotModelStage(f.shots)(w)]

    def seq(refill: bool) -> list[SequenceFrame]:
        out = [SequenceFrame(r.frame_id, k, im, m, k >= 3, r.shot_id, r.shot)
               for k, (im, m, r) in enumerate(zip(frames, masks, recs, strict=True))]
        if refill:
            mark_refill(out)
        return out

    frames_in = seq(True)
    assert [s.refill for s in frames_in] == [True] * 3 + [False] * 3
    resumed = list(f.fill_sequence(frames_in))
    assert [fr.frame_id for fr, _ in resumed] == ["frame_0003", "frame_0004", "frame_0005"]
    for (_, a), (_, b) in zip(whole[3:], resumed, strict=True):
        assert np.array_equal(a.plate, b.plate)
    cold = list(filler().fill_sequence(seq(False)))  # without the refill, frame 3 invents anew
    assert not np.array_equal(cold[0][1].plate, whole[3][1].plate)
