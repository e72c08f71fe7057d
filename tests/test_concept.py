"""Concept models (issue 26, item 2): OWLv2 and Grounding DINO through the real transformers classes
with tiny random-weight models built from their configs and loaded through the backends' own loading
path; box -> mask by saliency on a real frame and by a tiny SAM2; the ``auto`` choice; the offline
messages; the oracle made from DAVIS truth masks.

Random weights give meaningless boxes, so thresholds are 0: the tests assert the plumbing (shapes,
labels drawn from the prompt, masks inside boxes, records).
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
from cleanplate.segment.concept import (  # noqa: E402
    ConceptDetection,
    DetectorConceptSource,
    SaliencyBoxMasker,
    Sam2BoxMasker,
    box_iou,
    choose_concept_model,
    concepts,
    create_concept_source,
    select_boxes,
)
from cleanplate.segment.concept_gdino import GroundingDinoDetector, concept_spans  # noqa: E402
from cleanplate.segment.concept_oracle import OracleConceptSource  # noqa: E402
from cleanplate.segment.concept_owlv2 import Owlv2Detector  # noqa: E402
from conftest import SHARED  # noqa: E402

TENNIS = SHARED / "data" / "davis_tennis"
WORDS = ["person", "character", "creature", "animal"]


@pytest.fixture(scope="module", autouse=True)
def _restore_torch_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def tiny_owlv2(folder: Path) -> Path:
    """A random-weight Owlv2ForObjectDetection (64x64 input, 16 patches) with a word-level tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        Owlv2Config,
        Owlv2ForObjectDetection,
        Owlv2ImageProcessor,
        Owlv2Processor,
        PreTrainedTokenizerFast,
    )

    words = ["<start>", "<end>", "<pad>", "<unk>", *WORDS, "."]
    config = Owlv2Config(
        text_config={"vocab_size": len(words), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "max_position_embeddings": 16, "bos_token_id": 0, "eos_token_id": 1,
                     "pad_token_id": 2},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": 64, "patch_size": 16},
        projection_dim=32)
    torch.manual_seed(0)
    Owlv2ForObjectDetection(config).save_pretrained(folder)
    tk = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<start>", eos_token="<end>",
                                        pad_token="<pad>", unk_token="<unk>")
    Owlv2Processor(image_processor=Owlv2ImageProcessor(size={"height": 64, "width": 64}),
                   tokenizer=tokenizer).save_pretrained(folder)
    return folder


def tiny_grounding_dino(folder: Path) -> Path:
    """A random-weight GroundingDinoForObjectDetection (tiny Swin + 1-layer BERT) with a BERT word-piece vocab."""
    from transformers import (
        BertConfig,
        BertTokenizer,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
        SwinConfig,
    )

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, "."]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    swin = SwinConfig(embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1], window_size=4, image_size=64,
                      out_indices=[2, 3, 4])
    text = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=64, max_position_embeddings=32)
    config = GroundingDinoConfig(
        backbone_config=swin.to_dict(), text_config=text.to_dict(), d_model=32, encoder_layers=1, decoder_layers=2,
        encoder_ffn_dim=32, decoder_ffn_dim=32, encoder_attention_heads=2, decoder_attention_heads=2, num_queries=10,
        max_text_len=32, encoder_n_points=1, decoder_n_points=1)
    torch.manual_seed(0)
    GroundingDinoForObjectDetection(config).save_pretrained(folder)
    GroundingDinoProcessor(image_processor=GroundingDinoImageProcessor(size={"shortest_edge": 64, "longest_edge": 96}),
                           tokenizer=BertTokenizer(str(folder / "vocab.txt"))).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def owlv2_ckpt(tmp_path_factory) -> Path:
    return tiny_owlv2(tmp_path_factory.mktemp("owlv2-tiny"))


@pytest.fixture(scope="module")
def gdino_ckpt(tmp_path_factory) -> Path:
    return tiny_grounding_dino(tmp_path_factory.mktemp("gdino-tiny"))


