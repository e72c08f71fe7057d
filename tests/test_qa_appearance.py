"""The residue check's shot evidence (issue 12): the characters' colours, the background median, the
registrations shared between neighbours, and no saliency run on plates checked with their shot."""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest

from cleanplate import masks as M
from cleanplate.config import QAConfig
from cleanplate.qa import PlateChecker
from cleanplate.qa.appearance import ShotColours
from cleanplate.qa.residue import APPEARANCE_WEIGHT, shot_residue_score
from cleanplate.qa.shot import ShotEvidence, median_of_valid, shot_evidence
from conftest import SINTEL, decoded


def _scenery(h: int = 120, w: int = 200, seed: int = 0) -> np.ndarray:
    """Greenish-blue texture: no red in it."""
    rng = np.random.default_rng(seed)
    base = np.zeros((h // 8, w // 8, 3), np.uint8)
    base[..., 0] = rng.integers(0, 60, base.shape[:2])
    base[..., 1] = rng.integers(80, 200, base.shape[:2])
    base[..., 2] = rng.integers(60, 220, base.shape[:2])
    return cv2.GaussianBlur(cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC), (3, 3), 0)


def _shot(n: int = 4) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """A red character walking over the scenery: frames, removal masks, saliency maps."""
    images, masks, sal = [], [], []
    for k in range(n):
        im = _scenery()
        x = 30 + 25 * k
        im[40:90, x:x + 20] = (210, 40, 40)
        m = np.zeros(im.shape[:2], bool)
        m[38:92, x - 2:x + 22] = True
        s = np.zeros(im.shape[:2], np.float32)
        s[40:90, x:x + 20] = 0.9
        images.append(im)
        masks.append(m)
        sal.append(s)
    return images, masks, sal


def test_shot_colours_tell_the_characters_colour_from_the_scenerys():
    images, masks, sal = _shot()
    colours = ShotColours(images, masks, sal)
    probe = _scenery(seed=5)
    probe[10:20, 10:30] = (215, 35, 45)  # the character's red, a little off
    like = colours.character_like(probe)
    assert like[10:20, 10:30].all()
    assert like[30:, :].mean() < 0.01  # the scenery is not character-like
    assert colours.likeness(probe)[12, 12] > 10 * colours.likeness(probe)[60, 100]
    # no character pixels in the shot: nothing is character-like
    none = ShotColours(images, [np.zeros_like(m) for m in masks], sal)
    assert not none.character_like(probe).any()


def test_residue_appearance_counts_moving_pixels_with_the_characters_colour_only():
    """Foreground apart from the mask, not salient: counted when it has the character's colours (his hat,
    carried away from him), not when it has the scenery's (a branch moving in the wind)."""
    images, masks, sal = _shot()
    colours = ShotColours(images, masks, sal)
    bg = _scenery()
    image, mask, s = images[1].copy(), masks[1], sal[1]
    image[10:20, 150:170] = (205, 45, 35)  # the hat, far from the mask: not attached, not salient
    image[100:110, 150:170] = bg[100:110, 150:170] // 2 + (0, 60, 60)  # scenery-coloured movement
    fg = np.zeros(image.shape[:2], bool)
    fg[40:90, 55:75] = True
    fg[10:20, 150:170] = True
    fg[100:110, 150:170] = True
    ev = ShotEvidence(bg, np.ones(image.shape[:2], bool), fg, 4)
    plate = image.copy()
    plate[mask] = bg[mask]
    score, parts = shot_residue_score(image, plate, mask, s, ev, colours)
    assert parts["missed"] == 0.0 and parts["attached"] == 0.0 and parts["kept"] == 0.0
    assert parts["appearance"] == pytest.approx(200 / (50 * 20), abs=1e-3)  # the hat only; area: the salient body
    assert score == pytest.approx(APPEARANCE_WEIGHT * parts["appearance"], abs=1e-3)
    assert shot_residue_score(image, plate, mask, s, ev)[1]["appearance"] == 0.0  # no colours, no part


def test_residue_kept_is_judged_only_where_the_background_model_is_known():
    """A plate that kept the frame's pixels in the mask is residue where the neighbours saw the background
    there; where none did (a temporal fill restoring scenery the mask covered in every neighbour) it is
    not judged."""
    images, masks, sal = _shot()
    bg = _scenery()
    image, mask, s = images[1], masks[1], sal[1]
    fg = np.zeros(image.shape[:2], bool)
    known = ShotEvidence(bg, np.ones(image.shape[:2], bool), fg, 4)
    unknown = ShotEvidence(bg, ~mask, fg, 4)
    assert shot_residue_score(image, image, mask, s, known)[1]["kept"] > 0.9
    assert shot_residue_score(image, image, mask, s, unknown)[1]["kept"] == 0.0


def test_median_of_valid_is_nanmedian_of_the_valid_layers():
    rng = np.random.default_rng(1)
    for n in range(1, 7):
        stack = rng.integers(0, 256, (n, 20, 30, 3), dtype=np.uint8)
        valid = rng.random((n, 20, 30)) < 0.6
        f = stack.astype(np.float32)
        f[~valid] = np.nan
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            ref = np.nanmedian(f, axis=0)
        ref = np.where(np.isnan(ref), 0, ref).astype(np.uint8)
        assert np.array_equal(median_of_valid(stack, valid), ref), n


def test_shot_evidence_registers_each_frame_once(registrations: list[int]):
    """Without a shot model given, the frames are registered one after the other (5 links for 6
    frames); every neighbour pair, up to 3 apart, is read off their chain, not registered."""
    files = sorted(SINTEL.glob("*.png"))[:6]
    images = [decoded(f) for f in files]
    masks = [np.zeros(im.shape[:2], bool) for im in images]
    ev = shot_evidence(images, masks, neighbours=3)
    assert len(registrations) == 5  # one link per frame after the first; the 24 neighbour pairs read off them
    assert all(e is not None and e.neighbours == min(3, i) + min(3, 5 - i) for i, e in enumerate(ev))


def test_check_shot_runs_no_saliency_when_the_segment_stage_gave_its_maps(monkeypatch):
    """The plates of a shot are checked with the segment stage's maps of their frames and no saliency on
    the plates: the model is not called at all (it was twice per plate before issue 12)."""
    from cleanplate.records import CheckFrame

    checker = PlateChecker(QAConfig(), "cpu", threads=2).load()
    files = sorted(SINTEL.glob("*.png"))[:4]
    images = [decoded(f) for f in files]
    maps = [checker._predictor.predict(im) for im in images]
    masks = [M.dilate(s >= 0.5, 12) for s in maps]
    plates = [cv2.inpaint(im, m.astype(np.uint8), 3, cv2.INPAINT_TELEA) for im, m in zip(images, masks, strict=True)]
    calls: list[int] = []
    real = checker._predictor.predict
    monkeypatch.setattr(checker._predictor, "predict", lambda im: calls.append(1) or real(im))
    res = checker.check_shot([CheckFrame(f"f{k}", im, p, m, s, "0")
                              for k, (im, p, m, s) in enumerate(zip(images, plates, masks, maps, strict=True))])
    assert calls == []
    assert all("residue_appearance" in r["detail"] and r["detail"]["shot_neighbours"] >= 2 for r in res)
    assert not any("residue" in r["flags"] for r in res), [r["residue"] for r in res]  # correct plates pass
