"""Speed work: holes filled in crops (byte-exact outside, every hole filled, borders, full and tiny
masks, many holes), the device probe without torch, batched saliency equal to per-frame saliency."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from cleanplate.config import load_config
from cleanplate.errors import FrameError
from cleanplate.fill.base import create_inpainter
from cleanplate.fill.crop import CropSettings, fill_by_crops, plan_crops
from conftest import decoded

MAGENTA = np.array([255, 0, 255], np.uint8)


@pytest.fixture(scope="module")
def frame(sintel_frames: list[Path]) -> np.ndarray:
    """A real Sintel frame scaled to 512x218 (HxWx3 uint8 RGB)."""
    return cv2.resize(decoded(sintel_frames[0]), (512, 218), interpolation=cv2.INTER_AREA)


def _holed(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The frame with its holes painted magenta, a colour the fill must not copy from anywhere."""
    out = image.copy()
    out[mask] = MAGENTA
    return out


def _assert_filled(src: np.ndarray, plate: np.ndarray, mask: np.ndarray) -> None:
    assert plate.shape == src.shape and plate.dtype == np.uint8
    assert np.array_equal(plate[~mask], src[~mask])  # unmasked bytes untouched
    magenta = np.all(plate == MAGENTA, axis=-1)
    assert not (magenta & mask).any()  # every hole pixel was written
    # and with real texture: no pixel of the fill is pure-magenta-ish (the hole colour leaked in)
    filled = plate[mask].astype(int)
    assert (np.abs(filled - MAGENTA.astype(int)).sum(axis=1) > 60).all()


def _fill(method: str, image: np.ndarray, mask: np.ndarray, **over: object) -> np.ndarray:
    cfg = load_config(overrides={"fill.method": method, **{f"fill.{k}": v for k, v in over.items()}})
    return create_inpainter(cfg, "cpu").fill([image], [mask])[0].plate


@pytest.mark.parametrize("method", ["patchmatch", "opencv-telea", "opencv-ns"])
def test_crop_fill_keeps_unmasked_bytes_and_fills_each_hole(frame: np.ndarray, method: str):
    mask = np.zeros(frame.shape[:2], bool)
    mask[40:90, 60:120] = True  # a hole
    mask[150:170, 300:330] = True  # another, far away
    mask[0:25, 480:512] = True  # touching the top-right corner
    mask[200:218, 0:40] = True  # touching the bottom-left corner
    mask[100, 250] = True  # a one-pixel hole
    src = _holed(frame, mask)
    plate = _fill(method, src, mask)
    _assert_filled(src, plate, mask)
    assert np.array_equal(plate, _fill(method, src, mask))  # seeded: the same plate twice


def test_crop_fill_close_to_the_whole_frame_fill_on_a_smooth_picture():
    """On a smooth gradient any good fill is near the truth; crops must not lose that."""
    yy, xx = np.mgrid[0:200, 0:300].astype(np.float32)
    truth = np.dstack([xx * 0.8, yy * 1.2, 255 - xx * 0.5]).clip(0, 255).astype(np.uint8)
    mask = np.zeros((200, 300), bool)
    mask[60:110, 100:160] = True
    plate = _fill("opencv-telea", _holed(truth, mask), mask)
    err = np.abs(plate[mask].astype(int) - truth[mask].astype(int)).mean()
    assert err < 6


def test_many_holes_are_all_filled(frame: np.ndarray):
    rng = np.random.default_rng(3)
    mask = np.zeros(frame.shape[:2], bool)
    for y in range(4, 210, 30):  # a 7x13 grid of 1-4 px holes, 40 px apart
        for x in range(4, 508, 40):
            mask[y:y + rng.integers(1, 5), x:x + rng.integers(1, 5)] = True
    src = _holed(frame, mask)
    crops, labels = plan_crops(mask, CropSettings())
    assert len(crops) == 7 * 13  # holes further apart than merge_gap are separate crops
    assert set(np.unique(labels[mask])) == {c.label for c in crops}  # every hole pixel belongs to a crop
    _assert_filled(src, _fill("patchmatch", src, mask), mask)


