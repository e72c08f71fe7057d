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
    """Wraps a loaded saliency model: ``predict(image)`` -> HxW float32 map in [0, 1]."""

    def __init__(self, model: str, device: str, checkpoint: str | None = None, input_size: int | None = None,
                 threads: int | None = None) -> None:
        self.weights = resolve(model, checkpoint)
        self.info = MODEL_INFO.get(model, MODEL_INFO["u2netp"])
        self.session = onnx_session(self.weights.path, device, threads or (os.cpu_count() or 1))
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        fixed = inp.shape[2] if isinstance(inp.shape[2], int) else None
        self.input_size = input_size or fixed or self.info.input_size

    def predict(self, image: np.ndarray) -> np.ndarray:
        """Saliency of an HxWx3 uint8 RGB image as an HxW float32 map in [0, 1] (min-max normalised)."""
        h, w = image.shape[:2]
        s = self.input_size
        x = cv2.resize(image, (s, s), interpolation=cv2.INTER_AREA if max(h, w) > s else cv2.INTER_LINEAR)
        x = x.astype(np.float32) / 255.0
        x = (x - np.array(self.info.mean, np.float32)) / np.array(self.info.std, np.float32)
        x = np.ascontiguousarray(x.transpose(2, 0, 1)[None])
        out = self.session.run(None, {self.input_name: x})[0]
        sal = np.asarray(out, dtype=np.float32).reshape(out.shape[-2], out.shape[-1])
        if self.info.sigmoid:
            sal = 1.0 / (1.0 + np.exp(-sal))
        lo, hi = float(sal.min()), float(sal.max())
        sal = (sal - lo) / (hi - lo) if hi - lo > 1e-8 else np.zeros_like(sal)
        return cv2.resize(sal, (w, h), interpolation=cv2.INTER_LINEAR)


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
        self.predictor = SaliencyPredictor(sc.model, device, input_size=sc.input_size, threads=config.run.threads)

    def segment(self, image: np.ndarray) -> SegmentResult:
        sal = self.predictor.predict(image)
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
