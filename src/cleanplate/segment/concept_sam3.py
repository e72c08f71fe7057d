"""``sam3`` as a concept model: transformers' ``Sam3Model`` (the image detector of facebook/sam3).

SAM 3 finds every instance of a text concept with its mask, so no box-to-mask step is needed.
Each concept of ``segment.concept.prompt`` is one call over the batch of frames; detections of all
concepts are merged best first, a mask overlapping a better one by ``segment.concept.nms_iou``
(IoU of the boxes) dropped. The weights are gated on the hub (see :mod:`cleanplate.segment.sam3`);
``auto`` takes SAM 3 first when they are on disk.
"""

from __future__ import annotations

import numpy as np

from cleanplate.config import Config
from cleanplate.devices import to_device
from cleanplate.errors import WeightsError
from cleanplate.segment.concept import (
    CONCEPT_DETECTORS,
    ConceptDetection,
    box_iou,
    clip_box,
    model_settings,
)
from cleanplate.segment.hf_loading import load_pretrained
from cleanplate.segment.sam3 import ACCESS, INSTALL
from cleanplate.weights import WeightsUse, resolve


@CONCEPT_DETECTORS.register("sam3")
class Sam3ConceptSource:
    """SAM 3 image detections of the prompt's concepts (a :class:`~cleanplate.segment.concept.ConceptSource`)."""

    name = "sam3"

    def __init__(self, config: Config, device: str) -> None:
        ms = model_settings(config, self.name)
        self.concepts, self.threshold, self.nms_iou, self.max_detections = (ms.concepts, ms.threshold, ms.nms_iou,
                                                                            ms.max_detections)
        self.device = device
        try:
            self.weights = resolve("sam3", config.segment.sam3.checkpoint)
        except WeightsError as exc:
            raise WeightsError(f"{exc}; {ACCESS}") from None
        self.model, self.processor = load_pretrained(self.weights.path, device, "Sam3Model", "Sam3Processor",
                                                     what="SAM 3", expected="facebook/sam3", install=INSTALL)

    def detect(self, images: list[np.ndarray]) -> list[list[ConceptDetection]]:
        """One list of detections per HxWx3 uint8 RGB frame, best score first."""
        import torch

        if not images:
            return []
        sizes = [(int(im.shape[0]), int(im.shape[1])) for im in images]
        found: list[list[ConceptDetection]] = [[] for _ in images]
        for concept in self.concepts:
            inputs = self.processor(images=list(images), text=[concept] * len(images), return_tensors="pt")
            inputs = {k: to_device(v, self.device) if hasattr(v, "to") else v for k, v in inputs.items()}
            with torch.inference_mode():
                outputs = self.model(**inputs)
            results = self.processor.post_process_instance_segmentation(
                outputs, threshold=self.threshold, mask_threshold=0.5, target_sizes=sizes)
            for t, r in enumerate(results):
                for box, score, mask in zip(r["boxes"].float().cpu().numpy(), r["scores"].float().cpu().tolist(),
                                            r["masks"].cpu().numpy().astype(bool), strict=True):
                    if mask.any():
                        found[t].append(ConceptDetection(clip_box(box, sizes[t]), concept, float(score), mask,
                                                         self.name, "sam3"))
        out = []
        for dets in found:
            dets.sort(key=lambda d: -d.score)
            kept: list[ConceptDetection] = []
            for d in dets:
                if len(kept) >= self.max_detections:
                    break
                if kept and box_iou(np.array([d.box]), np.array([k.box for k in kept])).max() > self.nms_iou:
                    continue
                kept.append(d)
            out.append(kept)
        return out

    def weights_used(self) -> list[WeightsUse]:
        return [self.weights]
