"""The sam2 backend on the real SAM2 architecture (transformers' Sam2Model) with random weights.

Random weights give meaningless masks, so the quality thresholds are set to 0 and the tests assert
structure and logic: records, filters, NMS, crops, batching, OOM retries, weights errors.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from cleanplate.config import load_config  # noqa: E402
from cleanplate.errors import BackendUnavailableError, ConfigError, FrameError, WeightsError  # noqa: E402
from cleanplate.masks import remove_small_regions  # noqa: E402
from cleanplate.records import bbox_xywh  # noqa: E402
from cleanplate.segment import amg  # noqa: E402
from cleanplate.segment import sam2 as sam2_mod  # noqa: E402
from cleanplate.segment.base import SEGMENTERS  # noqa: E402
from cleanplate.segment.select import SALIENCY_MISSED  # noqa: E402
from cleanplate.weights import REGISTRY  # noqa: E402
from conftest import SINTEL, tiny_sam2_vision  # noqa: E402

FRAME = SINTEL / "frame_0016.png"
SIDE = 256
RECORD_KEYS = {"bbox", "area", "score", "predicted_iou", "stability_score", "point", "character", "reason", "track_id",
               "evidence"}


def tiny_sam2_config():
    from transformers import Sam2Config
    from transformers.models.sam2.configuration_sam2 import Sam2MaskDecoderConfig, Sam2PromptEncoderConfig

    prompt = Sam2PromptEncoderConfig(hidden_size=32, image_size=SIDE, patch_size=16, mask_input_channels=8)
    decoder = Sam2MaskDecoderConfig(hidden_size=32, mlp_dim=64, num_attention_heads=4, iou_head_hidden_dim=32)
    return Sam2Config(vision_config=tiny_sam2_vision(SIDE, 32), prompt_encoder_config=prompt,
                      mask_decoder_config=decoder)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    from transformers import Sam2ImageProcessor, Sam2Model

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("sam2-tiny")
    Sam2Model(tiny_sam2_config()).save_pretrained(folder)
    Sam2ImageProcessor(size={"height": SIDE, "width": SIDE}).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module", autouse=True)
def _restore_torch_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    image = cv2.cvtColor(cv2.imread(str(FRAME)), cv2.COLOR_BGR2RGB)
    return cv2.resize(image, (192, 82), interpolation=cv2.INTER_AREA)


def make(ckpt: Path, **over):
    base = {
        "segment.backend": "sam2", "segment.sam2.checkpoint": str(ckpt), "segment.sam2.points_per_side": 4,
        "segment.sam2.pred_iou_thresh": 0.0, "segment.sam2.stability_score_thresh": 0.0,
        "segment.sam2.stability_score_offset": 0.05, "segment.min_instance_size": 20,
        "segment.sam2.box_nms_thresh": 1.0, "run.threads": 1,
    }
    base.update({k if k.startswith(("segment.", "run.")) else f"segment.sam2.{k}": v for k, v in over.items()})
    return sam2_mod.Sam2Segmenter(load_config(overrides=base), "cpu")


def masks_of(result) -> list[np.ndarray]:
    return [i.mask for i in result.instances]


def test_grid_instances_and_records(ckpt, frame):
    seg = make(ckpt)
    res = seg.segment(frame)
    h, w = frame.shape[:2]
    assert res.instances, "thresholds at 0 and no NMS: random masks must come out"
    grid = {(round(x, 3), round(y, 3)) for x, y in amg.point_grid(4) * [w, h]}
    for inst in res.instances:
        assert inst.mask.shape == (h, w) and inst.mask.dtype == bool
        assert inst.area == int(inst.mask.sum()) >= 20
        assert inst.bbox == bbox_xywh(inst.mask)
        assert type(inst.predicted_iou) is float and type(inst.stability_score) is float  # JSON-ready
        assert inst.score == inst.predicted_iou
        assert inst.record()["stability_score"] == round(inst.stability_score, 4)
        assert (round(inst.point[0], 3), round(inst.point[1], 3)) in grid
        assert inst.character and inst.reason == "select: all"
        assert set(inst.record()) == RECORD_KEYS
    ex = res.extra
    for key in ("coverage_all", "coverage_selected", "n_all", "n_selected", "oom_retries",
                "points_per_batch_used", "encoder_calls", "n_sam2", "seconds"):
        assert key in ex, key
    assert ex["encoder_calls"] == 1 and ex["oom_retries"] == 0 and ex["points_per_batch_used"] == 64
    assert ex["n_all"] == ex["n_sam2"] <= 16 * 3
    union = np.logical_or.reduce([i.mask for i in res.instances]).mean()  # select: all keeps every mask
    assert ex["coverage_selected"] == ex["coverage_all"] == pytest.approx(union, abs=1e-5)
    used = seg.weights_used()
    assert [u.source for u in used] == ["checkpoint"]
    assert used[0].sha256 == hashlib.sha256((ckpt / "model.safetensors").read_bytes()).hexdigest()


def test_deterministic_and_model_loaded_once(ckpt, frame):
    a, b = make(ckpt), make(ckpt)
    assert a.predictor.model is b.predictor.model
    ra, rb = a.segment(frame), b.segment(frame)
    assert [i.record() for i in ra.instances] == [i.record() for i in rb.instances]
    assert all(np.array_equal(x, y) for x, y in zip(masks_of(ra), masks_of(rb), strict=True))


def test_filters_and_nms(ckpt, frame):
    everything = make(ckpt).segment(frame)
    ious = [i.predicted_iou for i in everything.instances]
    stabs = [i.stability_score for i in everything.instances]
    assert len(set(ious)) > 1
    # predicted IoU: strictly greater than the threshold
    cut = float(np.median(ious))
    kept = make(ckpt, pred_iou_thresh=cut).segment(frame).instances
    assert kept and all(i.predicted_iou > cut for i in kept) and len(kept) < len(everything.instances)
    # stability: at least the threshold
    s_cut = float(np.median(stabs))
    kept = make(ckpt, stability_score_thresh=s_cut, lowres_filter=False).segment(frame).instances
    assert kept and all(i.stability_score >= s_cut - 1e-6 for i in kept)
    # exactly the masks whose recorded stability reaches the cut: the record is what the filter read
    want = sorted((i.point, i.stability_score) for i in everything.instances if i.stability_score >= s_cut)
    assert sorted((i.point, i.stability_score) for i in kept) == want
    # NMS removes overlapping boxes
    nmsed = make(ckpt, box_nms_thresh=0.5).segment(frame).instances
    assert 0 < len(nmsed) < len(everything.instances)
    boxes = np.array([[x, y, x + bw - 1, y + bh - 1] for x, y, bw, bh in (i.bbox for i in nmsed)], float)
    import torchvision

    iou = torchvision.ops.box_iou(torch.tensor(boxes), torch.tensor(boxes)).numpy()
    assert (iou[~np.eye(len(boxes), dtype=bool)] <= 0.5 + 1e-6).all()
    # single-mask output: at most one mask per point
    single = make(ckpt, multimask_output=False).segment(frame)
    assert single.extra["n_sam2"] <= 16


def test_min_mask_region_area_and_mask_threshold(ckpt, frame):
    res = make(ckpt, min_mask_region_area=60).segment(frame)
    assert res.instances
    for inst in res.instances:
        assert np.array_equal(remove_small_regions(inst.mask, 60), inst.mask)
    hi = make(ckpt, mask_threshold=0.05).segment(frame)
    lo = make(ckpt, mask_threshold=-0.05).segment(frame)
    assert sum(i.area for i in hi.instances) / max(1, len(hi.instances)) < \
        sum(i.area for i in lo.instances) / max(1, len(lo.instances))


def test_crops_one_embedding_per_crop(ckpt, frame):
    seg = make(ckpt, crop_n_layers=1, crop_n_points_downscale_factor=2)
    res = seg.segment(frame)
    assert res.extra["encoder_calls"] == 5  # the frame + 2x2 crops, each embedded once
    crops = amg.crop_boxes(frame.shape[:2], 1, 512 / 1500)
    assert len(crops) == 5 and crops[0] == ((0, 0, 192, 82), 0)
    assert len(seg.generator.grids[1]) == 4  # 4 / 2 points a side in layer 1
    for inst in res.instances:
        assert inst.mask.shape == frame.shape[:2] and inst.bbox == bbox_xywh(inst.mask)


def test_grid_and_crops_match_meta_reference():
    from transformers.models.sam2 import image_processing_sam2 as hf

    assert np.allclose(amg.point_grid(5), hf._build_point_grid(5).numpy())
    ours = [list(b) for b, _ in amg.crop_boxes((436, 1024), 2, 512 / 1500)]
    theirs, _ = hf._generate_per_layer_crops(2, 512 / 1500, (436, 1024))
    assert ours == theirs


def test_point_scaling_matches_sam2_processor(ckpt):
    from transformers import Sam2ImageProcessor, Sam2Processor

    proc = Sam2Processor(image_processor=Sam2ImageProcessor(size={"height": SIDE, "width": SIDE}))
    pts = np.array([[10.0, 20.0], [191.0, 81.0]], np.float32)
    ref = proc(input_points=[[[[float(x), float(y)]] for x, y in pts]], original_sizes=[[82, 192]],
               return_tensors="pt")["input_points"][0, :, 0].numpy()
    seg = make(ckpt)
    seg.predictor._hw = (82, 192)
    scale = np.array([seg.predictor.side / 192, seg.predictor.side / 82])
    assert np.allclose(pts * scale, ref)


def test_oom_retry_halves_points_per_batch(ckpt, frame, monkeypatch):
    ref = make(ckpt, points_per_batch=8).segment(frame)
    seg = make(ckpt, points_per_batch=8)
    real = seg.predictor.decode
    calls: list[int] = []

    def flaky(points, boxes, multimask):
        first = not calls
        calls.append(len(points))
        if first and seg.frames == 0:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(points, boxes, multimask)

    monkeypatch.setattr(seg.predictor, "decode", flaky)
    res = seg.segment(frame)
    assert calls == [8, 4, 4, 4, 4]
    assert res.extra["oom_retries"] == 1 and res.extra["points_per_batch_used"] == 4
    assert [i.record() for i in res.instances] == [i.record() for i in ref.instances]
    # the halved size is kept for the next frame
    calls.clear()
    assert seg.segment(frame).extra["oom_retries"] == 0 and calls == [4, 4, 4, 4]


def test_oom_at_one_point_fails_the_frame_only(ckpt, frame, monkeypatch):
    seg = make(ckpt, points_per_batch=2)

    def always(points, boxes, multimask):
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(seg.predictor, "decode", always)
    with pytest.raises(FrameError, match="even with 1 point"):
        seg.segment(frame)


def test_cache_clear_interval(ckpt, frame, monkeypatch):
    seg = make(ckpt, cache_clear_interval=2)
    cleared = []
    monkeypatch.setattr(seg.predictor, "empty_cache", lambda: cleared.append(seg.frames))
    flags = [seg.segment(frame).extra["cache_cleared"] for _ in range(4)]
    assert flags == [False, True, False, True] and cleared == [2, 4]


def test_salient_boxes_prompted_mode(ckpt, frame):
    seg = make(ckpt, **{"segment.prompts": "salient-boxes", "segment.select": "salient",
                        "segment.min_instance_size": 50})
    decoded = []
    real = seg.predictor.decode

    def spy(points, boxes, multimask):
        decoded.append((None if points is None else len(points), None if boxes is None else len(boxes), multimask))
        return real(points, boxes, multimask)

    seg.predictor.decode = spy
    res = seg.segment(frame)
    sal = seg.saliency.predict(frame) >= 0.5
    assert res.extra["prompts"] == "salient-boxes" and res.extra["encoder_calls"] == 1
    n = res.extra["n_sam2"]
    assert n >= 1 and decoded == [(n, n, False)]  # one decoder pass, one mask per saliency component
    chars = [i for i in res.instances if i.character]
    assert chars and all(i.reason.startswith("salient") or i.reason == SALIENCY_MISSED for i in chars)
    union = np.zeros(frame.shape[:2], bool)
    for c in chars:
        union |= c.mask
    # whatever the random decoder did, the characters hold the salient pixels
    assert (union & sal).sum() / sal.sum() > 0.9
    assert {w.name for w in seg.weights_used()} == {"sam2.1-hiera-tiny", "u2netp"}


def test_grid_with_salient_selection(ckpt, frame):
    seg = make(ckpt, **{"segment.select": "salient", "segment.min_instance_size": 50})
    res = seg.segment(frame)
    ex = res.extra
    assert ex["select"] == "salient" and ex["n_all"] == ex["n_sam2"] > 0
    assert ex["n_selected"] + ex["n_scenery"] + ex["n_below_min_size"] >= 1
    sal = seg.saliency.predict(frame) >= 0.5
    union = np.zeros(frame.shape[:2], bool)
    for inst in res.instances:
        assert inst.reason
        if inst.character:
            union |= inst.mask
    assert (union & sal).sum() / sal.sum() > 0.9
    assert ex["coverage_selected"] == pytest.approx(union.mean(), abs=1e-5)


def test_bf16_autocast_path(ckpt, frame):
    """The CUDA path runs under bf16 autocast; exercise the same code under CPU autocast."""
    seg = make(ckpt)
    ref = seg.segment(frame)
    seg.predictor.dtype = torch.bfloat16
    res = seg.segment(frame)
    assert [e.dtype for e in seg.predictor._emb][:2] == [torch.bfloat16, torch.bfloat16]
    assert res.instances and res.extra["n_sam2"] == ref.extra["n_sam2"]
    for inst in res.instances:
        assert inst.mask.dtype == bool and inst.bbox == bbox_xywh(inst.mask)
    # bf16 is a rounding of the same model: the same points give nearly the same scores
    ref_scores = {i.point: (i.predicted_iou, i.stability_score) for i in ref.instances}
    shared = [i for i in res.instances if i.point in ref_scores]
    assert len(shared) >= len(res.instances) // 2, (len(shared), len(res.instances))
    for inst in shared:
        iou, stab = ref_scores[inst.point]
        assert inst.predicted_iou == pytest.approx(iou, abs=0.05) and inst.stability_score == pytest.approx(stab, abs=0.2)


def test_bad_frame_is_a_frame_error(ckpt):
    with pytest.raises(FrameError):
        make(ckpt).segment(np.zeros((32, 32), np.uint8))


# --- weights, registry, optional dependencies -----------------------------------------------------

def test_registry_and_model_types():
    assert "sam2" in SEGMENTERS
    for ver in ("sam2", "sam2.1"):
        for size in ("tiny", "small", "base-plus", "large"):
            spec = REGISTRY[f"{ver}-hiera-{size}"]
            assert spec.kind == "sam2" and spec.license == "Apache-2.0" and spec.hf_repo == f"facebook/{ver}-hiera-{size}"
    assert sam2_mod.weights_name("sam2.1_hiera_base_plus") == "sam2.1-hiera-base-plus"
    assert sam2_mod.weights_name("sam2_hiera_large") == "sam2-hiera-large"
    with pytest.raises(ConfigError, match="sam2.1_hiera_tiny"):
        sam2_mod.weights_name("vit_h")


def one_line_weights_error(cfg_over: dict) -> str:
    with pytest.raises(WeightsError) as info:
        sam2_mod.Sam2Segmenter(load_config(overrides={"segment.backend": "sam2", **cfg_over}), "cpu")
    msg = str(info.value)
    assert "\n" not in msg and len(msg) < 400
    return msg


def test_corrupt_and_incomplete_checkpoints(ckpt, tmp_path):
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "config.json").write_text((ckpt / "config.json").read_text())
    (garbage / "model.safetensors").write_bytes(b"\x00garbage" * 100)
    assert "cannot load SAM2 weights" in one_line_weights_error({"segment.sam2.checkpoint": str(garbage)})

    no_config = tmp_path / "no_config"
    no_config.mkdir()
    (no_config / "model.safetensors").write_bytes((ckpt / "model.safetensors").read_bytes())
    assert "no config.json" in one_line_weights_error({"segment.sam2.checkpoint": str(no_config)})

    from safetensors.torch import load_file, save_file

    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "config.json").write_text((ckpt / "config.json").read_text())
    tensors = load_file(str(ckpt / "model.safetensors"))
    save_file({k: v for k, v in tensors.items() if "mask_decoder" not in k}, str(partial / "model.safetensors"),
              metadata={"format": "pt"})
    assert "lack" in one_line_weights_error({"segment.sam2.checkpoint": str(partial)})

    assert "not found" in one_line_weights_error({"segment.sam2.checkpoint": str(tmp_path / "nowhere")})
    meta_pt = tmp_path / "sam2.1_hiera_tiny.pt"
    meta_pt.write_bytes(b"not really")
    assert "not supported" in one_line_weights_error({"segment.sam2.checkpoint": str(meta_pt)})


def test_checkpoint_without_preprocessor_config(ckpt, tmp_path, frame):
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        (bare / name).write_bytes((ckpt / name).read_bytes())
    ref = make(ckpt).segment(frame)
    res = make(bare).segment(frame)
    assert [i.record() for i in res.instances] == [i.record() for i in ref.instances]


def test_offline_without_weights_says_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setenv("CLEANPLATE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CLEANPLATE_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("CLEANPLATE_WEIGHTS", raising=False)
    msg = one_line_weights_error({"segment.sam2.model_type": "sam2.1_hiera_small"})
    assert "facebook/sam2.1-hiera-small" in msg
    assert str(tmp_path / "home" / "weights" / "sam2.1-hiera-small") in msg


def test_missing_transformers_gives_the_install_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(BackendUnavailableError, match=r"pip install 'cleanplate\[sam2\]'"):
        sam2_mod.Sam2Segmenter(load_config(overrides={"segment.backend": "sam2"}), "cpu")


def test_importing_the_backend_does_not_import_torch():
    code = ("import sys, cleanplate.segment.sam2, cleanplate.segment.amg, cleanplate.segment.select; "
            "print(sorted(m for m in ('torch', 'transformers', 'torchvision') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_rle_round_trip():
    rng = np.random.default_rng(0)
    masks = rng.random((5, 7, 9)) > 0.5
    masks[1] = True
    masks[2] = False
    rles = amg.rle_encode(torch.from_numpy(masks))
    for m, r in zip(masks, rles, strict=True):
        assert np.array_equal(r.decode(), m) and r.area == int(m.sum())
        assert np.array_equal(amg.rle_from_mask(m).counts, r.counts)


def test_mask_measures_match_the_reference_implementations():
    from transformers.models.sam2 import image_processing_sam2 as hf

    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 40, 50, generator=gen) * 3
    logits[0] = -5.0  # empty mask
    assert torch.allclose(amg.stability_score(logits, 0.0, 1.0)[1:],
                          hf._compute_stability_score(logits, 0.0, 1.0)[1:].float())
    assert amg.stability_score(logits, 0.0, 1.0)[0] == 0
    masks = logits > 2.0
    masks[1] = False
    masks[2, 5:9, 7:20] = True
    assert torch.equal(amg.masks_to_boxes(masks), hf._batched_mask_to_box(masks).float())
    boxes = torch.tensor([[0, 10, 50, 60], [30, 30, 50, 60], [30, 5, 99, 40], [30, 85, 40, 99]], dtype=torch.float)
    crop, frame_box = (100, 0, 200, 100), (0, 0, 300, 100)
    ours = amg.near_crop_edge(boxes, crop, frame_box)
    assert ours.tolist() == [True, False, True, False]  # left / right edges are inside the frame
    assert torch.equal(ours, hf._is_box_near_crop_edge(boxes, list(crop), list(frame_box)))
    assert not amg.near_crop_edge(boxes, (0, 0, 300, 100), frame_box).any()


class DiscPredictor:
    """A scripted stand-in for SAM2: the masks for a point are discs of radius 6, 12 and 24
    around it (logits = r - distance), so every step of the AMG has a known answer."""

    oom_errors = (torch.OutOfMemoryError,)

    def __init__(self) -> None:
        self.hw = (0, 0)
        self.embeddings = 0

    def set_image(self, image):
        self.hw = image.shape[:2]
        self.embeddings += 1

    def decode(self, points, boxes, multimask):
        h, w = self.hw
        yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float), torch.arange(w, dtype=torch.float), indexing="ij")
        pts = torch.from_numpy(points).float()
        dist = ((xx[None] - pts[:, 0, None, None]) ** 2 + (yy[None] - pts[:, 1, None, None]) ** 2).sqrt()
        logits = torch.stack([r - dist for r in (6.0, 12.0, 24.0)], dim=1)
        return logits, torch.tensor([[0.9, 0.8, 0.7]]).repeat(len(points), 1)

    def upsample(self, low, hw):
        assert tuple(low.shape[-2:]) == tuple(hw)
        return low

    def empty_cache(self):
        pass


def test_amg_logic_with_scripted_discs():
    cfg = load_config(overrides={"segment.sam2.points_per_side": 4, "segment.sam2.crop_n_layers": 1,
                                 "segment.sam2.crop_nms_thresh": 0.5, "segment.sam2.pred_iou_thresh": 0.0,
                                 "segment.sam2.stability_score_thresh": 0.0})
    pred = DiscPredictor()
    gen = amg.MaskGenerator(pred, cfg.segment.sam2)
    h, w = 240, 400
    cands, stats = gen.generate(np.zeros((h, w, 3), np.uint8))
    assert pred.embeddings == 5 and stats.oom_retries == 0
    full = (0, 0, w, h)
    sub = [k for k in range(len(cands)) if tuple(int(v) for v in cands.crops[k]) != full]
    assert sub and len(sub) < len(cands)
    for k in range(len(cands)):
        m = cands.rles[k].decode()
        ys, xs = np.nonzero(m)
        # masks and prompt points are both back in frame coordinates, and agree
        if xs.min() > 0 and ys.min() > 0 and xs.max() < w - 1 and ys.max() < h - 1:
            assert abs(xs.mean() - cands.points[k, 0]) < 1.5 and abs(ys.mean() - cands.points[k, 1]) < 1.5
        assert list(cands.boxes[k]) == [xs.min(), ys.min(), xs.max(), ys.max()]
        crop = tuple(int(v) for v in cands.crops[k])
        local = torch.from_numpy((cands.boxes[k] - np.array(crop[:2] * 2, np.float32))[None])
        assert not amg.near_crop_edge(local, crop, full).item(), "a disc cut by an inner crop edge survived"
    # the 16 small discs of the frame grid are all there (no overlap, no NMS loss) ...
    small = [k for k in range(len(cands)) if cands.rles[k].area < 150]
    grid = amg.point_grid(4) * [w, h]
    found = {tuple(np.round(cands.points[k], 2)) for k in small}
    assert {tuple(np.round(p, 2)) for p in grid} <= found
    # ... and overlapping masks of different crops are kept once (crop NMS), from the smaller crop:
    # the big disc at frame point (150, 90) loses to the one at (150.6, 100.6) of crop (0, 0, 241, 161)
    import torchvision

    iou = torchvision.ops.box_iou(torch.from_numpy(cands.boxes), torch.from_numpy(cands.boxes)).numpy()
    other_crop = (cands.crops[:, None, :] != cands.crops[None, :, :]).any(-1)
    assert (iou[other_crop] <= 0.5 + 1e-6).all()
    big_at = {tuple(np.round(cands.points[k])) for k in range(len(cands)) if cands.rles[k].area > 1000}
    assert (150.0, 90.0) not in big_at and (151.0, 101.0) in big_at
    # stability of a disc r - d (offset 1): pixels with d < r - 1 over pixels with d < r + 1 ~ 5^2 / 7^2
    assert all(0.42 < cands.stability[k] < 0.56 for k in small)
    # thresholds drop exactly what they should
    cfg2 = load_config(overrides={"segment.sam2.points_per_side": 4, "segment.sam2.pred_iou_thresh": 0.85,
                                  "segment.sam2.stability_score_thresh": 0.0})
    only_small, _ = amg.MaskGenerator(DiscPredictor(), cfg2.segment.sam2).generate(np.zeros((h, w, 3), np.uint8))
    assert len(only_small) == 16 and all(r.area < 150 for r in only_small.rles)
