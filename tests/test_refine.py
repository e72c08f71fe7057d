"""Tight masks by appearance (issue 20, item 3) on real footage with the real u2netp: the DAVIS tennis
player, large in the frame and moving a little, beside the still crates cut from Sintel (the
``large-character-beside-prop`` bench case), where the detector's blob joins the two; and the
Sintel girl, whose only moving parts are her head and arm, whom a colour model misled in one frame
would cut to half (the refinement must be steady over the track)."""

from __future__ import annotations

import copy

import cv2
import numpy as np
import pytest

from cleanplate import masks as M
from cleanplate.config import load_config
from cleanplate.motion.shot_model import ShotModel
from cleanplate.report.bench_cases import build_case
from cleanplate.segment import create_segmenter
from cleanplate.segment.shot.refine import scenery_parts
from cleanplate.segment.shot.segmenter import TrackShotSegmenter


def _built(name: str, frames: int, keep_out: bool):
    """A bench case, its per-frame u2netp results and its shot model (``keep_out``: built with the
    detector's candidates kept out of the keypoints, as the run builds it)."""
    cfg = load_config()
    case = build_case(name, None, frames)
    seg = create_segmenter(cfg, "cpu")
    per = [seg.segment(f) for f in case.frames]
    return case, per, ShotModel.build(case.frames, cfg.shots, masks=_candidates(case.frames, per) if keep_out else None)


@pytest.fixture(scope="module")
def beside_prop():
    """The case, its per-frame u2netp results and its shot model (built once)."""
    return _built("large-character-beside-prop", 16, keep_out=False)


def _candidates(frames, per):
    """Per frame, the per-frame detector's character candidates (HxW bool), kept out of the
    registration as the run's shot model stage keeps them."""
    return [M.combine([i.mask for i in r.instances if i.character], f.shape[:2]) for f, r in zip(frames, per, strict=True)]


def _segment(built, **overrides):
    """The shot segmenter on a built case with ``segment.shot`` overrides: its results and character masks."""
    case, per, model = built
    cfg = load_config(overrides={f"segment.shot.{k}": v for k, v in overrides.items()})
    out = TrackShotSegmenter(cfg, "cpu").segment_shot(case.frames, copy.deepcopy(per), shot=model)
    shape = case.frames[0].shape[:2]
    return cfg, out, [M.combine([i.mask for i in r.instances if i.character], shape) for r in out]


def _run(beside_prop, **overrides):
    case = beside_prop[0]
    cfg, out, masks = _segment(beside_prop, **overrides)
    shape = case.frames[0].shape[:2]
    radius = M.dilation_radius(cfg.masks.dilate, cfg.masks.dilate_relative, shape)
    player, crates = case.characters["player"], case.props["crates"]
    recall = np.mean([M.dilate(m, radius)[p].mean() for m, p in zip(masks, player, strict=True)])
    prop_free = np.mean([1.0 - m[c].mean() for m, c in zip(masks, crates, strict=True) if c.any()])
    return out, float(recall), float(prop_free)


def test_the_detector_joins_the_prop_to_the_large_character(beside_prop):
    case, per, _ = beside_prop
    player, crates = case.characters["player"], case.props["crates"]
    assert np.mean([p.mean() for p in player]) >= 0.15  # a large character: not cut to a moving core
    joined = [t for t, r in enumerate(per) for i in r.instances
              if i.character and i.mask[crates[t]].mean() > 0.8 and (i.mask & player[t]).any()]
    assert len(joined) >= 12  # one blob holds the player and the crates in most frames
    _, recall, prop_free = _run(beside_prop, refine=False, scenery_parts=False)
    assert prop_free < 0.25  # without the refinement the crates stay masked with him (0.17 free: frames 13-15)
    assert recall >= 0.98


