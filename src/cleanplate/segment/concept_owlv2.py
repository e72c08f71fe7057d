"""``owlv2`` concept model: transformers' ``Owlv2ForObjectDetection`` (google/owlv2-base-patch16-ensemble).

OWLv2 scores every image patch's box against each text query; a box takes the concept it scores
highest on (the processor's ``post_process_grounded_object_detection`` gives the query index). The
image processor pads each frame to a square before resizing, and the post-processing scales boxes
back against that square; boxes are then clipped to the frame. Apache-2.0 weights, no gated access:
``cleanplate weights download owlv2-base-ensemble``. torch and transformers are imported lazily.
"""

from __future__ import annotations

import numpy as np

from cleanplate.config import Config
from cleanplate.devices import to_device
from cleanplate.errors import WeightsError
from cleanplate.segment.concept import CONCEPT_DETECTORS, WEIGHTS, Box, model_settings, select_boxes
from cleanplate.segment.hf_loading import load_pretrained
from cleanplate.weights import WeightsSpec, WeightsUse, register, resolve

INSTALL = "pip install 'cleanplate[concept]'"
REPO = "google/owlv2-base-patch16-ensemble"

register(WeightsSpec(
    name=WEIGHTS["owlv2"], filename=WEIGHTS["owlv2"], urls=(), kind="concept", license="Apache-2.0",
    description="OWLv2 base/16 ensemble (Google): open-vocabulary detector naming characters by text, "
    "Hugging Face transformers format",
    hf_repo=REPO, hf_files=("*.json", "*.safetensors", "*.txt"),
))


def resolve_weights(name: str, checkpoint: str | None) -> WeightsUse:
    """The weights folder of registry entry ``name``; offline and missing: WeightsError with the download line."""
    try:
        return resolve(name, checkpoint)
    except WeightsError as exc:
        text = str(exc)
        if "cleanplate weights download" not in text:
            text += f"; run `cleanplate weights download {name}` on a connected machine"
        raise WeightsError(text) from None


@CONCEPT_DETECTORS.register("owlv2")
class Owlv2Detector:
    """Boxes of ``segment.concept.prompt``'s concepts from OWLv2, frames batched in one model call."""

    name = "owlv2"

    def __init__(self, config: Config, device: str) -> None:
        cc = config.segment.concept
        ms = model_settings(config, self.name)
        self.concepts, self.threshold, self.nms_iou, self.max_detections = (ms.concepts, ms.threshold, ms.nms_iou,
                                                                            ms.max_detections)
        self.device = device
        self.weights = resolve_weights(WEIGHTS["owlv2"], cc.owlv2_checkpoint)
        self.model, self.processor = load_pretrained(
            self.weights.path, device, "Owlv2ForObjectDetection", "Owlv2Processor", what="OWLv2", expected=REPO,
            install=INSTALL)

    def detect_boxes(self, images: list[np.ndarray]) -> list[list[Box]]:
        """``images``: HxWx3 uint8 RGB. Per frame: (XYXY box in pixels, concept, score), best first."""
        import torch

        if not images:
            return []
        inputs = self.processor(text=[self.concepts] * len(images), images=list(images), return_tensors="pt")
        inputs = {k: to_device(v, self.device) for k, v in inputs.items()}
        with torch.inference_mode():
            outputs = self.model(**inputs)
        sizes = [(int(im.shape[0]), int(im.shape[1])) for im in images]
        results = self.processor.post_process_grounded_object_detection(
            outputs, threshold=self.threshold, target_sizes=sizes)
        out = []
        for r, hw in zip(results, sizes, strict=True):
            boxes = [(tuple(b), self.concepts[int(i)], float(s))
                     for b, i, s in zip(r["boxes"].float().cpu().numpy().tolist(), r["labels"].tolist(),
                                        r["scores"].float().cpu().tolist(), strict=True)]
            out.append(select_boxes(boxes, hw, self.nms_iou, self.max_detections))
        return out

    def weights_used(self) -> list[WeightsUse]:
        return [self.weights]
