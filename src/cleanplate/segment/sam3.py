"""``sam3`` shot segmenter: transformers' ``Sam3VideoModel`` finding characters by text prompt.

SAM 3 detects every instance of each text concept (``segment.sam3.prompt``, one concept per
sentence: ``"person. character. creature. animal."``) in every frame of the shot and tracks them
with its memory: each object it keeps is a track (``Instance.track_id`` = SAM 3's object id).
Per-frame detections (saliency, SAM2) that no SAM 3 object covers stay characters, with a reason
saying so.

Weights: ``facebook/sam3`` on the Hugging Face hub is *gated*: request access on its page, log in
(``hf auth login``), then ``cleanplate weights download sam3`` — or put the repository files in a
folder and set ``segment.sam3.checkpoint``. torch, torchvision and transformers are imported lazily.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cleanplate import masks as M
from cleanplate.config import Config
from cleanplate.errors import BackendUnavailableError, WeightsError
from cleanplate.records import Instance, SegmentResult, bbox_xywh
from cleanplate.segment.base import SHOT_SEGMENTERS
from cleanplate.segment.hf_loading import load_pretrained
from cleanplate.weights import WeightsUse, resolve

INSTALL = "pip install 'cleanplate[sam3]'"
ACCESS = ("the SAM 3 weights are gated: request access at https://huggingface.co/facebook/sam3, log in with "
          "`hf auth login`, then run `cleanplate weights download sam3` (or set segment.sam3.checkpoint to a "
          "folder holding the repository files)")

def concepts(prompt: str) -> list[str]:
    """The text concepts of a prompt: ``"person. animal."`` -> ``["person", "animal"]``."""
    return [c.strip() for c in prompt.split(".") if c.strip()]


def load_sam3_video(path: str, device: str) -> tuple[Any, Any]:
    """(Sam3VideoModel in eval mode on ``device``, Sam3VideoProcessor) from a transformers folder."""
    return load_pretrained(path, device, "Sam3VideoModel", "Sam3VideoProcessor", what="SAM 3",
                           expected="facebook/sam3", install=INSTALL)


@SHOT_SEGMENTERS.register("sam3")
class Sam3ShotSegmenter:
    """SAM 3 text-prompted detection and tracking over one shot."""

    name = "sam3"

    def __init__(self, config: Config, device: str) -> None:
        sc = config.segment.sam3
        self.sc = sc
        self.device = device
        self.concepts = concepts(sc.prompt)
        if not self.concepts:
            raise ValueError("segment.sam3.prompt holds no concept")
        try:
            self.weights = resolve("sam3", sc.checkpoint)
        except WeightsError as exc:
            raise WeightsError(f"{exc}; {ACCESS}") from None
        self.model, self.processor = load_sam3_video(self.weights.path, device)

    def weights_used(self) -> list[WeightsUse]:
        return [self.weights]

    def _track(self, images: list[np.ndarray]) -> dict[int, list[tuple[int, str, float, np.ndarray]]]:
        """frame index -> [(object id, concept, score, HxW bool mask)] for the objects SAM 3 keeps."""
        import torch

        session = self.processor.init_video_session(video=images, inference_device=self.device)
        self.processor.add_text_prompt(session, self.concepts)
        out: dict[int, list[tuple[int, str, float, np.ndarray]]] = {}
        with torch.inference_mode():
            for o in self.model.propagate_in_video_iterator(inference_session=session,
                                                            max_frame_num_to_track=len(images)):
                r = self.processor.postprocess_outputs(session, o)
                concept_of = {int(i): c for c, ids in (r.get("prompt_to_obj_ids") or {}).items() for i in ids}
                found = []
                for oid, score, mask in zip(r["object_ids"].tolist(), r["scores"].tolist(), r["masks"], strict=True):
                    if score >= self.sc.score_threshold:
                        found.append((int(oid), concept_of.get(int(oid), "?"), float(score),
                                      mask.cpu().numpy().astype(bool)))
                out[int(o.frame_idx)] = found
        return out

    def segment_shot(self, images: list[np.ndarray], results: list[SegmentResult],
                     shot: Any = None) -> list[SegmentResult]:
        """``images``: HxWx3 uint8 RGB frames of one shot; ``results``: their per-frame results."""
        if len(images) != len(results):
            raise ValueError(f"{len(images)} frames but {len(results)} per-frame results")
        if not images:
            return []
        tracked = self._track(images)
        out = []
        for t, res in enumerate(results):
            covered = np.zeros(images[t].shape[:2], bool)
            instances: list[Instance] = []
            for oid, concept, score, m in tracked.get(t, []):
                if not m.any():
                    continue
                covered |= m
                instances.append(Instance(m, bbox_xywh(m), int(m.sum()), score, character=True,
                                          reason=f"sam3: '{concept}' (score {score:.2f})", track_id=oid))
            for inst in res.instances:
                if inst.character and (inst.mask & covered).sum() < 0.5 * max(inst.area, 1):
                    instances.append(Instance(inst.mask, inst.bbox, inst.area, inst.score, inst.predicted_iou,
                                              inst.stability_score, inst.point, True,
                                              "per-frame detection no sam3 object covers"))
                elif not inst.character:
                    instances.append(inst)
            out.append(SegmentResult(instances, {**res.extra, "shot_method": self.name,
                                                 "shot_objects": len(tracked.get(t, [])),
                                                 "shot_coverage": round(M.coverage(covered), 5)}, res.saliency))
        return out


@SHOT_SEGMENTERS.register("auto")
class AutoShotSegmenter:
    """``sam3`` when its weights are already here (and torch/transformers are installed), otherwise
    ``tracks``; never downloads. ``chosen`` names the one used (recorded as ``shot_method``)."""

    name = "auto"

    def __init__(self, config: Config, device: str) -> None:
        from cleanplate.segment.shot import TrackShotSegmenter

        self.inner: Any
        self.why = ""
        try:
            resolve("sam3", config.segment.sam3.checkpoint, download=False)
            self.inner = Sam3ShotSegmenter(config, device)
        except (WeightsError, BackendUnavailableError) as exc:
            self.why = f"sam3 not available ({str(exc)[:120]}): tracks"
            self.inner = TrackShotSegmenter(config, device)
        self.chosen = self.inner.name

    def weights_used(self) -> list[WeightsUse]:
        return self.inner.weights_used()

    def segment_shot(self, images: list[np.ndarray], results: list[SegmentResult],
                     shot: Any = None) -> list[SegmentResult]:
        out = self.inner.segment_shot(images, results, shot)
        if self.why:
            for r in out:
                r.extra["shot_auto"] = self.why
        return out