def tennis(n: int = 2, size: tuple[int, int] = (216, 120)) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The first ``n`` DAVIS tennis frames (HxWx3 uint8 RGB) scaled to ``size`` (W, H), with their truth masks."""
    frames, masks = [], []
    for p in sorted((TENNIS / "frames").iterdir())[:n]:
        image = cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
        mask = cv2.imread(str(TENNIS / "masks" / f"{p.stem}.png"), cv2.IMREAD_GRAYSCALE) > 127
        frames.append(cv2.resize(image, size, interpolation=cv2.INTER_AREA))
        masks.append(cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool))
    return frames, masks


def cfg(**over):
    base = {"segment.concept.score_threshold": 0.0, "segment.concept.box_masks": "saliency",
            "segment.concept.max_detections": 3, "run.threads": 1}
    base.update({k if k.startswith(("segment.", "run.")) else f"segment.concept.{k}": v for k, v in over.items()})
    return load_config(overrides=base)


def assert_detections(dets: list[list[ConceptDetection]], frames: list[np.ndarray], labels: list[str], name: str):
    assert len(dets) == len(frames)
    for frame, ds in zip(frames, dets, strict=True):
        h, w = frame.shape[:2]
        assert 1 <= len(ds) <= 3
        assert [d.score for d in ds] == sorted((d.score for d in ds), reverse=True)
        for d in ds:
            x0, y0, x1, y1 = d.box
            assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
            assert d.label in labels and 0 <= d.score <= 1 and d.source == name
            assert d.mask.shape == (h, w) and d.mask.dtype == bool and d.mask.any()
            assert d.mask_source in ("saliency", "box")
            ys, xs = np.nonzero(d.mask)  # the mask stays inside its box
            assert xs.min() >= np.floor(x0) and xs.max() < np.ceil(x1) and ys.min() >= np.floor(y0)
            rec = d.record()
            assert rec["label"] == d.label and rec["area"] == int(d.mask.sum()) and len(rec["box"]) == 4
        iou = box_iou(np.array([d.box for d in ds]), np.array([d.box for d in ds]))
        assert (iou[~np.eye(len(ds), dtype=bool)] <= 0.5).all()  # NMS


def test_owlv2_random_weights_boxes_labels_and_masks(owlv2_ckpt) -> None:
    config = cfg(model="owlv2", owlv2_checkpoint=str(owlv2_ckpt), prompt="animal. person.")
    choice = create_concept_source(config, "cpu")
    assert choice.name == "owlv2" and "named" in choice.why
    src = choice.source
    assert isinstance(src, DetectorConceptSource) and isinstance(src.detector, Owlv2Detector)
    assert src.concepts == ["animal", "person"] and src.masker.name == "saliency"
    frames, _ = tennis(2)
    assert_detections(src.detect(frames), frames, ["animal", "person"], "owlv2")
    used = src.weights_used()
    assert used[0].source == "checkpoint" and used[1].name == "u2netp"


def test_owlv2_label_is_the_query_the_processor_names(owlv2_ckpt) -> None:
    """The concept of each box is the text query transformers' own post-processing gives it."""
    det = Owlv2Detector(cfg(model="owlv2", owlv2_checkpoint=str(owlv2_ckpt), prompt="animal. person.",
                            max_detections=100, nms_iou=1.0), "cpu")
    frames, _ = tennis(1)
    ours = det.detect_boxes(frames)[0]
    inputs = det.processor(text=[["animal", "person"]], images=frames, return_tensors="pt")
    with torch.inference_mode():
        out = det.model(**inputs)
    ref = det.processor.post_process_grounded_object_detection(out, threshold=0.0, target_sizes=[frames[0].shape[:2]],
                                                               text_labels=[["animal", "person"]])[0]
    h, w = frames[0].shape[:2]
    named = {tuple(np.round(np.clip(b, 0, [w, h, w, h]), 2)): lab
             for b, lab in zip(ref["boxes"].numpy(), ref["text_labels"], strict=True)}
    assert ours and len({c for _, c, _ in ours}) >= 1
    for box, label, _ in ours:
        assert named[tuple(np.round(box, 2))] == label


