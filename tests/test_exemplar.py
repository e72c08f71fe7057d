"""The exemplar fill, ``fill.method: auto``, invent-once-per-shot and the still-character bench case."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from cleanplate.config import load_config
from cleanplate.fill import INPAINTERS, create_inpainter
from cleanplate.fill.auto import AutoInpainter
from cleanplate.fill.exemplar import ExemplarSettings, exemplar_fill
from cleanplate.fill.shot_fill import invent_once
from conftest import SHARED, SINTEL


def _frame() -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(SINTEL / "frame_0020.png")), cv2.COLOR_BGR2RGB)


def _blob(h: int, w: int, box: tuple[int, int, int, int]) -> np.ndarray:
    m = np.zeros((h, w), bool)
    y0, y1, x0, x1 = box
    m[y0:y1, x0:x1] = True
    return m


def _two_textures(h: int = 160, w: int = 240, seed: int = 0) -> np.ndarray:
    """Top half reddish noise, bottom half bluish stripes: a straight horizontal boundary at h // 2."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.uint8)
    top = rng.integers(0, 50, (h // 2, w, 3))
    img[: h // 2] = np.clip(top + [180, 70, 40], 0, 255)
    yy, xx = np.mgrid[0:h - h // 2, 0:w]
    stripes = ((xx + yy) // 4 % 2)[..., None] * 40
    img[h // 2:] = np.clip(rng.integers(0, 30, (h - h // 2, w, 3)) + stripes + [30, 60, 150], 0, 255)
    return img


def test_real_frame_keeps_unmasked_pixels_and_is_deterministic():
    img = _frame()
    h, w = img.shape[:2]
    mask = np.zeros((h, w), bool)
    cv2.ellipse(mask.view(np.uint8), (w // 2, h // 2), (w // 6, h // 3), 0, 0, 360, 1, -1)
    mask[20:40, 30:70] = True  # a second, small hole
    a = exemplar_fill(img, mask)
    b = exemplar_fill(img, mask)
    assert np.array_equal(a[~mask], img[~mask])
    assert np.array_equal(a, b)
    assert not np.array_equal(a[mask], img[mask])  # the hole was filled
    c = exemplar_fill(img, mask, settings=ExemplarSettings(seed=1))
    assert np.array_equal(c[~mask], img[~mask])


def test_straight_boundary_continues_through_the_hole():
    img = _two_textures()
    h, w = img.shape[:2]
    mask = _blob(h, w, (h // 2 - 30, h // 2 + 30, 80, 160))
    out = exemplar_fill(img, mask, crop=None)
    assert np.array_equal(out[~mask], img[~mask])
    top_mean = img[: h // 2].reshape(-1, 3).mean(0)
    bottom_mean = img[h // 2:].reshape(-1, 3).mean(0)
    ys, xs = np.nonzero(mask)
    px = out[ys, xs].astype(np.float32)
    closer_top = np.linalg.norm(px - top_mean, axis=1) < np.linalg.norm(px - bottom_mean, axis=1)
    above = ys < h // 2 - 2
    below = ys >= h // 2 + 2
    assert closer_top[above].mean() > 0.9, closer_top[above].mean()
    assert (~closer_top[below]).mean() > 0.9, (~closer_top[below]).mean()
    # texture, not an average: the fill is as varied as the source it came from
    assert out[ys[above], xs[above]].std(0).mean() > 0.6 * img[: h // 2].std((0, 1)).mean()


def test_extra_sources_are_drawn_from():
    img = _two_textures()
    h, w = img.shape[:2]
    mask = np.ones((h, w), bool) & ~_blob(h, w, (0, 2, 0, 2))  # the frame shows 4 black pixels only
    out = exemplar_fill(np.zeros_like(img), mask, sources=[(img, np.ones((h, w), bool))])
    assert (out[:2, :2] == 0).all()
    assert out[mask].mean() > 40  # filled from the source, not from the 4 black pixels


def test_large_hole_at_1280x720_is_fast():
    import time

    img = cv2.resize(_frame(), (1280, 720), interpolation=cv2.INTER_CUBIC)
    mask = np.zeros((720, 1280), bool)
    cv2.ellipse(mask.view(np.uint8), (640, 360), (218, 274), 0, 0, 360, 1, -1)
    assert 0.18 < mask.mean() < 0.22
    t = time.perf_counter()
    out = exemplar_fill(img, mask)
    assert time.perf_counter() - t < 20  # a few seconds on one core; generous for shared CI machines
    assert np.array_equal(out[~mask], img[~mask])


def test_auto_picks_patchmatch_without_lama_weights_and_records_it():
    """Without LaMa on disk ``auto`` takes PatchMatch (the exemplar fill measured 2 dB below it on
    the still-character bench, so it is not the fallback)."""
    assert {"exemplar", "auto", "temporal+auto", "temporal+exemplar"} <= set(INPAINTERS.names())
    cfg = load_config(overrides={"fill.method": "auto"})
    inp = create_inpainter(cfg, "cpu")
    assert isinstance(inp, AutoInpainter) and inp.chosen == "patchmatch"
    img = _frame()[:120, :200].copy()
    mask = _blob(120, 200, (40, 80, 60, 120))
    res = inp.fill([img], [mask])[0]
    assert res.extra["auto_method"] == "patchmatch" and "lama" in str(res.extra["auto_why"])
    assert np.array_equal(res.plate[~mask], img[~mask])
    assert inp.weights_used() == []


def test_default_fill_is_temporal_auto_and_luca_keeps_temporal_lama():
    assert load_config().fill.method == "temporal+auto"
    assert load_config(profile="luca").fill.method == "temporal+lama"
    inp = create_inpainter(load_config(), "cpu")
    assert inp.name == "temporal+auto"
    frames = [np.ascontiguousarray(_frame()[:160, :240]) for _ in range(3)]
    masks = [_blob(160, 240, (50, 110, 80, 160))] * 3
    res = inp.fill(frames, masks)  # a static shot with a still character: nothing to borrow, all invented
    assert res[0].extra["inner_method"] == "auto" and res[0].extra["auto_method"] == "patchmatch"
    # invented once: the next frames carry the first frame's invention and invent nothing themselves
    assert res[1].extra["carried_fraction"] == 1.0 and "auto_method" not in res[1].extra
    assert np.array_equal(res[1].plate[masks[1]], res[0].plate[masks[0]])
    assert np.array_equal(res[1].plate[~masks[1]], frames[1][~masks[1]])


def _scene(h: int, w: int, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (h // 8 + 1, w // 8 + 1, 3)).astype(np.uint8)
    big = cv2.resize(small, (w + 8, h + 8), interpolation=cv2.INTER_CUBIC)[:h, :w]
    return np.clip(big.astype(int) + rng.integers(-12, 13, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("step", [0, 4])
def test_invent_once_gives_every_frame_the_same_background(step: int):
    """A still character over a static (step 0) or panning (step px/frame) shot: the invented
    background agrees between frames after warping, exactly (integer translations)."""
    n, h, w = 5, 96, 128
    world = _scene(h, w + step * n)
    images, masks, homs = [], [], []
    for i in range(n):
        x = step * i
        img = world[:, x:x + w].copy()
        m = _blob(h, w, (30, 80, 40 + 0, 80))  # the character moves with the camera: never uncovers
        img[m] = (255, 0, 255)
        images.append(img)
        masks.append(m)
        homs.append(np.array([[1, 0, x], [0, 1, 0], [0, 0, 1]], np.float64))  # frame -> world
    sf = invent_once(images, masks, homs)
    assert sf.invented.any()
    plates = [sf.plate(i, im, m) for i, (im, m) in enumerate(zip(images, masks, strict=True))]
    for p, im, m in zip(plates, images, masks, strict=True):
        assert np.array_equal(p[~m], im[~m])
        assert not (p[m] == (255, 0, 255)).all(-1).any()
    for i in range(1, n):  # the same world pixel in two frames has the same value
        d = step
        a = plates[i - 1][:, d:][masks[i - 1][:, d:] & masks[i][:, :w - d]]
        b = plates[i][:, :w - d][masks[i - 1][:, d:] & masks[i][:, :w - d]]
        assert np.array_equal(a, b)


def test_still_bench_case_builds_with_sane_truth():
    from cleanplate.report.bench_still import StillSpec, build_still, register_shot

    cfg = load_config()
    shot = build_still(cfg, SHARED / "data", StillSpec(frames=6))
    assert len(shot.frames) == len(shot.truth) == len(shot.holes) == 6
    assert shot.character_fraction >= 0.25
    assert shot.never_seen_fraction > 0.8
    for f, t, p, m in zip(shot.frames, shot.truth, shot.pasted, shot.holes, strict=True):
        assert f.shape == t.shape and p.shape == m.shape == f.shape[:2]
        assert np.array_equal(f[~p], t[~p]) and (m >= p).all()
        assert np.abs(f[p].astype(int) - t[p]).mean() > 10  # the character really hides the truth
    homs = register_shot(shot.frames, shot.holes, cfg)
    assert len(homs) == 6 and all(h.shape == (3, 3) for h in homs)