def test_plan_crops_groups_near_holes_and_clips_to_the_frame():
    mask = np.zeros((100, 200), bool)
    mask[10:20, 10:20] = True
    mask[10:20, 25:30] = True  # 5 px away: same cluster
    mask[80:90, 180:200] = True  # at the right border
    crops, labels = plan_crops(mask, CropSettings(context=0.5, min_context=8, merge_gap=8))
    assert len(crops) == 2
    near, border = crops
    assert labels[15, 15] == labels[15, 27] == near.label
    # the cluster's box 10:20 x 10:30 plus max(8, 0.5 * 20) px each side, clipped at 0
    assert (near.y0, near.y1, near.x0, near.x1) == (0, 30, 0, 40)
    assert border.x1 == 200 and border.y1 == 100  # clipped
    assert not labels[~mask].any()


def test_large_crops_are_solved_at_reduced_scale(frame: np.ndarray, monkeypatch: pytest.MonkeyPatch):
    mask = np.zeros(frame.shape[:2], bool)
    mask[30:200, 100:400] = True
    seen: list[tuple[int, int]] = []

    def solve(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        seen.append(hole.shape)
        return cv2.inpaint(image, hole.astype(np.uint8), 3, cv2.INPAINT_TELEA)

    src = _holed(frame, mask)
    plate = fill_by_crops(src, mask, solve, CropSettings(work_pixels=20_000))
    (shape,) = seen
    assert shape[0] * shape[1] <= 20_500 and shape[0] < 218
    _assert_filled(src, plate, mask)
    seen.clear()
    full = fill_by_crops(src, mask, solve, CropSettings(work_pixels=0))
    assert seen == [(218, 512)]  # the context reaches every border: the whole frame, at full size
    _assert_filled(src, full, mask)


@pytest.mark.parametrize("method", ["patchmatch", "opencv-telea"])
def test_a_full_mask_is_a_frame_error(frame: np.ndarray, method: str):
    mask = np.ones(frame.shape[:2], bool)
    with pytest.raises(FrameError, match="whole frame"):
        _fill(method, frame, mask)


def test_an_empty_mask_returns_the_frame(frame: np.ndarray):
    mask = np.zeros(frame.shape[:2], bool)
    assert np.array_equal(_fill("patchmatch", frame, mask), frame)


def test_crop_off_still_fills_the_whole_frame(frame: np.ndarray):
    mask = np.zeros(frame.shape[:2], bool)
    mask[50:80, 50:90] = True
    src = _holed(frame, mask)
    _assert_filled(src, _fill("opencv-telea", src, mask, crop=False), mask)


def test_device_auto_does_not_import_torch_without_a_gpu_driver():
    code = ("import sys; from cleanplate.devices import resolve_device, _no_gpu_driver; d = resolve_device('auto'); "
            "print(d, 'torch' in sys.modules, _no_gpu_driver('cuda'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    if out[2] == "True":  # no NVIDIA/ROCm driver on this machine
        assert out == ["cpu", "False", "True"]


def test_a_default_run_start_imports_no_heavy_optional_module():
    """CLI, pipeline, the default segmenter, fill and checks load without torch & co (seconds of imports)."""
    code = (
        "import sys\n"
        "from cleanplate.config import load_config\n"
        "from cleanplate.devices import _no_gpu_driver, resolve_device\n"
        "import cleanplate._cli.main, cleanplate.pipeline\n"
        "from cleanplate.fill import create_inpainter\n"
        "from cleanplate.segment import create_segmenter\n"
        "from cleanplate.qa import create_checker\n"
        "cfg = load_config(); d = resolve_device('cpu' if not _no_gpu_driver('cuda') else 'auto')\n"
        "create_inpainter(cfg, d); create_segmenter(cfg, d); create_checker(cfg, d).load()\n"
        "heavy = ['torch', 'transformers', 'scenedetect', 'sklearn', 'av', 'ray', 'imagehash', 'jinja2',\n"
        "         'open_clip', 'torchvision']\n"
        "print(' '.join(m for m in heavy if m in sys.modules) or 'none')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "none"


def test_batched_saliency_equals_per_frame_saliency(sintel_frames: list[Path]):
    from cleanplate.segment.saliency import SaliencyPredictor, SaliencySegmenter

    images = [decoded(p) for p in sintel_frames[:3]]
    images[1] = cv2.resize(images[1], (500, 300))  # sizes may differ within a batch
    pred = SaliencyPredictor("u2netp", "cpu")
    batch = pred.predict_batch(images)
    assert len(batch) == 3
    for im, sal in zip(images, batch, strict=True):
        one = pred.predict(im)
        assert sal.shape == im.shape[:2] and sal.dtype == np.float32
        np.testing.assert_allclose(sal, one, atol=1e-5)
    seg = SaliencySegmenter(load_config(), "cpu")
    results = seg.segment_batch(images)
    for im, res in zip(images, results, strict=True):
        alone = seg.segment(im)
        assert len(res.instances) == len(alone.instances) >= 1
        for a, b in zip(res.instances, alone.instances, strict=True):
            assert np.array_equal(a.mask, b.mask) and a.bbox == b.bbox
    assert seg.segment_batch([]) == []


def test_amg_lowres_stability_prefilter_keeps_the_same_masks():
    """The scripted-disc predictor of test_sam2: the low-resolution pre-filter changes nothing that
    the full-resolution threshold keeps, and skips upsampling of the masks it drops."""
    pytest.importorskip("torchvision")
    from cleanplate.segment import amg
    from test_sam2 import DiscPredictor

    h, w = 240, 400
    results, upsampled = {}, {}
    for lowres in (False, True):
        cfg = load_config(overrides={"segment.sam2.points_per_side": 4, "segment.sam2.pred_iou_thresh": 0.0,
                                     "segment.sam2.stability_score_thresh": 0.6,
                                     "segment.sam2.lowres_filter": lowres})
        pred = DiscPredictor()
        count = [0]
        up = pred.upsample

        def counting(low, hw, up=up, count=count):
            count[0] += len(low)
            return up(low, hw)

        pred.upsample = counting
        cands, _ = amg.MaskGenerator(pred, cfg.segment.sam2).generate(np.zeros((h, w, 3), np.uint8))
        results[lowres] = sorted((tuple(c.tolist()), r.area) for c, r in zip(cands.boxes, cands.rles, strict=True))
        upsampled[lowres] = count[0]
    assert results[True] == results[False] and results[True]
    assert upsampled[True] < upsampled[False]


@pytest.mark.parametrize("prompts", ["grid", "salient-boxes"])
def test_sam2_segment_batch_equals_per_frame(tmp_path: Path, sintel_frames: list[Path], prompts: str):
    """Frames batched through the image encoder give each frame's per-frame result, in one encoder call."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from transformers import Sam2ImageProcessor, Sam2Model

    from test_sam2 import make, tiny_sam2_config

    torch.manual_seed(0)
    Sam2Model(tiny_sam2_config()).save_pretrained(tmp_path)
    Sam2ImageProcessor(size={"height": 256, "width": 256}).save_pretrained(tmp_path)
    frames = [cv2.resize(decoded(p), (192, 82), interpolation=cv2.INTER_AREA) for p in sintel_frames[:3]]
    seg = make(tmp_path, **{"segment.prompts": prompts, "segment.select": "salient", "encoder_batch": 3})
    calls = seg.predictor.encoder_calls
    batched = seg.segment_batch(frames)
    assert seg.predictor.encoder_calls - calls == 1
    for image, res in zip(frames, batched, strict=True):
        alone = seg.segment(image)
        assert res.extra["n_sam2"] == alone.extra["n_sam2"] > 0
        assert len(res.instances) == len(alone.instances)
        for a, b in zip(res.instances, alone.instances, strict=True):
            assert np.array_equal(a.mask, b.mask) or (a.mask ^ b.mask).mean() < 1e-3  # float batch effects
            assert a.character == b.character


def test_precision_helpers_on_cpu():
    torch = pytest.importorskip("torch")
    from cleanplate.devices import autocast_dtype, to_device

    for precision in ("auto", "fp32", "bf16", "fp16"):
        assert autocast_dtype("cpu", precision) is None  # CPU runs float32
    assert autocast_dtype("cuda", "fp32") is None and autocast_dtype("cuda", "fp16") == torch.float16
    x = torch.arange(6.0)
    assert torch.equal(to_device(x, "cpu"), x)


def test_lama_compile_option_gives_the_same_plate(tmp_path: Path, frame: np.ndarray):
    """fill.lama.compile freezes and optimises a TorchScript model; the plate stays the same."""
    pytest.importorskip("torch")
    from cleanplate.fill.lama import LamaInpainter
    from test_lama import _torchscript_model

    path = _torchscript_model("invert", tmp_path / "invert.pt")
    mask = np.zeros(frame.shape[:2], bool)
    mask[60:140, 200:330] = True
    plates = []
    for compiled in (False, True):
        cfg = load_config(overrides={"fill.method": "lama", "fill.lama.checkpoint": str(path),
                                     "fill.lama.compile": compiled, "run.threads": 2})
        res = LamaInpainter(cfg, "cpu").fill([frame], [mask])[0]
        assert res.extra["precision"] == "fp32"
        plates.append(res.plate)
    assert np.array_equal(plates[0], plates[1])
    assert np.array_equal(plates[1][~mask], frame[~mask]) and not np.array_equal(plates[1][mask], frame[mask])


@pytest.mark.parametrize("method", ["patchmatch", "opencv-telea"])
def test_frames_filled_on_threads_give_the_same_plates(sintel_frames: list[Path], method: str):
    """fill.workers 2 fills two frames at once on threads: the plates are byte for byte those of one
    frame at a time, and a bad frame (a mask over the whole frame) fails alone."""
    from cleanplate.records import FrameRecord
    from cleanplate.stages.fill import FillStage

    images = [cv2.resize(decoded(p), (384, 164), interpolation=cv2.INTER_AREA) for p in sintel_frames[:5]]
    masks = []
    for k in range(len(images)):
        m = np.zeros((164, 384), np.uint8)
        cv2.ellipse(m, (120 + 30 * k, 90), (40, 55), 0, 0, 360, 1, -1)
        cv2.circle(m, (320, 40), 12 + k, 1, -1)
        masks.append(m.astype(bool))
    masks[3] = np.ones((164, 384), bool)  # nothing to fill from: this frame fails, the others don't

    def plates(workers: int) -> list[FrameRecord]:
        cfg = load_config(overrides={"fill.method": method, "fill.workers": workers})
        stage = FillStage(cfg, "cpu")
        assert stage.workers == workers
        recs = [FrameRecord(f"f{k}", k, "", image=im, mask=mk) for k, (im, mk) in enumerate(zip(images, masks, strict=True))]
        return stage(recs)

    one, two = plates(1), plates(2)
    assert [r.failed for r in two] == [False, False, False, True, False]
    assert two[3].failed_stage == "fill" and "whole frame" in (two[3].error or "")
    for a, b, im, mk in zip(one, two, images, masks, strict=True):
        if a.failed:
            continue
        assert b.plate is not None and np.array_equal(a.plate, b.plate)
        assert np.array_equal(b.plate[~mk], im[~mk])
        assert not np.array_equal(b.plate[mk], im[mk])
