"""Automatic plate checks (issue #5): residue, flat blocks, seams; PSNR and SSIM.

Constructed cases on a real Sintel frame with the real saliency model: a plate that still shows
the character, OpenCV and PatchMatch fills of the same large hole, a fill made brighter or
shifted against its surroundings. Each check is tested on both sides of its threshold.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from cleanplate import masks as M
from cleanplate.config import QAConfig, load_config
from cleanplate.fill.opencv import TeleaInpainter
from cleanplate.fill.patchmatch import PatchMatchInpainter
from cleanplate.qa import PlateChecker, create_checker, flat_score, psnr, seam_score, ssim, ssim_map
from cleanplate.qa.metrics import PSNR_CAP
from conftest import SINTEL, decoded


@pytest.fixture(scope="module")
def checker() -> PlateChecker:
    return PlateChecker(QAConfig(), "cpu", threads=2).load()


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    """frame_0016 at full size (1024x436), HxWx3 uint8 RGB: the girl holding out an apple."""
    return decoded(SINTEL / "frame_0016.png")


@pytest.fixture(scope="module")
def char_mask(frame: np.ndarray, checker: PlateChecker) -> np.ndarray:
    """The character's removal mask the way the pipeline makes it: saliency >= 0.5, dilated 20 px."""
    return M.dilate(checker._saliency(frame) >= 0.5, 20)


