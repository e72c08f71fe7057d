"""Concept sources: models that *name* characters ("person", "creature", ...) in frames.

A concept source answers, for each frame, which regions are instances of the prompt's concepts
(``segment.concept.prompt``, one concept per sentence). It is evidence for the character decision:
a region a concept model names is a character, still or not (docs/DESIGN.md).

Open-vocabulary detectors (OWLv2, Grounding DINO; :mod:`cleanplate.segment.concept_owlv2`,
:mod:`cleanplate.segment.concept_gdino`) give boxes; a :class:`BoxMasker` turns each box into a mask,
by a SAM2 box prompt when SAM2 weights are on disk, else by the saliency inside the box (the
Grounded-SAM-2 recipe, with an offline fallback). :class:`~cleanplate.segment.concept_oracle.OracleConceptSource`
names the true objects of footage with truth masks, for tests and benchmarks.

:func:`choose_concept_model` says which model ``segment.concept.model`` means (``auto``: the best one
whose weights are on disk, never downloading); :func:`create_concept_source` builds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np

from cleanplate.config import Config
from cleanplate.errors import BackendUnavailableError, WeightsError
from cleanplate.masks import components
from cleanplate.registry import Registry
from cleanplate.weights import CONCEPT_WEIGHTS, WeightsUse, resolve

AUTO_ORDER = ("sam3", "grounding-dino", "owlv2")
"""``segment.concept.model: auto`` takes the first of these whose weights are on disk."""

WEIGHTS = CONCEPT_WEIGHTS
"""Concept model -> weights registry name."""

DEFAULT_THRESHOLDS = {"owlv2": 0.2, "grounding-dino": 0.35, "sam3": 0.5}


def concepts(prompt: str) -> list[str]:
    """The text concepts of a prompt: ``"person. animal."`` -> ``["person", "animal"]``."""
    return [c.strip() for c in prompt.split(".") if c.strip()]


@dataclass
class ConceptDetection:
    """One instance of a concept in one frame.

    ``box``: XYXY in pixels of the frame (floats, inside it); ``label``: the prompt concept that
    named it; ``score``: the model's confidence in [0, 1]; ``mask``: HxW bool, the instance's pixels;
    ``source``: the concept model (owlv2, grounding-dino, sam3, oracle); ``mask_source``: how the
    mask was made (sam2, saliency, box, truth, sam3).
    """

    box: tuple[float, float, float, float]
    label: str
    score: float
    mask: np.ndarray
    source: str
    mask_source: str

    def record(self) -> dict[str, Any]:
        """JSON-ready summary (no mask)."""
        return {"box": [round(float(v), 1) for v in self.box], "label": self.label, "score": round(self.score, 4),
                "area": int(self.mask.sum()), "source": self.source, "mask_source": self.mask_source}


class ConceptSource(Protocol):
    """Names the prompt's concepts in frames."""

    name: str
    concepts: list[str]

    def detect(self, images: list[np.ndarray]) -> list[list[ConceptDetection]]:
        """``images``: HxWx3 uint8 RGB frames (sizes may differ). One list of detections per frame, in
        order, best score first; a frame where no concept is found gets []."""
        ...

    def weights_used(self) -> list[WeightsUse]: ...


Box = tuple[tuple[float, float, float, float], str, float]
"""(XYXY box in pixels, concept, score)."""


class BoxDetector(Protocol):
    """An open-vocabulary detector: boxes of text concepts."""

    name: str

    def detect_boxes(self, images: list[np.ndarray]) -> list[list[Box]]:
        """Boxes of ``images`` (HxWx3 uint8 RGB), per frame, best first, after NMS and the threshold."""
        ...

    def weights_used(self) -> list[WeightsUse]: ...


class BoxMasker(Protocol):
    """Turns boxes into masks."""

    name: str

    def masks(self, image: np.ndarray, boxes: np.ndarray) -> list[np.ndarray]:
        """``image`` HxWx3 uint8 RGB, ``boxes`` (N, 4) float XYXY pixels -> N HxW bool masks."""
        ...

    def weights_used(self) -> list[WeightsUse]: ...


