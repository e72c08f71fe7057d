"""Character selection (select: all | salient | largest-k) and saliency box prompts.

The salient test runs the real bundled u2netp on a real Sintel frame with hand-made
SAM2-style instances (parts of the girl, and scenery: wall, roof, crates, a half-salient band).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from cleanplate.config import SegmentConfig
from cleanplate.records import Instance, bbox_xywh
from cleanplate.segment.select import SALIENCY_MISSED, saliency_prompts, select_characters
from conftest import SINTEL

FRAME = SINTEL / "frame_0016.png"
H, W = 436, 1024


def inst(mask: np.ndarray, iou: float = 0.9, stab: float = 0.95) -> Instance:
    ys, xs = np.nonzero(mask)
    return Instance(mask=mask, bbox=bbox_xywh(mask), area=int(mask.sum()), score=iou, predicted_iou=iou,
                    stability_score=stab, point=(float(xs.mean()), float(ys.mean())))


def rect(shape: tuple[int, int], x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return m


def ellipse(shape: tuple[int, int], cx: int, cy: int, ax: int, ay: int) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    cv2.ellipse(m, (cx, cy), (ax, ay), 0, 0, 360, 1, -1)
    return m.astype(bool)


def thick_line(shape: tuple[int, int], p: tuple[int, int], q: tuple[int, int], t: int) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    cv2.line(m, p, q, 1, t)
    return m.astype(bool)


@pytest.fixture(scope="module")
def sintel() -> tuple[np.ndarray, np.ndarray]:
    from cleanplate.segment.saliency import SaliencyPredictor

    image = cv2.cvtColor(cv2.imread(str(FRAME)), cv2.COLOR_BGR2RGB)
    return image, SaliencyPredictor("u2netp", "cpu", threads=2).predict(image)


def test_salient_keeps_the_girl_drops_scenery_on_real_frame(sintel):
    image, sal = sintel
    assert image.shape == (H, W, 3)
    s = (H, W)
    parts = {
        "head": ellipse(s, 460, 190, 100, 115),
        "arm": thick_line(s, (650, 395), (820, 335), 45),
        "apple": ellipse(s, 890, 295, 52, 55),
    }
    scenery = {
        "wall": rect(s, 720, 0, 1000, 150),
        "crates": rect(s, 70, 255, 215, 436),
        "roof": rect(s, 595, 0, 850, 55),
        "left building": rect(s, 0, 0, 300, 250),
        "band": rect(s, 520, 300, 1000, 436),  # torso/arm + the wall below: ~40 % salient
    }
    instances = [inst(m) for m in list(parts.values()) + list(scenery.values())]
    cfg = SegmentConfig(select="salient", salient_overlap=0.5, min_instance_size=400)
    out, extra = select_characters(instances, s, cfg, saliency=sal)

    chars = [i for i in out if i.character]
    merged = [i for i in chars if i.reason.startswith("salient:")]
    added = [i for i in chars if i.reason == SALIENCY_MISSED]
    dropped = [i for i in out if not i.character]
    # the three parts are one character (one saliency component), merged into one instance
    assert len(merged) == 1
    assert "3 SAM2 instances" in merged[0].reason
    union = parts["head"] | parts["arm"] | parts["apple"]
    assert np.array_equal(merged[0].mask, union)
    assert merged[0].area == int(union.sum()) and merged[0].bbox == bbox_xywh(union)
    assert extra["n_merged_parts"] == 3
    assert {p["into"] for p in extra["merged_parts"]} == {0}
    # every scenery instance dropped, with its overlap in the reason
    assert len(dropped) == len(scenery)
    assert {i.area for i in dropped} == {int(m.sum()) for m in scenery.values()}
    assert all(i.reason.startswith("scenery:") and "salient" in i.reason for i in dropped)
    band = next(i for i in dropped if i.area == int(scenery["band"].sum()))
    assert "(needs > 50%)" in band.reason and not band.reason.startswith("scenery: 0%")
    # the torso (no part instance) comes back as saliency pixels SAM2 missed
    assert added, "the torso should be added from the saliency map"
    sal_mask = sal >= cfg.saliency.threshold
    char_union = np.zeros(s, bool)
    for c in chars:
        char_union |= c.mask
    assert (char_union & sal_mask).sum() / sal_mask.sum() > 0.97
    torso = rect(s, 330, 330, 500, 436)
    assert (char_union & torso).sum() / torso.sum() > 0.9
    # ... while the scenery stays scenery
    for name in ("wall", "crates", "roof", "left building"):
        assert (char_union & scenery[name]).sum() / scenery[name].sum() < 0.02, name
    assert extra["n_all"] == 8 and extra["n_selected"] == len(chars) and extra["n_scenery"] == 5
    assert 0 < extra["coverage_selected"] < extra["coverage_all"] < 1
    assert extra["coverage_selected"] == pytest.approx(char_union.mean(), abs=1e-5)
    # records are JSON-ready and complete
    for i in out:
        rec = i.record()
        assert set(rec) == {"bbox", "area", "score", "predicted_iou", "stability_score", "point",
                            "character", "reason", "track_id", "evidence"}


def test_salient_two_characters_and_thin_rim(sintel):
    s = (120, 200)
    sal = np.zeros(s, np.float32)
    sal[ellipse(s, 50, 60, 30, 40)] = 1.0  # character A
    sal[ellipse(s, 150, 60, 25, 35)] = 0.8  # character B, smaller than A
    a_head = ellipse(s, 50, 40, 20, 20) & ellipse(s, 50, 60, 30, 40)
    a_body = ellipse(s, 50, 60, 29, 39) & ~a_head  # the rest of A but for a 1 px rim
    b = ellipse(s, 150, 60, 28, 38)  # B with a bit of background: ~80 % salient
    ground = rect(s, 0, 100, 200, 120)
    cfg = SegmentConfig(select="salient", salient_overlap=0.5, min_instance_size=50)
    out, extra = select_characters([inst(a_head), inst(a_body), inst(b), inst(ground)], s, cfg, saliency=sal)
    chars = [i for i in out if i.character]
    assert len(chars) == 2  # the 1-px rim of A is not "missed by SAM2"
    assert extra["n_saliency_added"] == 0
    assert chars[0].area >= chars[1].area
    assert np.array_equal(chars[0].mask, a_head | a_body)
    assert np.array_equal(chars[1].mask, b) and "of its pixels salient" in chars[1].reason
    assert [i.character for i in out] == [True, True, False]
    # area-weighted scores of the merged parts
    assert chars[0].predicted_iou == pytest.approx(0.9)


def test_salient_adds_a_character_sam2_missed_entirely():
    s = (100, 100)
    sal = np.zeros(s, np.float32)
    sal[20:60, 20:50] = 0.9
    sal[35, 30] = 1.0
    wall = rect(s, 60, 0, 100, 100)
    out, extra = select_characters([inst(wall)], s, SegmentConfig(select="salient", min_instance_size=100),
                                   saliency=sal)
    assert [i.reason for i in out if i.character] == [SALIENCY_MISSED]
    added = out[0]
    assert added.area == 40 * 30 and added.bbox == (20, 20, 30, 40)
    assert added.point == (30.0, 35.0) and added.predicted_iou is None
    assert not out[1].character and extra["n_saliency_added"] == 1


def test_salient_needs_a_saliency_map():
    with pytest.raises(ValueError):
        select_characters([], (10, 10), SegmentConfig(select="salient"))


def test_all_keeps_everything_above_min_size():
    s = (50, 50)
    big, mid, tiny = rect(s, 0, 0, 30, 30), rect(s, 30, 30, 50, 50), rect(s, 40, 0, 43, 3)
    out, extra = select_characters([inst(tiny), inst(mid), inst(big)], s,
                                   SegmentConfig(select="all", min_instance_size=100))
    assert [i.area for i in out] == [900, 400]
    assert all(i.character and i.reason == "select: all" for i in out)
    assert extra["n_below_min_size"] == 1 and extra["n_all"] == 3
    assert extra["coverage_all"] == pytest.approx((900 + 400 + 9) / 2500)
    assert extra["coverage_selected"] == pytest.approx(1300 / 2500)


def test_largest_k():
    s = (60, 60)
    masks = [rect(s, 0, 0, 10 + 5 * k, 10) for k in range(5)]  # areas 100..300
    out, extra = select_characters([inst(m) for m in masks], s,
                                   SegmentConfig(select="largest-k", select_k=2, min_instance_size=120))
    assert [i.character for i in out] == [True, True, False, False]
    assert [i.area for i in out] == [300, 250, 200, 150]
    assert out[0].reason == "largest-k: rank 1 of 4, k=2"
    assert out[2].reason == "largest-k: rank 3 > k=2"
    assert extra["n_below_min_size"] == 1 and extra["n_selected"] == 2 and extra["n_scenery"] == 2


def test_saliency_prompts_boxes_and_peaks(sintel):
    s = (100, 200)
    sal = np.zeros(s, np.float32)
    sal[10:50, 20:60] = 0.7
    sal[30, 40] = 1.0
    sal[60:90, 120:190] = 0.6
    sal[2:4, 2:4] = 0.9  # below min size
    prompts = saliency_prompts(sal, 0.5, min_size=20, pad=0.0)
    assert len(prompts) == 2
    big, small = prompts
    assert big.box == (120.0, 60.0, 189.0, 89.0) and big.area == 30 * 70
    assert small.box == (20.0, 10.0, 59.0, 49.0) and small.point == (40.0, 30.0)
    padded = saliency_prompts(sal, 0.5, min_size=20, pad=0.1)
    assert padded[0].box == (113.0, 57.0, 196.0, 92.0)
    # on the real frame: one component, the girl, and its box holds her
    _, real = sintel
    (girl,) = saliency_prompts(real, 0.5, 400)
    x0, y0, x1, y1 = girl.box
    assert x0 < 320 and x1 > 950 and y0 < 80 and y1 >= 435
