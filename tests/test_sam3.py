"""Shot-level model backends on the real architectures with random weights: ``sam3``
(transformers' Sam3VideoModel, with a word-level tokenizer made here in place of SAM 3's CLIP
tokenizer) and ``sam2-video`` (Sam2VideoModel) — and their offline messages.

Random weights give meaningless masks, so the mask threshold is set so low that every pixel is
in: the tests assert the plumbing (seeding, propagation both ways, track ids, records).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from cleanplate.config import load_config  # noqa: E402
from cleanplate.errors import WeightsError  # noqa: E402
from cleanplate.records import Instance, SegmentResult, bbox_xywh  # noqa: E402
from cleanplate.segment import create_shot_segmenter  # noqa: E402
from cleanplate.segment.sam2_video import Sam2VideoShotSegmenter, key_frame  # noqa: E402
from cleanplate.segment.sam3 import Sam3ShotSegmenter, concepts  # noqa: E402
from conftest import SINTEL, tiny_sam2_vision  # noqa: E402

SIDE = 256


def tiny_sam2_video(folder: Path) -> Path:
    from transformers import (
        Sam2ImageProcessor,
        Sam2VideoConfig,
        Sam2VideoModel,
        Sam2VideoProcessor,
        Sam2VideoVideoProcessor,
    )
    s, hidden = SIDE, 128  # the memory path needs hidden > its fixed 64-channel memory
    vision = tiny_sam2_vision(s, hidden)
    config = Sam2VideoConfig(
        vision_config=vision.to_dict(),
        prompt_encoder_config={"hidden_size": hidden, "image_size": s, "patch_size": 16, "mask_input_channels": 8},
        mask_decoder_config={"hidden_size": hidden, "mlp_dim": 64, "num_attention_heads": 4, "iou_head_hidden_dim": 32},
        image_size=s, memory_attention_hidden_size=hidden, memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=64, memory_attention_rope_feat_sizes=[s // 16, s // 16],
        memory_encoder_hidden_size=hidden, memory_encoder_output_channels=64, mask_downsampler_embed_dim=hidden,
        memory_fuser_embed_dim=hidden, memory_fuser_intermediate_dim=64, num_maskmem=3)
    torch.manual_seed(0)
    Sam2VideoModel(config).save_pretrained(folder)
    Sam2VideoProcessor(image_processor=Sam2ImageProcessor(size={"height": s, "width": s}),
                       video_processor=Sam2VideoVideoProcessor(size={"height": s, "width": s})).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def sam2_video_ckpt(tmp_path_factory) -> Path:
    return tiny_sam2_video(tmp_path_factory.mktemp("sam2-video-tiny"))


@pytest.fixture(scope="module", autouse=True)
def _restore_torch_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def _shot(n: int = 4) -> tuple[list[np.ndarray], list[SegmentResult]]:
    frame = cv2.cvtColor(cv2.imread(str(SINTEL / "frame_0016.png")), cv2.COLOR_BGR2RGB)
    frame = cv2.resize(frame, (160, 68), interpolation=cv2.INTER_AREA)
    images = [np.roll(frame, 2 * t, axis=1) for t in range(n)]
    results = []
    for t in range(n):
        insts = []
        if t >= 1:  # nothing in frame 0: the key frame is 1, propagation must also run backwards
            m = np.zeros(frame.shape[:2], bool)
            m[10:50, 20 + 2 * t:60 + 2 * t] = True
            insts.append(Instance(m, bbox_xywh(m), int(m.sum()), 0.9, character=True, reason="salient component"))
        results.append(SegmentResult(insts))
    return images, results


def test_sam2_video_random_weights_tracks_the_seed_both_ways(sam2_video_ckpt) -> None:
    cfg = load_config(overrides={"segment.shot.method": "sam2-video",
                                 "segment.sam2_video.checkpoint": str(sam2_video_ckpt),
                                 "segment.sam2_video.mask_threshold": -1e9})
    seg = create_shot_segmenter(cfg, "cpu")
    assert isinstance(seg, Sam2VideoShotSegmenter)
    images, results = _shot()
    assert key_frame(results) == 1
    out = seg.segment_shot(images, results)
    assert len(out) == len(images)
    for t, r in enumerate(out):
        tracked = [i for i in r.instances if i.track_id is not None]
        assert len(tracked) == 1, t  # frame 0 too: propagated backwards from the key frame
        inst = tracked[0]
        assert inst.character and inst.mask.shape == images[t].shape[:2] and inst.mask.all()
        assert inst.track_id == 0 and "seeded by a box at frame 1" in inst.reason
        assert r.extra["shot_method"] == "sam2-video" and r.extra["shot_key_frame"] == 1
        assert inst.record()["track_id"] == 0
    used = seg.weights_used()
    assert used and used[0].source == "checkpoint"


def test_sam2_video_offline_without_weights_one_message() -> None:
    cfg = load_config(overrides={"segment.shot.method": "sam2-video"})
    with pytest.raises(WeightsError) as err:
        create_shot_segmenter(cfg, "cpu")
    msg = str(err.value)
    assert "\n" not in msg and "sam2.1-hiera-tiny" in msg and "cleanplate weights download" in msg


def test_sam2_video_rejects_a_folder_without_config(tmp_path: Path) -> None:
    cfg = load_config(overrides={"segment.shot.method": "sam2-video", "segment.sam2_video.checkpoint": str(tmp_path)})
    with pytest.raises(WeightsError, match="no config.json"):
        create_shot_segmenter(cfg, "cpu")


def tiny_sam3(folder: Path) -> Path:
    """A random-weight Sam3VideoModel (detector + tracker) with thresholds at 0, so it keeps objects."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        CLIPTextConfig,
        PreTrainedTokenizerFast,
        Sam2VideoVideoProcessor,
        Sam3Config,
        Sam3ImageProcessor,
        Sam3TrackerVideoConfig,
        Sam3VideoConfig,
        Sam3VideoModel,
        Sam3VideoProcessor,
    )
    from transformers.models.sam3.configuration_sam3 import Sam3VisionConfig, Sam3ViTConfig

    s, patch, hidden = 112, 14, 128
    g = s // patch
    vit = Sam3ViTConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                        image_size=s, patch_size=patch, window_size=4, global_attn_indexes=[1], pretrain_image_size=s)
    vision = Sam3VisionConfig(backbone_config=vit.to_dict(), fpn_hidden_size=hidden,
                              backbone_feature_sizes=[[4 * g] * 2, [2 * g] * 2, [g] * 2])
    words = ["<start>", "<end>", "<pad>", "<unk>", "person", "character", "creature", "animal", "."]
    text = CLIPTextConfig(vocab_size=len(words), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                          num_attention_heads=2, max_position_embeddings=32, projection_dim=32,
                          bos_token_id=0, eos_token_id=1, pad_token_id=2)
    small = {"hidden_size": hidden, "num_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}
    detector = Sam3Config(vision_config=vision.to_dict(), text_config=text.to_dict(), geometry_encoder_config=small,
                          detr_encoder_config=small, detr_decoder_config={**small, "num_queries": 8},
                          mask_decoder_config={"hidden_size": hidden, "num_attention_heads": 2})
    tracker = Sam3TrackerVideoConfig(
        vision_config=vision.to_dict(),
        prompt_encoder_config={"hidden_size": hidden, "image_size": s, "patch_size": patch, "mask_input_channels": 8},
        mask_decoder_config={"hidden_size": hidden, "mlp_dim": 64, "num_attention_heads": 4, "iou_head_hidden_dim": 32},
        image_size=s, memory_attention_hidden_size=hidden, memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=64, memory_attention_rope_feat_sizes=[g, g],
        memory_encoder_hidden_size=hidden, memory_encoder_output_channels=64, mask_downsampler_embed_dim=hidden,
        memory_fuser_embed_dim=hidden, memory_fuser_intermediate_dim=64, num_maskmem=3)
    config = Sam3VideoConfig(detector_config=detector.to_dict(), tracker_config=tracker.to_dict(),
                             low_res_mask_size=4 * g, score_threshold_detection=0.0, new_det_thresh=0.0,
                             det_nms_thresh=1.0)
    torch.manual_seed(0)
    Sam3VideoModel(config).save_pretrained(folder)
    tk = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<start>", eos_token="<end>",
                                        pad_token="<pad>", unk_token="<unk>")
    Sam3VideoProcessor(image_processor=Sam3ImageProcessor(size={"height": s, "width": s}),
                       video_processor=Sam2VideoVideoProcessor(size={"height": s, "width": s}),
                       tokenizer=tokenizer).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def sam3_ckpt(tmp_path_factory) -> Path:
    pytest.importorskip("torchvision")
    return tiny_sam3(tmp_path_factory.mktemp("sam3-tiny"))