# --- boxes -------------------------------------------------------------------------------------

def clip_box(box: Any, hw: tuple[int, int]) -> tuple[float, float, float, float]:
    """An XYXY box clipped to an image of size ``hw`` (H, W)."""
    h, w = hw
    x0, y0, x1, y1 = (float(v) for v in box)
    return (min(max(x0, 0.0), w), min(max(y0, 0.0), h), min(max(x1, 0.0), w), min(max(y1, 0.0), h))


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of XYXY boxes ``a`` (N, 4) against ``b`` (M, 4): (N, M) float."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda z: np.clip(z[:, 2] - z[:, 0], 0, None) * np.clip(z[:, 3] - z[:, 1], 0, None)  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def select_boxes(boxes: list[Box], hw: tuple[int, int], nms_iou: float, max_detections: int) -> list[Box]:
    """Clip to the frame, drop empty boxes, class-agnostic NMS (best score first), keep at most ``max_detections``."""
    clipped = [(clip_box(b, hw), c, float(s)) for b, c, s in boxes]
    clipped = [d for d in clipped if d[0][2] - d[0][0] >= 1 and d[0][3] - d[0][1] >= 1]
    clipped.sort(key=lambda d: -d[2])
    kept: list[Box] = []
    for d in clipped:
        if len(kept) >= max_detections:
            break
        if kept and box_iou(np.array([d[0]]), np.array([k[0] for k in kept])).max() > nms_iou:
            continue
        kept.append(d)
    return kept


# --- box -> mask --------------------------------------------------------------------------------

def _box_region(box: Any, hw: tuple[int, int]) -> np.ndarray:
    h, w = hw
    x0, y0, x1, y1 = clip_box(box, hw)
    m = np.zeros((h, w), bool)
    m[int(np.floor(y0)):int(np.ceil(y1)), int(np.floor(x0)):int(np.ceil(x1))] = True
    return m


class SaliencyBoxMasker:
    """A box's mask from the saliency model run on a crop around it (``segment.concept.box_margin`` of
    context), thresholded as the saliency segmenter does and kept inside the box: its largest component
    and those at least a quarter its size. A box with no salient pixel becomes its own rectangle
    (``last_sources`` says ``box`` for it)."""

    name = "saliency"

    def __init__(self, config: Config, device: str) -> None:
        from cleanplate.segment.saliency import SaliencyPredictor

        sc = config.segment.saliency
        self.threshold, self.low = sc.threshold, min(sc.low_threshold, sc.threshold)
        self.margin = config.segment.concept.box_margin
        self.predictor = SaliencyPredictor.for_config(config, device)
        self.last_sources: list[str] = []

    def masks(self, image: np.ndarray, boxes: np.ndarray) -> list[np.ndarray]:
        """``image`` HxWx3 uint8 RGB, ``boxes`` (N, 4) XYXY pixels -> N HxW bool masks."""
        from cleanplate.segment.saliency import hysteresis

        hw = (int(image.shape[0]), int(image.shape[1]))
        out, self.last_sources = [], []
        for box in np.asarray(boxes, np.float64).reshape(-1, 4):
            x0, y0, x1, y1 = clip_box(box, hw)
            pad = self.margin * max(x1 - x0, y1 - y0, 1.0)
            cx0, cy0 = int(max(0, np.floor(x0 - pad))), int(max(0, np.floor(y0 - pad)))
            cx1, cy1 = int(min(hw[1], np.ceil(x1 + pad))), int(min(hw[0], np.ceil(y1 + pad)))
            region = _box_region(box, hw)
            mask = np.zeros(hw, bool)
            if cx1 - cx0 >= 2 and cy1 - cy0 >= 2:
                sal = self.predictor.predict(np.ascontiguousarray(image[cy0:cy1, cx0:cx1]))
                mask[cy0:cy1, cx0:cx1] = hysteresis(sal, self.threshold, self.low)
            mask &= region
            parts = sorted(components(mask, 0), key=lambda c: -int(c.sum()))
            if parts:
                keep = [c for c in parts if c.sum() >= 0.25 * parts[0].sum()]
                out.append(np.logical_or.reduce(keep))
                self.last_sources.append("saliency")
            else:
                out.append(region)
                self.last_sources.append("box")
        return out

    def weights_used(self) -> list[WeightsUse]:
        return [self.predictor.weights]