def test_colour_refinement_drops_the_prop_and_keeps_the_character(beside_prop):
    out, recall, prop_free = _run(beside_prop)  # the default config: refinement on, steady over the track
    # honest figures on this case (16 frames): ~2/3 of the crates' pixels leave the mask before
    # dilation (0.17 unrefined: frames 13-15 only; most of them in frames 3-15, a third in frames
    # 0-2 where GrabCut's colour model takes the dark crates for the player's shorts); recall after
    # the pipeline's dilation 0.975, as unrefined
    assert prop_free >= 0.6
    assert recall >= 0.95
    refined = [i.evidence["refine"] for r in out for i in r.instances if i.character and i.evidence
               and "refine" in i.evidence]
    assert len(refined) >= 12 and sum(e["used"] for e in refined) >= 12
    assert all(e["seed"] == "motion" for e in refined if e["used"])
    reasons = [i.reason for r in out for i in r.instances if i.character]
    assert any("refined by colour" in why for why in reasons)


@pytest.fixture(scope="module")
def sintel():
    """The 10 Sintel frames, their per-frame u2netp results and shot model."""
    return _built("sintel-girl", 10, keep_out=True)


def _girl(sintel, **overrides):
    _, out, masks = _segment(sintel, **overrides)
    return out, masks


def test_a_refinement_the_neighbouring_frames_do_not_share_is_given_back(sintel):
    """Frame 2's colour model takes the girl's still shoulder and body for the wall and keeps only her
    moving head and arm (about half of her); the frames around it keep her body, so the steadiness
    check gives it back. The interior of her unrefined mask (eroded 6 px, clear of the halo on the
    wall that the refinement rightly removes) stays masked in every frame."""
    case, _, _ = sintel
    girl = case.allowed["girl"]
    _, plain = _girl(sintel, refine=False)
    inner = [cv2.erode((m & g).astype(np.uint8), M.ellipse_kernel(6)).astype(bool) for m, g in zip(plain, girl, strict=True)]

    def cover(masks):
        return [float((m & i).sum()) / max(float(i.sum()), 1.0) for m, i in zip(masks, inner, strict=True)]

    # measured: without the check frame 2 keeps 49 % of that interior (the other frames >= 0.96);
    # with it every frame keeps >= 97 % (frames 7-9 lose bits of a ghost of the apple where it was)
    unguarded = cover(_girl(sintel, refine_steady=0.0)[1])
    assert min(unguarded) < 0.7, unguarded  # without the check she is cut in (at least) one frame
    out, guarded = _girl(sintel)
    assert min(cover(guarded)) >= 0.95, cover(guarded)
    ev = [i.evidence["refine"] for r in out for i in r.instances if i.character and i.evidence and "refine" in i.evidence]
    assert any(e["used"] and e["restored_px"] > 0.2 * e["blob_px"] for e in ev), ev  # recorded per frame
    reasons = [i.reason for r in out for i in r.instances if i.character]
    assert any("given back" in why for why in reasons)
    # and never more masked outside her region than unrefined
    for m, p, g in zip(guarded, plain, girl, strict=True):
        assert (m & ~g).sum() <= (p & ~g).sum()


def test_a_still_part_apart_from_the_character_is_scenery(beside_prop):
    """A component of a character's mask away from the character, that neither moves nor touches
    another character (the crates' region of frame 5 made a separate piece), is split off."""
    case, _, _ = beside_prop
    t = 5
    player = case.characters["player"][t]
    crates = case.props["crates"][t] & ~M.dilate(player, 2)
    moving = player & (np.indices(player.shape).sum(axis=0) % 3 == 0)  # a third of the player moves
    mask = player | crates
    kept, parts = scenery_parts(mask, moving, np.zeros_like(mask), max_moving=0.05)
    assert len(parts) >= 1
    assert not (kept & crates).any() or (kept & crates).sum() < 0.05 * crates.sum()
    assert (kept & player).sum() == player.sum()
    # touching another character keeps it
    kept2, parts2 = scenery_parts(mask, moving, M.dilate(crates, 2) & ~mask, max_moving=0.05)
    assert not parts2 and (kept2 == mask).all()
