"""Tight masks by appearance (issue 20, item 3) on real footage with the real u2netp: the DAVIS tennis
player, large in the frame and moving a little, beside the still crates cut from Sintel (the
``large-character-beside-prop`` bench case), where the detector's blob joins the two."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from cleanplate import masks as M
from cleanplate.config import load_config
from cleanplate.motion.shot_model import ShotModel
from cleanplate.report.bench_cases import build_case
from cleanplate.segment import create_segmenter
from cleanplate.segment.shot.refine import scenery_parts
from cleanplate.segment.shot.segmenter import TrackShotSegmenter


@pytest.fixture(scope="module")
def beside_prop():
    """The case, its per-frame u2netp results and its shot model (built once)."""
    cfg = load_config()
    case = build_case("large-character-beside-prop", None, 16)
    seg = create_segmenter(cfg, "cpu")
    per = [seg.segment(f) for f in case.frames]
    return case, per, ShotModel.build(case.frames, cfg.shots)


def _run(beside_prop, **overrides):
    case, per, model = beside_prop
    cfg = load_config(overrides={f"segment.shot.{k}": v for k, v in overrides.items()})
    out = TrackShotSegmenter(cfg, "cpu").segment_shot(case.frames, copy.deepcopy(per), shot=model)
    shape = case.frames[0].shape[:2]
    masks = [M.combine([i.mask for i in r.instances if i.character], shape) for r in out]
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
    out, recall, prop_free = _run(beside_prop, refine=True)  # off by default (see segment.shot.refine)
    # honest figures on this case (16 frames): ~70 % of the crates' pixels leave the mask
    # (before dilation; all of them in most frames, none in 3 frames where GrabCut's colour
    # model takes the dark crates for the player's shorts); recall after the pipeline's dilation 0.97
    assert prop_free >= 0.6
    assert recall >= 0.95
    refined = [i.evidence["refine"] for r in out for i in r.instances if i.character and i.evidence
               and "refine" in i.evidence]
    assert len(refined) >= 12 and sum(e["used"] for e in refined) >= 12
    assert all(e["seed"] == "motion" for e in refined if e["used"])
    reasons = [i.reason for r in out for i in r.instances if i.character]
    assert any("refined by colour" in why for why in reasons)


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