def test_concepts_of_a_prompt() -> None:
    assert concepts("person. character. creature. animal.") == ["person", "character", "creature", "animal"]
    assert concepts(load_config().segment.sam3.prompt) == ["person", "character", "creature", "animal"]


def test_sam3_random_weights_tracks_text_concepts(sam3_ckpt) -> None:
    cfg = load_config(overrides={"segment.shot.method": "sam3", "segment.sam3.checkpoint": str(sam3_ckpt),
                                 "segment.sam3.score_threshold": 0.0, "segment.sam3.prompt": "person. animal."})
    seg = create_shot_segmenter(cfg, "cpu")
    assert isinstance(seg, Sam3ShotSegmenter) and seg.concepts == ["person", "animal"]
    images, results = _shot(3)
    out = seg.segment_shot(images, results)
    assert len(out) == 3
    ids_by_frame = []
    for t, r in enumerate(out):
        objs = [i for i in r.instances if i.track_id is not None]
        assert objs, t
        for inst in objs:
            assert inst.character and inst.mask.shape == images[t].shape[:2] and inst.mask.dtype == bool
            assert inst.reason.startswith(("sam3: 'person'", "sam3: 'animal'"))
            assert inst.area == int(inst.mask.sum()) > 0 and inst.bbox == bbox_xywh(inst.mask)
        assert r.extra["shot_method"] == "sam3" and r.extra["shot_objects"] >= len(objs)
        ids_by_frame.append({i.track_id for i in objs})
    assert ids_by_frame[0] <= ids_by_frame[1]  # objects found in frame 0 are tracked into frame 1
    assert seg.weights_used()[0].source == "checkpoint"