def _telea(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return M.composite(image, TeleaInpainter(load_config(), "cpu").fill([image], [mask])[0].plate, mask)


def _patchmatch(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return M.composite(image, PatchMatchInpainter(load_config(), "cpu").fill([image], [mask])[0].plate, mask)


# ------------------------------------------------------------------------------------- residue

def test_plate_that_is_the_original_is_flagged_for_residue(frame, char_mask, checker):
    assert 0.15 < char_mask.mean() < 0.5  # the girl, as the segmenter sees her
    res = checker.check(frame, frame, char_mask)
    assert res["residue"] > checker.thresholds["residue"]
    assert res["residue"] == pytest.approx(1.0)
    assert "residue" in res["flags"]


def test_real_fill_of_the_whole_character_is_not_flagged_for_residue(frame, char_mask, checker):
    res = checker.check(frame, _telea(frame, char_mask), char_mask)
    assert res["residue"] < checker.thresholds["residue"]
    assert "residue" not in res["flags"]


def test_missed_arm_is_flagged_for_residue(frame, char_mask, checker):
    """The mask misses the outstretched arm and the apple: they are left beside the fill."""
    partial = char_mask.copy()
    partial[:, int(0.62 * frame.shape[1]):] = False
    res = checker.check(frame, _telea(frame, partial), partial)
    assert "residue" in res["flags"], res
    assert res["detail"]["residue_left_over"] > 0.1


def test_fill_that_copies_the_character_back_is_flagged(frame, char_mask, checker):
    """A fill made of the frame shifted by 15 px (as a bad temporal fill would) keeps the character."""
    shifted = np.roll(frame, (15, 15), axis=(0, 1))
    plate = frame.copy()
    plate[char_mask] = shifted[char_mask]
    res = checker.check(frame, plate, char_mask)
    assert "residue" in res["flags"] and "seam" in res["flags"], res


# ---------------------------------------------------------------------------------- flat blocks

def test_telea_fill_of_a_large_hole_scores_flatter_than_patchmatch(frame):
    small = cv2.resize(frame, (512, 218), interpolation=cv2.INTER_AREA)
    checker = PlateChecker(QAConfig(), "cpu", threads=2)
    mask = M.dilate(checker._saliency(small) >= 0.5, 10)
    telea = checker.check(small, _telea(small, mask), mask)
    pm = checker.check(small, _patchmatch(small, mask), mask)
    assert telea["flat"] > pm["flat"] + 0.2
    assert "flat" in telea["flags"] and "flat" not in pm["flags"], (telea, pm)


def test_flat_score_ignores_scenery_that_is_flat_anyway():
    """A smooth fill inside a smooth gradient (a sky) is not a flat block."""
    h, w = 200, 300
    sky = np.dstack([np.tile(np.linspace(60, 200, w, dtype=np.float32), (h, 1))] * 3).astype(np.uint8)
    mask = np.zeros((h, w), bool)
    mask[60:140, 100:200] = True
    score, inside, around = flat_score(_telea(sky, mask), mask)
    assert inside > 0.8 and around > 0.8 and score < 0.1


def test_flat_score_flags_a_smooth_patch_in_texture():
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 255, (200, 300, 3), dtype=np.uint8)
    mask = np.zeros((200, 300), bool)
    mask[60:140, 100:200] = True
    plate = texture.copy()
    plate[mask] = 128
    score, inside, around = flat_score(plate, mask)
    assert score > 0.5 and around < 0.05
    assert flat_score(texture, mask)[0] == pytest.approx(0.0)


# ---------------------------------------------------------------------------------------- seams

def test_brightened_fill_is_flagged_for_seam(frame, char_mask, checker):
    plate = _telea(frame, char_mask)
    assert "seam" not in checker.check(frame, plate, char_mask)["flags"]
    bright = plate.copy()
    bright[char_mask] = np.clip(bright[char_mask].astype(np.int16) + 25, 0, 255).astype(np.uint8)
    res = checker.check(frame, bright, char_mask)
    assert res["seam"] > checker.thresholds["seam"] > 1.0
    assert "seam" in res["flags"]


def test_seam_score_of_the_untouched_frame_is_about_one(frame, char_mask):
    """The dilated border falls on scenery at random: no stronger steps there than beside it."""
    assert 0.5 < seam_score(frame, char_mask) < 1.2


def test_seam_score_sees_a_step_on_part_of_the_border():
    rng = np.random.default_rng(1)
    base = cv2.GaussianBlur(rng.integers(60, 190, (240, 320, 3), dtype=np.uint8), (0, 0), 2)
    mask = np.zeros((240, 320), bool)
    mask[60:180, 80:240] = True
    assert seam_score(base, mask) < 1.35
    plate = base.copy()
    left = mask.copy()
    left[:, 160:] = False  # only the left half of the fill is offset
    plate[left] = np.clip(plate[left].astype(np.int16) + 30, 0, 255).astype(np.uint8)
    assert seam_score(plate, mask) > 1.35


# ------------------------------------------------------------------------------- checker basics

def test_empty_mask_scores_zero_without_running_the_model():
    c = PlateChecker(QAConfig(), "cpu")
    img = np.zeros((32, 48, 3), np.uint8)
    assert c.check(img, img, np.zeros((32, 48), bool)) == {"residue": 0.0, "flat": 0.0, "seam": 0.0, "flags": []}
    assert c.weights_used() == []  # the saliency model was not loaded


def test_shape_mismatch_is_an_error():
    c = PlateChecker(QAConfig(), "cpu")
    with pytest.raises(ValueError, match="shapes differ"):
        c.check(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9, 3), np.uint8), np.ones((8, 8), bool))


def test_create_checker_takes_thresholds_from_the_config(frame, char_mask):
    cfg = load_config(overrides={"qa.residue_threshold": 0.5, "qa.residue_threshold_alone": 1.0,
                                 "qa.flat_threshold": 0.0})
    c = create_checker(cfg, "cpu")
    assert c.thresholds == {"residue": 0.5, "flat": 0.0, "seam": cfg.qa.seam_threshold}
    res = c.check(frame, frame, char_mask)  # a frame alone: the frame-only score and its own threshold
    assert res["residue"] > 0.5 and "residue" not in res["flags"]  # 1.0 is not above 1.0
    assert [w.name for w in c.weights_used()] == ["u2netp"]