def test_grounding_dino_random_weights_and_label_mapping(gdino_ckpt) -> None:
    config = cfg(model="grounding-dino", grounding_dino_checkpoint=str(gdino_ckpt), text_threshold=0.0)
    choice = create_concept_source(config, "cpu")
    assert choice.name == "grounding-dino"
    src = choice.source
    assert isinstance(src.detector, GroundingDinoDetector)
    assert src.detector.prompt == "person. character. creature. animal."
    frames, _ = tennis(2)
    assert_detections(src.detect(frames), frames, WORDS, "grounding-dino")
    # each box takes the concept whose tokens score highest: the same argmax computed here
    det = src.detector
    inputs = det.processor(images=frames[:1], text=[det.prompt], return_tensors="pt")
    with torch.inference_mode():
        probs = det.model(**inputs).logits.sigmoid()[0].numpy()
    ids = inputs["input_ids"][0].tolist()
    spans = concept_spans(ids, det.concept_ids)
    assert all(len(s) == 1 for s in spans) and [ids[s[0]] for s in spans] == [i[0] for i in det.concept_ids]
    best = {round(float(max(probs[q, s[0]] for s in spans)), 5): WORDS[int(np.argmax([probs[q, s[0]] for s in spans]))]
            for q in range(probs.shape[0])}
    for _box, label, score in det.detect_boxes(frames[:1])[0]:
        assert best[round(score, 5)] == label


def test_concept_spans_find_each_concept_in_order() -> None:
    ids = [101, 5, 9, 6, 7, 9, 8, 9, 102]  # [CLS] person . char acter . animal . [SEP]
    assert concept_spans(ids, [[5], [6, 7], [8], [42]]) == [[1], [3, 4], [6], []]


def test_select_boxes_clips_drops_empty_and_suppresses() -> None:
    boxes = [((-5.0, -5.0, 50.0, 50.0), "person", 0.9), ((0.0, 0.0, 48.0, 52.0), "character", 0.8),
             ((60.0, 10.0, 60.5, 20.0), "animal", 0.7), ((70.0, 10.0, 90.0, 30.0), "animal", 0.6)]
    kept = select_boxes(boxes, (40, 80), nms_iou=0.5, max_detections=5)
    assert kept == [((0.0, 0.0, 50.0, 40.0), "person", 0.9), ((70.0, 10.0, 80.0, 30.0), "animal", 0.6)]
    assert len(select_boxes(boxes, (40, 80), 0.5, 1)) == 1


def test_saliency_box_mask_on_a_real_frame() -> None:
    """The tennis player's truth box becomes a mask close to the truth: the saliency inside the box."""
    from cleanplate.report.bench_data import strip_shadow_band

    frames, truths = tennis(3, size=(432, 240))
    masker = SaliencyBoxMasker(cfg(), "cpu")
    for frame, with_shadow in zip(frames, truths, strict=True):
        truth = strip_shadow_band(with_shadow)  # the player (DAVIS tennis masks hold his shadow too)
        ys, xs = np.nonzero(truth)
        box = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], float)
        (mask,) = masker.masks(frame, box)
        assert masker.last_sources == ["saliency"]
        iou = (mask & truth).sum() / (mask | truth).sum()
        assert iou >= 0.55 and (mask & truth).sum() >= 0.9 * mask.sum(), iou
        assert not mask[:, : xs.min()].any() and not mask[: ys.min()].any()
    assert masker.masks(frames[0], np.zeros((0, 4))) == []


def test_sam2_box_masker_with_a_tiny_sam2(tmp_path: Path) -> None:
    from transformers import Sam2Config, Sam2ImageProcessor, Sam2Model
    from transformers.models.sam2.configuration_sam2 import Sam2MaskDecoderConfig, Sam2PromptEncoderConfig

    from conftest import tiny_sam2_vision

    side = 128
    torch.manual_seed(0)
    Sam2Model(Sam2Config(vision_config=tiny_sam2_vision(side, 32),
                         prompt_encoder_config=Sam2PromptEncoderConfig(hidden_size=32, image_size=side, patch_size=16,
                                                                       mask_input_channels=8),
                         mask_decoder_config=Sam2MaskDecoderConfig(hidden_size=32, mlp_dim=64, num_attention_heads=4,
                                                                   iou_head_hidden_dim=32))).save_pretrained(tmp_path)
    Sam2ImageProcessor(size={"height": side, "width": side}).save_pretrained(tmp_path)
    config = cfg(box_masks="sam2", **{"segment.sam2.checkpoint": str(tmp_path), "segment.sam2.mask_threshold": -1e9})
    masker = Sam2BoxMasker(config, "cpu")
    frames, _ = tennis(1)
    masks = masker.masks(frames[0], np.array([[10, 10, 60, 80], [100, 20, 200, 100]], float))
    assert len(masks) == 2 and all(m.shape == frames[0].shape[:2] and m.dtype == bool and m.all() for m in masks)
    assert masker.last_sources == ["sam2", "sam2"]


