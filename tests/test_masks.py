from __future__ import annotations

import numpy as np

from cleanplate import masks as M


def test_dilate_is_a_disc_of_radius_n():
    m = np.zeros((81, 81), bool)
    m[40, 40] = True
    d = M.dilate(m, 20)
    yy, xx = np.mgrid[:81, :81]
    dist = np.hypot(yy - 40, xx - 40)
    assert d[dist <= 19.5].all()  # everything within the radius
    assert not d[dist > 20.5].any()  # nothing beyond it: not a box (corner at 28 px would be set)
    assert d[40, 60] and d[60, 40] and not d[55, 55]  # (15, 15) off: 21.2 px away


def test_dilate_zero_and_empty():
    m = np.zeros((10, 10), bool)
    assert not M.dilate(m, 5).any()
    m[3, 3] = True
    assert (M.dilate(m, 0) == m).all()


def test_composite_keeps_unmasked_bytes_and_feathers_inside():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    fill = np.full_like(img, 7)
    mask = np.zeros((60, 80), bool)
    mask[10:50, 20:60] = True
    hard = M.composite(img, fill, mask, 0)
    assert (hard[~mask] == img[~mask]).all() and (hard[mask] == 7).all()
    soft = M.composite(img, fill, mask, 8)
    assert (soft[~mask] == img[~mask]).all()
    assert (soft[30, 40] == 7).all()  # deep inside: the fill
    edge = soft[10, 40].astype(int)  # on the border: between original and fill
    assert not (edge == 7).all()
    alpha = M.feather_alpha(mask, 8)
    assert alpha[~mask].max() == 0 and alpha[30, 40] == 1 and 0 < alpha[10, 40] < 1


def test_coverage_components_small_regions():
    m = np.zeros((100, 100), bool)
    m[:50, :50] = True
    m[90:92, 90:92] = True
    assert abs(M.coverage(m) - (2500 + 4) / 10000) < 1e-9
    comps = M.components(m, min_size=10)
    assert len(comps) == 1 and comps[0].sum() == 2500
    holes = m.copy()
    holes[20:22, 20:22] = False
    cleaned = M.remove_small_regions(holes, 10)
    assert cleaned[20, 20] and not cleaned[90, 90]


def test_cutout_modes():
    img = np.full((40, 40, 3), 100, np.uint8)
    mask = np.zeros((40, 40), bool)
    mask[10:20, 10:20] = True
    t = M.cutout(img, mask, "transparent", pad=2)
    assert t.shape == (14, 14, 4) and t[0, 0, 3] == 0 and t[5, 5, 3] == 255
    w = M.cutout(img, mask, "white", pad=2)
    assert (w[0, 0] == [255, 255, 255, 255]).all() and (w[5, 5, :3] == 100).all()
    c = M.cutout(img, mask, "context", pad=2)
    assert (c[0, 0, :3] == 100).all() and c[0, 0, 3] == 255


def test_saliency_hysteresis_keeps_weak_parts_attached_to_strong_ones():
    from cleanplate.segment.saliency import hysteresis

    sal = np.zeros((20, 40), np.float32)
    sal[5:15, 2:10] = 0.9  # a character
    sal[5:15, 10:16] = 0.3  # its weakly salient arm, touching it
    sal[5:15, 25:35] = 0.3  # a weakly salient prop on its own
    out = hysteresis(sal, 0.5, 0.2)
    assert out[10, 5] and out[10, 12] and not out[10, 30]
    assert (hysteresis(sal, 0.5, 0.5) == (sal >= 0.5)).all()