def test_large_frames_are_scored_at_the_working_size(frame, char_mask, checker):
    """A 2x upscaled frame is scored on a 1024-px copy: same verdicts as the original size."""
    big = cv2.resize(frame, None, fx=2, fy=2, interpolation=cv2.INTER_LINEAR)
    big_mask = cv2.resize(char_mask.astype(np.uint8), None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST) > 0
    res = checker.check(big, big, big_mask)
    assert res["flags"] == ["residue"]


def test_defaults_are_the_calibrated_thresholds():
    qa = QAConfig()
    assert (qa.residue_threshold, qa.residue_threshold_alone, qa.flat_threshold, qa.seam_threshold) == (
        0.3, 0.08, 0.25, 1.35)


# -------------------------------------------------------------------------------- PSNR and SSIM

def test_psnr_known_values():
    a = np.full((10, 10, 3), 100, np.uint8)
    b = a + 10
    assert psnr(a, b) == pytest.approx(10 * math.log10(255 ** 2 / 100))
    assert psnr(a, a) == PSNR_CAP
    region = np.zeros((10, 10), bool)
    region[:5] = True
    c = a.copy()
    c[5:] = 0  # differences outside the region do not count
    assert psnr(a, c, region) == PSNR_CAP
    assert math.isnan(psnr(a, c, np.zeros((10, 10), bool)))


def test_ssim_matches_the_closed_form_on_constant_images():
    """For constant images SSIM = (2 mx my + C1) / (mx^2 + my^2 + C1) (the variance terms are C2/C2)."""
    a = np.full((40, 40), 100, np.uint8)
    b = np.full((40, 40), 140, np.uint8)
    c1 = (0.01 * 255) ** 2
    expected = (2 * 100 * 140 + c1) / (100 ** 2 + 140 ** 2 + c1)
    assert ssim(a, b) == pytest.approx(expected, rel=1e-4)
    assert ssim(a, a) == pytest.approx(1.0)


def test_ssim_orders_degradations(frame):
    crop = frame[100:300, 100:400]
    rng = np.random.default_rng(0)
    light = np.clip(crop.astype(np.int16) + rng.normal(0, 5, crop.shape), 0, 255).astype(np.uint8)
    heavy = np.clip(crop.astype(np.int16) + rng.normal(0, 30, crop.shape), 0, 255).astype(np.uint8)
    blurred = cv2.GaussianBlur(crop, (0, 0), 4)
    s_light, s_heavy, s_blur = ssim(crop, light), ssim(crop, heavy), ssim(crop, blurred)
    assert 1.0 > s_light > s_heavy
    assert s_blur < s_light
    m = ssim_map(crop, heavy)
    assert m.shape == crop.shape[:2] and m.dtype == np.float32
    assert ssim(crop, heavy) == pytest.approx(ssim(heavy, crop), abs=1e-6)  # symmetric


def test_sintel_folder_is_there():
    assert Path(SINTEL, "frame_0016.png").is_file()


# ------------------------------------------------------------------------ residue with the shot (issue 12)

