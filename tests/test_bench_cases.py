"""The character benchmark cases (issue 26, item 6) are built from the real footage with sane truth,
and the scorer measures what it says (on masks made here, without running the pipeline)."""

from __future__ import annotations

import numpy as np
import pytest

from cleanplate.errors import InputError
from cleanplate.report.bench_cases import CASES, build_case, measure, oracle_for
from conftest import SHARED

DATA = SHARED / "data"
N = 8


@pytest.fixture(scope="module")
def cases():
    return {name: build_case(name, DATA, N) for name in CASES}


def test_every_case_has_sane_truth(cases) -> None:
    for name, case in cases.items():
        assert len(case.frames) == N, name
        h, w = case.frames[0].shape[:2]
        for f in case.frames:
            assert f.shape == (h, w, 3) and f.dtype == np.uint8
        for group in (case.characters, case.props):
            for masks in group.values():
                assert len(masks) == N and all(m.shape == (h, w) and m.dtype == bool for m in masks)
        for a in case.characters:  # characters do not overlap (later pastes occlude earlier truths)
            for b in case.characters:
                if a < b:
                    assert not any((case.characters[a][t] & case.characters[b][t]).any() for t in range(N))
        # each pasted object's pixels are the source's under its (visible) truth mask
        for obj, pasted in case.pasted.items():
            truth = (case.characters | case.props)[obj]
            for t, p in enumerate(pasted):
                assert p is not None and p.mask.any()
                x, y = p.xy
                ys, xs = np.nonzero(truth[t])
                assert (case.frames[t][ys, xs] == p.rgb[ys - y, xs - x]).all(), (name, obj, t)
                assert p.mask[ys - y, xs - x].all()


def test_nobody_cases_have_empty_truth(cases) -> None:
    for name in ("nobody-tennis", "nobody-bmx", "still-prop"):
        case = cases[name]
        assert case.characters == {} and all(case.nobody) and case.truths() == [[]] * N
    assert cases["still-prop"].props["crates"][0].any()
    for name in ("still-character", "standing-character", "two-characters", "three-characters"):
        assert not any(cases[name].nobody)


def test_still_character_is_unmoving_and_the_others_move(cases) -> None:
    still = cases["still-character"].characters["rider"]

    def cut(m):  # the mask cropped to its box: the same cut-out wherever the camera carries it
        ys, xs = np.nonzero(m)
        return m[ys.min():ys.max() + 1, xs.min():xs.max() + 1]

    inside = [m for m in still if not (m[:, 0].any() or m[:, -1].any() or m[-1].any())]  # not clipped by an edge
    assert len(inside) >= len(still) // 2 and all(np.array_equal(cut(m), cut(inside[0])) for m in inside)
    x0 = [np.nonzero(m)[1].min() for m in inside]
    assert x0[0] != x0[-1]  # it stands still in the scene: the pan carries it across the picture
    two = cases["two-characters"]
    assert set(two.characters) == {"player", "small-rider"}
    xs = [np.nonzero(m)[1].mean() for m in two.characters["small-rider"] if m.any()]
    assert xs == sorted(xs) and xs[-1] - xs[0] > 100  # left to right across
    three = cases["three-characters"]
    assert set(three.characters) == {"player", "small-rider", "fast-rider"}
    assert three.characters["fast-rider"][0].any() and not three.characters["fast-rider"][-1].any()


def test_measure_and_oracle(cases) -> None:
    case = cases["two-characters"]
    truth_masks = [np.logical_or.reduce(ms) for ms in case.truths()]
    s = measure(case, truth_masks, None)
    assert s.nobody_frames == 0 and s.nobody_masked_fraction is None and s.prop_masked is None
    assert all(r["mean"] == 1.0 and r["frames_below_half"] == 0 for r in s.recall.values())
    dets = oracle_for(case).detect(case.frames)
    assert [len(d) for d in dets] == [len(t) for t in case.truths()]
    assert all(d.label == "person" and d.score == 1.0 for ds in dets for d in ds)
    prop = cases["still-prop"]
    masks = [prop.props["crates"][t] if t % 2 else np.zeros_like(prop.props["crates"][t]) for t in range(N)]
    s = measure(prop, masks, prop.frames)
    assert s.prop_masked == 0.5 and s.nobody_plates_equal == 1.0 and s.nobody_frames == N
    assert 0 < s.nobody_masked_fraction < 0.1


def test_unknown_case() -> None:
    with pytest.raises(InputError, match="unknown benchmark case"):
        build_case("nobody-at-all", DATA, 4)


def test_sintel_girl_region_is_generous_and_scored_outside(cases) -> None:
    """The hand-drawn region around Sintel's girl: one per frame, a real share of the frame (not the whole
    of it), moving with her; measure() counts what is masked outside it."""
    case = cases["sintel-girl"]
    assert case.characters == {} and not any(case.nobody) and set(case.allowed) == {"girl"}
    girl = case.allowed["girl"]
    assert len(girl) == N and all(m.shape == case.frames[0].shape[:2] for m in girl)
    shares = [float(m.mean()) for m in girl]
    assert all(0.2 < s < 0.6 for s in shares), shares
    assert not np.array_equal(girl[0], girl[-1])  # drawn per frame
    empty = [np.zeros(m.shape, bool) for m in girl]
    assert measure(case, empty, None).outside_allowed == {"mean": 0.0, "max": 0.0}
    outside = [~m for m in girl]
    s = measure(case, girl, None)
    assert s.outside_allowed == {"mean": 0.0, "max": 0.0} and s.nobody_frames == 0 and s.recall == {}
    s = measure(case, outside, None)
    assert abs(s.outside_allowed["mean"] - (1 - np.mean(shares))) < 1e-3