class Sam2BoxMasker:
    """A box's mask from SAM2 (``segment.sam2.model_type``) prompted with the box: one decoder pass
    for all boxes of a frame, single-mask output, logits above ``segment.sam2.mask_threshold``."""

    name = "sam2"

    def __init__(self, config: Config, device: str) -> None:
        from cleanplate.segment.sam2 import Sam2Predictor, load_sam2, weights_name

        sc = config.segment.sam2
        self.weights = resolve(weights_name(sc.model_type), sc.checkpoint, download=False)
        model, processor = load_sam2(self.weights.path, device)
        self.predictor = Sam2Predictor(model, processor, device, config.run.precision)
        self.threshold = sc.mask_threshold
        self.last_sources: list[str] = []

    def masks(self, image: np.ndarray, boxes: np.ndarray) -> list[np.ndarray]:
        """``image`` HxWx3 uint8 RGB, ``boxes`` (N, 4) XYXY pixels -> N HxW bool masks."""
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        self.last_sources = ["sam2"] * len(boxes)
        if not len(boxes):
            return []
        hw = (int(image.shape[0]), int(image.shape[1]))
        self.predictor.set_image(image)
        low, _iou = self.predictor.decode(None, boxes, multimask=False)
        logits = self.predictor.upsample(low, hw)  # (N, 1, H, W)
        return [m for m in (logits[:, 0] > self.threshold).cpu().numpy().astype(bool)]

    def weights_used(self) -> list[WeightsUse]:
        return [self.weights]


def sam2_weights_present(config: Config) -> bool:
    """SAM2 weights of ``segment.sam2.model_type`` are on disk (nothing is downloaded)."""
    from cleanplate.segment.sam2 import weights_name

    try:
        resolve(weights_name(config.segment.sam2.model_type), config.segment.sam2.checkpoint, download=False)
    except WeightsError:
        return False
    return True


def create_box_masker(config: Config, device: str) -> BoxMasker:
    """``segment.concept.box_masks``: sam2, saliency, or auto (sam2 when its weights are on disk and
    torch/transformers load it, else saliency)."""
    how = config.segment.concept.box_masks
    if how == "sam2":
        return Sam2BoxMasker(config, device)
    if how == "auto" and sam2_weights_present(config):
        try:
            return Sam2BoxMasker(config, device)
        except (WeightsError, BackendUnavailableError):
            pass
    return SaliencyBoxMasker(config, device)


class DetectorConceptSource:
    """A :class:`BoxDetector` plus a :class:`BoxMasker`: the concept source of an open-vocabulary detector."""

    def __init__(self, detector: BoxDetector, masker: BoxMasker, concepts: list[str]) -> None:
        self.detector, self.masker, self.concepts = detector, masker, concepts
        self.name = detector.name

    def detect(self, images: list[np.ndarray]) -> list[list[ConceptDetection]]:
        """One list of detections per HxWx3 uint8 RGB frame, best score first."""
        out = []
        for image, boxes in zip(images, self.detector.detect_boxes(images), strict=True):
            arr = np.array([b for b, _, _ in boxes], np.float64).reshape(-1, 4)
            masks = self.masker.masks(image, arr)
            how = getattr(self.masker, "last_sources", None) or [self.masker.name] * len(boxes)
            out.append([ConceptDetection(b, c, s, m, self.name, src)
                        for (b, c, s), m, src in zip(boxes, masks, how, strict=True)])
        return out

    def weights_used(self) -> list[WeightsUse]:
        return self.detector.weights_used() + self.masker.weights_used()


# --- choice -------------------------------------------------------------------------------------

CONCEPT_DETECTORS: Registry[Any] = Registry("concept model")
"""Concept model name -> class built as ``cls(config, device)`` with ``detect_boxes`` (a :class:`BoxDetector`)."""