def test_sam3_offline_without_weights_says_how_to_get_access() -> None:
    cfg = load_config(overrides={"segment.shot.method": "sam3"})
    with pytest.raises(WeightsError) as err:
        create_shot_segmenter(cfg, "cpu")
    msg = str(err.value)
    assert "\n" not in msg and "gated" in msg and "https://huggingface.co/facebook/sam3" in msg
    assert "hf auth login" in msg and "cleanplate weights download sam3" in msg


def test_auto_uses_sam3_when_present_else_tracks(sam3_ckpt) -> None:
    from cleanplate.segment.sam3 import AutoShotSegmenter
    from cleanplate.segment.shot import TrackShotSegmenter

    seg = create_shot_segmenter(load_config(overrides={"segment.shot.method": "auto"}), "cpu")
    assert isinstance(seg, AutoShotSegmenter) and isinstance(seg.inner, TrackShotSegmenter)
    images, results = _shot(3)
    out = seg.segment_shot(images, results)
    assert all(r.extra["shot_method"] == "tracks" and "sam3 not available" in r.extra["shot_auto"] for r in out)
    seg = create_shot_segmenter(load_config(overrides={"segment.shot.method": "auto",
                                                       "segment.sam3.checkpoint": str(sam3_ckpt)}), "cpu")
    assert seg.chosen == "sam3"
    assert load_config(profile="luca").segment.shot.method == "auto"