def _textured(h: int = 120, w: int = 200, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.integers(0, 255, (h // 8, w // 8, 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
    return cv2.GaussianBlur(base, (3, 3), 0)


def test_shot_evidence_finds_the_moving_character_against_the_background_model():
    from cleanplate.qa.shot import shot_evidence

    bg = _textured()
    images, masks, boxes = [], [], []
    for k in range(6):  # a locked-off camera, a red block walking right
        img = bg.copy()
        x = 20 + 25 * k
        img[40:90, x:x + 24] = (220, 30, 30)
        m = np.zeros(bg.shape[:2], bool)
        m[36:94, x - 4:x + 28] = True
        images.append(img)
        masks.append(m)
        boxes.append((x, x + 24))
    ev = shot_evidence(images, masks)
    assert all(e is not None for e in ev)
    for e, (x0, x1) in zip(ev, boxes, strict=True):
        assert e.neighbours >= 3
        assert np.abs(e.background.astype(int) - bg.astype(int))[e.valid].mean() < 3  # the scenery, character gone
        assert e.foreground[45:85, x0 + 3:x1 - 3].mean() > 0.9  # the block is foreground
        outside = np.ones(bg.shape[:2], bool)
        outside[30:100, max(0, x0 - 10):x1 + 10] = False
        assert e.foreground[outside & e.valid].mean() < 0.01  # scenery is not


def test_shot_residue_counts_a_missed_part_and_not_a_plate_that_matches_the_background():
    from cleanplate.qa.residue import shot_residue_score
    from cleanplate.qa.shot import ShotEvidence

    bg = _textured()
    image = bg.copy()
    image[40:90, 80:104] = (220, 30, 30)  # the character
    image[20:40, 84:100] = (30, 200, 30)  # his hat, which the mask missed
    sal = np.zeros(bg.shape[:2], np.float32)
    sal[20:90, 80:104] = 0.9
    fg = np.zeros(bg.shape[:2], bool)
    fg[20:90, 80:104] = True
    ev = ShotEvidence(bg, np.ones(bg.shape[:2], bool), fg, 4)
    mask = np.zeros(bg.shape[:2], bool)
    mask[38:92, 78:106] = True
    whole = np.zeros(bg.shape[:2], bool)
    whole[16:92, 78:106] = True  # a mask with the hat: the plate restores the background there
    score, parts = shot_residue_score(image, bg.copy(), whole, sal, ev)
    assert score == 0.0
    kept_bg = bg.copy()
    kept_bg[whole] = image[whole]  # ... whereas a plate that kept the character in the mask is residue
    assert shot_residue_score(image, kept_bg, whole, sal, ev)[1]["kept"] > 0.8  # (its 1-px rim passes)
    plate = image.copy()
    plate[mask] = bg[mask]  # body removed, hat left
    score, parts = shot_residue_score(image, plate, mask, sal, ev)
    # rows 20-36 of the salient 20-90 are outside the mask and its 2-px edge (EDGE)
    assert parts["missed"] == pytest.approx(16 / 52, abs=1e-4) and score > 0.2
    assert parts["kept"] == 0.0
    score, parts = shot_residue_score(image, image, mask, sal, ev)  # nothing filled: the plate is the frame
    assert parts["kept"] > 0.8 and score == 1.0


@pytest.fixture(scope="module")
def bmx_shot() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Six consecutive DAVIS bmx-trees frames (432x240, panning camera) and their truth masks."""
    from cleanplate.io.outputs import read_mask

    clip = SINTEL.parent / "davis_bmx-trees"
    files = sorted((clip / "frames").iterdir())[40:46]
    return [decoded(f) for f in files], [read_mask(clip / "masks" / f"{f.stem}.png") for f in files]


def _cut_top(m: np.ndarray, share: float = 0.6) -> np.ndarray:
    from cleanplate.report.bench_calib import truncate

    return truncate(m, share)


def test_check_shot_flags_plates_that_still_show_the_rider_and_passes_correct_ones(bmx_shot, checker):
    """Real footage: correct plates (truth mask, dilated) pass; plates whose mask left out the rider's upper
    60 % are flagged. Checked one frame at a time, the same correct plates are flagged (the old behaviour)."""
    from cleanplate.records import CheckFrame

    images, truth = bmx_shot
    for cut, expect in ((False, False), (True, True)):
        masks = [M.dilate(_cut_top(t) if cut else t, 6) for t in truth]
        plates = [_telea(i, m) for i, m in zip(images, masks, strict=True)]
        frames = [CheckFrame(f"f{k}", i, p, m) for k, (i, p, m) in enumerate(zip(images, plates, masks, strict=True))]
        res = checker.check_shot(frames)
        flagged = ["residue" in r["flags"] for r in res]
        assert all(r["detail"]["shot_neighbours"] >= 2 for r in res)
        if expect:
            assert sum(flagged) >= 5, [r["residue"] for r in res]
        else:
            assert sum(flagged) <= 1, [r["residue"] for r in res]
    single = checker.check_shot(frames[:2])  # fewer than 3 frames: each alone, as check() does
    assert [r["residue"] for r in single] == [checker.check(f.image, f.plate, f.mask)["residue"] for f in frames[:2]]


def test_check_shot_flags_a_frame_whose_mask_missed_the_character_entirely(bmx_shot, checker):
    from cleanplate.records import CheckFrame

    images, truth = bmx_shot
    masks = [M.dilate(t, 6) for t in truth]
    masks[3] = np.zeros_like(masks[3])  # the detector found nothing here; the plate is the frame
    plates = [_telea(i, m) if m.any() else i.copy() for i, m in zip(images, masks, strict=True)]
    res = checker.check_shot([CheckFrame(f"f{k}", i, p, m)
                              for k, (i, p, m) in enumerate(zip(images, plates, masks, strict=True))])
    assert "residue" in res[3]["flags"] and res[3]["detail"]["residue_missed"] > 0.2
    assert checker.check(images[3], plates[3], masks[3])["residue"] == 0.0  # alone, an empty mask passes


def test_shot_residue_counts_a_part_sticking_out_of_the_mask_that_saliency_misses():
    """A head left outside the mask that the saliency map does not see (another character dominates it)
    is foreground touching the mask: residue. Foreground apart from the mask (another character) is not."""
    from cleanplate.qa.checks import PlateChecker
    from cleanplate.qa.residue import ATTACHED_WEIGHT, shot_residue_score
    from cleanplate.qa.shot import ShotEvidence

    bg = _textured()
    image = bg.copy()
    image[20:90, 80:104] = (220, 30, 30)  # the character; rows 20-40 (his head) are outside the mask
    image[30:80, 150:180] = (30, 30, 220)  # someone else, well clear of the mask
    fg = np.zeros(bg.shape[:2], bool)
    fg[20:90, 80:104] = True
    fg[30:80, 150:180] = True
    ev = ShotEvidence(bg, np.ones(bg.shape[:2], bool), fg, 4)
    sal = np.zeros(bg.shape[:2], np.float32)  # the saliency map sees nothing of him
    mask = np.zeros(bg.shape[:2], bool)
    mask[40:92, 78:106] = True
    plate = image.copy()
    plate[mask] = bg[mask]
    score, parts = shot_residue_score(image, plate, mask, sal, ev)
    head = 18 * 24  # rows 20-38: the mask's 2-px edge (EDGE) is left out
    assert parts["attached"] == pytest.approx(head / (mask.sum() / 4.0), abs=1e-3)  # the other one is not counted
    assert parts["missed"] == 0.0 and parts["appearance"] == 0.0
    assert score == pytest.approx(min(1.0, ATTACHED_WEIGHT * parts["attached"]), abs=1e-3)
    assert score > PlateChecker(QAConfig()).thresholds["residue"]
    whole = mask.copy()
    whole[16:40, 78:106] = True  # the mask with the head: nothing attached, nothing flagged
    plate2 = image.copy()
    plate2[whole] = bg[whole]
    score2, parts2 = shot_residue_score(image, plate2, whole, sal, ev)
    assert parts2["attached"] == 0.0 and score2 == 0.0


def test_a_shot_with_nothing_removed_is_not_flagged():
    """Every mask of the shot empty (nobody in view; a still prop the shot keeps): nothing can be left
    behind, so no residue flag, whatever the saliency model sees in the plates."""
    from cleanplate.qa.checks import PlateChecker
    from cleanplate.records import CheckFrame
    from cleanplate.report.bench_cases import build_case

    case = build_case("still-prop", n=6)
    empty = np.zeros(case.frames[0].shape[:2], bool)
    frames = [CheckFrame(f"f{i}", f, f.copy(), empty) for i, f in enumerate(case.frames)]
    results = PlateChecker(load_config().qa).check_shot(frames)
    assert [r["flags"] for r in results] == [[]] * 6
    assert all(r["residue"] == 0.0 for r in results)