def _fake(folder: Path, name: str) -> None:
    (folder / name).mkdir(parents=True)
    (folder / name / "config.json").write_text("{}")


def test_auto_picks_the_best_concept_model_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEANPLATE_WEIGHTS", str(tmp_path))
    config = load_config()
    assert config.segment.concept.model == "auto"
    assert concepts(config.segment.concept.prompt) == WORDS
    assert choose_concept_model(config) is None
    choice = create_concept_source(config, "cpu")
    assert choice.name is None and choice.source is None and "no concept model weights" in choice.why
    _fake(tmp_path, "owlv2-base-ensemble")
    assert choose_concept_model(config) == "owlv2"
    _fake(tmp_path, "grounding-dino-tiny")
    assert choose_concept_model(config) == "grounding-dino"
    _fake(tmp_path, "sam3")
    assert choose_concept_model(config) == "sam3"
    assert choose_concept_model(load_config(overrides={"segment.concept.model": "none"})) is None
    assert choose_concept_model(load_config(overrides={"segment.concept.model": "owlv2"})) == "owlv2"
    # auto never fails a run: a folder that does not load leaves the offline decision, with the reason
    choice = create_concept_source(config, "cpu")
    assert choice.name is None and choice.why.startswith("auto: sam3 not usable")


def test_auto_loads_what_is_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, owlv2_ckpt: Path) -> None:
    (tmp_path / "owlv2-base-ensemble").symlink_to(owlv2_ckpt)
    monkeypatch.setenv("CLEANPLATE_WEIGHTS", str(tmp_path))
    choice = create_concept_source(cfg(), "cpu")
    assert choice.name == "owlv2" and choice.why == "owlv2 (auto: weights on disk)"
    assert choice.source.weights_used()[0].source == "env"


@pytest.mark.parametrize("model,name", [("owlv2", "owlv2-base-ensemble"),
                                        ("grounding-dino", "grounding-dino-tiny")])
def test_missing_weights_name_the_download_command(model: str, name: str) -> None:
    with pytest.raises(WeightsError) as err:
        create_concept_source(load_config(overrides={"segment.concept.model": model}), "cpu")
    msg = str(err.value)
    assert "\n" not in msg and f"cleanplate weights download {name}" in msg


def test_cli_exits_5_with_the_download_line(tmp_path: Path, sintel_dir) -> None:
    from typer.testing import CliRunner

    from cleanplate._cli.main import app

    frames = sintel_dir(1)
    res = CliRunner().invoke(app, ["run", str(frames), "-o", str(tmp_path / "out"), "--set",
                                   "segment.concept.model=grounding-dino"], env={"COLUMNS": "300"})
    assert res.exit_code == 5, res.output
    assert "cleanplate weights download grounding-dino-tiny" in " ".join(res.output.split())
    res = CliRunner().invoke(app, ["weights", "download", "owlv2-base-ensemble"], env={"COLUMNS": "300"})
    assert res.exit_code == 5 and "cleanplate weights download owlv2-base-ensemble" in " ".join(
        res.output.split())


def test_oracle_names_exactly_the_truth_objects(sintel_frames) -> None:
    oracle = OracleConceptSource.from_davis(TENNIS, start=2, count=4, size=(216, 120))
    frames, truths = tennis(6)
    dets = oracle.detect(frames[2:6])
    for ds, truth in zip(dets, truths[2:6], strict=True):
        assert len(ds) == 1
        d = ds[0]
        assert d.label == "person" and d.score == 1.0 and d.source == "oracle" and d.mask_source == "truth"
        assert (d.mask == truth).all()
    # a frame the pipeline scaled is still recognised; its mask is scaled with it
    big = cv2.resize(frames[3], (432, 240), interpolation=cv2.INTER_LINEAR)
    (d,) = oracle.detect([big])[0]
    assert d.mask.shape == (240, 432) and abs(int(d.mask.sum()) - 4 * int(truths[3].sum())) < 0.2 * 4 * truths[3].sum()
    # an unknown frame, and a frame with nobody in it, get no detection
    sintel = cv2.resize(cv2.imread(str(sintel_frames[0])), (216, 120))
    assert oracle.detect([sintel]) == [[]]
    empty = OracleConceptSource([frames[0]], [[np.zeros(frames[0].shape[:2], bool)]])
    assert empty.detect([frames[0]]) == [[]] and empty.weights_used() == []