def _checkpoint(config: Config, name: str) -> str | None:
    cc = config.segment.concept
    return {"owlv2": cc.owlv2_checkpoint, "grounding-dino": cc.grounding_dino_checkpoint,
            "sam3": config.segment.sam3.checkpoint}.get(name)


def weights_present(config: Config, name: str) -> bool:
    """The weights of concept model ``name`` are on disk (explicit checkpoint, look-up folders or the
    Hugging Face cache); never downloads."""
    try:
        resolve(WEIGHTS[name], _checkpoint(config, name), download=False)
    except WeightsError:
        return False
    return True


def choose_concept_model(config: Config) -> str | None:
    """The concept model ``segment.concept.model`` means: itself when named, None for ``none``; for
    ``auto`` the first of :data:`AUTO_ORDER` whose weights are on disk, None when none is."""
    import cleanplate.segment  # noqa: F401  (registers the built-in concept models)

    model = config.segment.concept.model
    if model == "none":
        return None
    if model != "auto":
        return model
    return next((name for name in AUTO_ORDER if weights_present(config, name)), None)


@dataclass
class ConceptChoice:
    """Which concept model a run uses (``name``, None: none) and why; record ``name`` per frame."""

    name: str | None
    source: ConceptSource | None
    why: str


def create_concept_source(config: Config, device: str) -> ConceptChoice:
    """Build the concept source of ``config`` (see :func:`choose_concept_model`).

    A model named explicitly whose weights are missing raises :class:`WeightsError` with the
    ``cleanplate weights download`` line (exit 5 from the CLI). ``auto`` never downloads: with no
    concept weights on disk, or when the chosen one cannot load (torch missing), it returns
    ``ConceptChoice(None, None, why)`` and the caller decides without a concept model.
    """
    name = choose_concept_model(config)
    if name is None:
        why = ("segment.concept.model: none" if config.segment.concept.model == "none"
               else "auto: no concept model weights on disk (" + ", ".join(WEIGHTS[n] for n in AUTO_ORDER) + ")")
        return ConceptChoice(None, None, why)
    try:
        source = build_concept_source(config, device, name)
    except (WeightsError, BackendUnavailableError) as exc:
        if config.segment.concept.model != "auto":
            raise
        return ConceptChoice(None, None, f"auto: {name} not usable ({str(exc)[:160]})")
    how = "named in segment.concept.model" if config.segment.concept.model != "auto" else "auto: weights on disk"
    return ConceptChoice(name, source, f"{name} ({how})")


def build_concept_source(config: Config, device: str, name: str) -> ConceptSource:
    """The concept source of model ``name`` (a detector + :func:`create_box_masker`, or SAM 3)."""
    import cleanplate.segment  # noqa: F401  (registers the built-in concept models)

    cc = config.segment.concept
    words = concepts(cc.prompt)
    if not words:
        from cleanplate.errors import ConfigError

        raise ConfigError("segment.concept.prompt holds no concept")
    detector = CONCEPT_DETECTORS.get(name)(config, device)
    if hasattr(detector, "detect"):  # a model that makes its own masks (sam3)
        return detector  # type: ignore[no-any-return]
    return DetectorConceptSource(detector, create_box_masker(config, device), words)


def threshold(config: Config, name: str) -> float:
    """``segment.concept.score_threshold``, or the model's default."""
    t = config.segment.concept.score_threshold
    return DEFAULT_THRESHOLDS.get(name, 0.3) if t is None else float(t)


@dataclass(frozen=True)
class ModelSettings:
    """What every concept model reads of ``segment.concept``: its concepts, score threshold and box selection."""

    concepts: list[str]
    threshold: float
    nms_iou: float
    max_detections: int


def model_settings(config: Config, name: str) -> ModelSettings:
    cc = config.segment.concept
    return ModelSettings(concepts(cc.prompt), threshold(config, name), cc.nms_iou, cc.max_detections)


def resized_mask(mask: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """HxW bool ``mask`` scaled (nearest) to ``hw``."""
    if mask.shape == hw:
        return mask
    return cv2.resize(mask.astype(np.uint8), (hw[1], hw[0]), interpolation=cv2.INTER_NEAREST).astype(bool)
