"""Saliency segmenter: U²-Net-family ONNX models run with onnxruntime.

The saliency map (where the eye goes: the characters, on film frames) is thresholded and its
connected components become character instances. :class:`SaliencyPredictor` is also used by
SAM2 selection (``select: salient``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np

from cleanplate.config import Config
from cleanplate.devices import onnx_session
from cleanplate.masks import components
from cleanplate.records import Instance, SegmentResult, bbox_xywh
from cleanplate.segment.base import SEGMENTERS
from cleanplate.weights import WeightsUse, resolve

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class SaliencyModelInfo:
    """Pre/post-processing of one registered saliency model."""

    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    sigmoid: bool = False


MODEL_INFO: dict[str, SaliencyModelInfo] = {
    "u2netp": SaliencyModelInfo(320, _IMAGENET_MEAN, _IMAGENET_STD),
    "u2net": SaliencyModelInfo(320, _IMAGENET_MEAN, _IMAGENET_STD),
    "isnet-anime": SaliencyModelInfo(1024, _IMAGENET_MEAN, (1.0, 1.0, 1.0)),
    "birefnet-general": SaliencyModelInfo(1024, _IMAGENET_MEAN, _IMAGENET_STD, sigmoid=True),
}


class SaliencyPredictor:
    """Wraps a loaded saliency model: ``predict(image)`` -> HxW float32 map in [0, 1].

    ``predict_batch(images)`` does the same for a list of frames: one model call per ``max_batch``
    frames when the model takes a batch (a dynamic first input dimension), else one per frame;
    either way each map equals ``predict`` of that frame.
    """

    def __init__(self, model: str, device: str, checkpoint: str | None = None, input_size: int | None = None,
                 threads: int | None = None, max_batch: int = 8) -> None:
        self.weights = resolve(model, checkpoint)
        self.info = MODEL_INFO.get(model, MODEL_INFO["u2netp"])
        self.session = onnx_session(self.weights.path, device, threads or (os.cpu_count() or 1))
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        fixed = inp.shape[2] if isinstance(inp.shape[2], int) else None
        self.input_size = input_size or fixed or self.info.input_size
        self.max_batch = max_batch if not isinstance(inp.shape[0], int) else max(1, min(max_batch, inp.shape[0]))

    @classmethod
    def for_config(cls, config: Config, device: str) -> SaliencyPredictor:
        """The predictor ``config.segment.saliency`` names, with ``run.threads``."""
        sc = config.segment.saliency
        return cls(sc.model, device, input_size=sc.input_size, threads=config.run.threads)

    def _preprocess(self, image: np.ndarray) -> np.ndarray:
        """HxWx3 uint8 RGB -> 3xSxS float32, normalised as the model was trained."""
        h, w = image.shape[:2]
        s = self.input_size
        x = cv2.resize(image, (s, s), interpolation=cv2.INTER_AREA if max(h, w) > s else cv2.INTER_LINEAR)
        x = x.astype(np.float32) / 255.0
        x = (x - np.array(self.info.mean, np.float32)) / np.array(self.info.std, np.float32)
        return x.transpose(2, 0, 1)

    def _postprocess(self, out: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
        """One model output (any shape ending in h', w') -> HxW float32 map in [0, 1]."""
        sal = np.asarray(out, dtype=np.float32).reshape(out.shape[-2], out.shape[-1])
        if self.info.sigmoid:
            sal = 1.0 / (1.0 + np.exp(-sal))
        lo, hi = float(sal.min()), float(sal.max())
        sal = (sal - lo) / (hi - lo) if hi - lo > 1e-8 else np.zeros_like(sal)
        return cv2.resize(sal, (hw[1], hw[0]), interpolation=cv2.INTER_LINEAR)

    def predict(self, image: np.ndarray) -> np.ndarray:
        """Saliency of an HxWx3 uint8 RGB image as an HxW float32 map in [0, 1] (min-max normalised)."""
        x = np.ascontiguousarray(self._preprocess(image)[None])
        out = self.session.run(None, {self.input_name: x})[0]
        return self._postprocess(out[0], image.shape[:2])

    def predict_batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Saliency maps of HxWx3 uint8 RGB images (sizes may differ): one HxW float32 map each."""
        maps: list[np.ndarray] = []
        for start in range(0, len(images), self.max_batch):
            chunk = images[start:start + self.max_batch]
            x = np.ascontiguousarray(np.stack([self._preprocess(im) for im in chunk]))
            out = self.session.run(None, {self.input_name: x})[0]
            maps.extend(self._postprocess(o, im.shape[:2]) for o, im in zip(out, chunk, strict=True))
        return maps


def hysteresis(sal: np.ndarray, high: float, low: float) -> np.ndarray:
    """HxW bool: pixels >= ``high``, plus the pixels >= ``low`` connected (8-way) to them."""
    strong = sal >= high
    if low >= high:
        return strong
    n, labels = cv2.connectedComponents((sal >= low).astype(np.uint8), connectivity=8)
    keep = np.zeros(n, dtype=bool)
    keep[np.unique(labels[strong])] = True
    keep[0] = False
    return keep[labels]


@SEGMENTERS.register("saliency")
class SaliencySegmenter:
    """Characters = connected components of the thresholded saliency map."""

    name = "saliency"

    def __init__(self, config: Config, device: str) -> None:
        sc = config.segment.saliency
        self.threshold = sc.threshold
        self.low_threshold = min(sc.low_threshold, sc.threshold)
        self.min_size = config.segment.min_instance_size
        self.predictor = SaliencyPredictor.for_config(config, device)

    def segment(self, image: np.ndarray) -> SegmentResult:
        """Characters of one HxWx3 uint8 RGB frame."""
        return self._result(self.predictor.predict(image))

    def segment_batch(self, images: list[np.ndarray]) -> list[SegmentResult]:
        """:meth:`segment` of each frame, the saliency model run on the frames as batches."""
        return [self._result(sal) for sal in self.predictor.predict_batch(images)]

    def _result(self, sal: np.ndarray) -> SegmentResult:
        binary = hysteresis(sal, self.threshold, self.low_threshold)
        instances = []
        for comp in components(binary, self.min_size):
            ys, xs = np.nonzero(comp)
            peak = int(np.argmax(sal[ys, xs]))
            instances.append(Instance(
                mask=comp, bbox=bbox_xywh(comp), area=int(comp.sum()), score=float(sal[comp].mean()),
                point=(float(xs[peak]), float(ys[peak])), character=True, reason="salient component",
            ))
        dropped = len(components(binary, 0)) - len(instances)
        return SegmentResult(instances, {"salient_fraction": round(float(binary.mean()), 5),
                                         "small_components_dropped": dropped}, saliency=sal)

    def weights_used(self) -> list[WeightsUse]:
        return [self.predictor.weights]
