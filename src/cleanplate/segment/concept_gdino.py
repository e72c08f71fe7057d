"""``grounding-dino`` concept model: transformers' ``GroundingDinoForObjectDetection``
(IDEA-Research/grounding-dino-tiny).

Grounding DINO reads the whole prompt as one text ("person. character. creature. animal.") and
scores each of its queries against every text token. A box takes the concept whose tokens it scores
highest (the best token of each concept's span, spans found in the tokenised prompt), when that
reaches ``segment.concept.text_threshold``; its score is that token score. (The processor's
``post_process_grounded_object_detection`` decodes every token above the threshold into one
phrase, which can merge two concepts; the label here is always one prompt concept.) Apache-2.0
weights, no gated access: ``cleanplate weights download grounding-dino-tiny``.
"""

from __future__ import annotations

import numpy as np

from cleanplate.config import Config
from cleanplate.devices import to_device
from cleanplate.segment.concept import CONCEPT_DETECTORS, WEIGHTS, Box, model_settings, select_boxes
from cleanplate.segment.concept_owlv2 import INSTALL, resolve_weights
from cleanplate.segment.hf_loading import load_pretrained
from cleanplate.weights import WeightsSpec, WeightsUse, register

REPO = "IDEA-Research/grounding-dino-tiny"

register(WeightsSpec(
    name=WEIGHTS["grounding-dino"], filename=WEIGHTS["grounding-dino"], urls=(), kind="concept",
    license="Apache-2.0",
    description="Grounding DINO tiny (IDEA Research): open-vocabulary detector naming characters by text, "
    "Hugging Face transformers format",
    hf_repo=REPO, hf_files=("*.json", "*.safetensors", "*.txt"),
))


def concept_spans(input_ids: list[int], concept_ids: list[list[int]]) -> list[list[int]]:
    """Token positions of each concept in a tokenised prompt: the first place its token ids occur
    as a run (after the previous concept's); [] for a concept not found."""
    spans, start = [], 0
    for ids in concept_ids:
        n, found = len(ids), []
        for i in range(start, len(input_ids) - n + 1) if n else []:
            if input_ids[i:i + n] == ids:
                found, start = list(range(i, i + n)), i + n
                break
        spans.append(found)
    return spans


@CONCEPT_DETECTORS.register("grounding-dino")
class GroundingDinoDetector:
    """Boxes of ``segment.concept.prompt``'s concepts from Grounding DINO, frames batched in one call."""

    name = "grounding-dino"

    def __init__(self, config: Config, device: str) -> None:
        cc = config.segment.concept
        ms = model_settings(config, self.name)
        self.concepts, self.threshold, self.nms_iou, self.max_detections = (ms.concepts, ms.threshold, ms.nms_iou,
                                                                            ms.max_detections)
        self.prompt = ". ".join(c.lower() for c in self.concepts) + "."  # lower case, each ending in '.'
        self.device = device
        self.text_threshold = cc.text_threshold
        self.weights = resolve_weights(WEIGHTS["grounding-dino"], cc.grounding_dino_checkpoint)
        self.model, self.processor = load_pretrained(
            self.weights.path, device, "GroundingDinoForObjectDetection", "GroundingDinoProcessor",
            what="Grounding DINO", expected=REPO, install=INSTALL)
        tok = self.processor.tokenizer
        self.concept_ids = [list(tok(c.lower(), add_special_tokens=False)["input_ids"]) for c in self.concepts]

    def detect_boxes(self, images: list[np.ndarray]) -> list[list[Box]]:
        """``images``: HxWx3 uint8 RGB. Per frame: (XYXY box in pixels, concept, score), best first."""
        import torch

        if not images:
            return []
        inputs = self.processor(images=list(images), text=[self.prompt] * len(images), return_tensors="pt")
        ids = inputs["input_ids"][0].tolist()
        inputs = {k: to_device(v, self.device) for k, v in inputs.items()}
        with torch.inference_mode():
            outputs = self.model(**inputs)
        probs = outputs.logits.float().sigmoid().cpu().numpy()  # (B, queries, text positions)
        cxcywh = outputs.pred_boxes.float().cpu().numpy()  # (B, queries, 4), relative to the frame
        spans = concept_spans(ids, self.concept_ids)
        out = []
        for b, image in enumerate(images):
            h, w = int(image.shape[0]), int(image.shape[1])
            per = np.stack([probs[b][:, s].max(axis=1) if s else np.zeros(probs.shape[1]) for s in spans], axis=1)
            best, score = per.argmax(axis=1), per.max(axis=1)
            boxes: list[Box] = []
            for q in np.nonzero((score >= self.threshold) & (score >= self.text_threshold))[0]:
                cx, cy, bw, bh = cxcywh[b, q]
                box = ((cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h)
                boxes.append((tuple(float(v) for v in box), self.concepts[int(best[q])], float(score[q])))
            out.append(select_boxes(boxes, (h, w), self.nms_iou, self.max_detections))
        return out

    def weights_used(self) -> list[WeightsUse]:
        return [self.weights]
