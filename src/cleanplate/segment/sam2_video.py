"""``sam2-video`` shot segmenter: transformers' ``Sam2VideoModel`` seeded by the per-frame detector.

Per shot (window): the characters the per-frame detector found in the shot's *key frame* (the
first frame with the most characters) become SAM2 objects, prompted with their boxes (XYXY px);
SAM2's memory propagates each object forwards and backwards through the shot. Each object is a
track (``Instance.track_id``); per-frame detections no object covers stay as they were (so a
character entering later is not lost), with ``reason`` saying so.

Weights: the SAM2 model folders of the registry (``facebook/sam2.1-hiera-*`` hold the video
model too), or ``segment.sam2_video.checkpoint``. torch and transformers are imported lazily.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cleanplate import masks as M
from cleanplate.config import Config
from cleanplate.records import Instance, SegmentResult, bbox_xywh
from cleanplate.segment.base import SHOT_SEGMENTERS
from cleanplate.segment.hf_loading import load_pretrained
from cleanplate.segment.sam2 import INSTALL, weights_name
from cleanplate.weights import WeightsUse, resolve


def load_sam2_video(path: str, device: str) -> tuple[Any, Any]:
    """(Sam2VideoModel in eval mode on ``device``, Sam2VideoProcessor) from a transformers folder."""
    return load_pretrained(path, device, "Sam2VideoModel", "Sam2VideoProcessor", what="SAM2 video",
                           expected="facebook/sam2.1-hiera-tiny (config.json + model.safetensors)",
                           install=INSTALL)


def key_frame(results: list[SegmentResult]) -> int | None:
    """Index of the first frame with the most character instances, or None when there are none."""
    counts = [sum(1 for i in r.instances if i.character) for r in results]
    return None if max(counts, default=0) == 0 else counts.index(max(counts))


@SHOT_SEGMENTERS.register("sam2-video")
class Sam2VideoShotSegmenter:
    """SAM2 video propagation of the key frame's characters through the shot."""

    name = "sam2-video"

    def __init__(self, config: Config, device: str) -> None:
        vc = config.segment.sam2_video
        self.vc = vc
        self.device = device
        self.weights = resolve(weights_name(vc.model_type), vc.checkpoint)
        self.model, self.processor = load_sam2_video(self.weights.path, device)

    def weights_used(self) -> list[WeightsUse]:
        return [self.weights]

    def _propagate(self, images: list[np.ndarray], start: int, boxes: list[list[float]]) -> dict[int, np.ndarray]:
        """frame index -> (objects, H, W) bool masks, from ``boxes`` (XYXY px) given at frame ``start``."""
        import torch

        h, w = images[0].shape[:2]
        out: dict[int, np.ndarray] = {}
        for reverse in (False, True):
            session = self.processor.init_video_session(video=images, inference_device=self.device)
            self.processor.add_inputs_to_inference_session(
                inference_session=session, frame_idx=start, obj_ids=list(range(1, len(boxes) + 1)),
                input_boxes=[boxes])
            with torch.inference_mode():
                for o in self.model.propagate_in_video_iterator(session, start_frame_idx=start, reverse=reverse):
                    masks = self.processor.post_process_masks(
                        [o.pred_masks], original_sizes=[[h, w]], binarize=True,
                        mask_threshold=self.vc.mask_threshold)[0]
                    out[int(o.frame_idx)] = masks[:, 0].cpu().numpy().astype(bool)
        return out

    def segment_shot(self, images: list[np.ndarray], results: list[SegmentResult],
                     shot: Any = None) -> list[SegmentResult]:
        """``images``: HxWx3 uint8 RGB frames of one shot; ``results``: their per-frame results."""
        if len(images) != len(results):
            raise ValueError(f"{len(images)} frames but {len(results)} per-frame results")
        start = key_frame(results)
        if start is None:
            return [SegmentResult(list(r.instances), {**r.extra, "shot_method": self.name, "shot_objects": 0},
                                  r.saliency) for r in results]
        seeds = [i for i in results[start].instances if i.character][: self.vc.max_objects]
        boxes = [[float(x), float(y), float(x + bw - 1), float(y + bh - 1)] for x, y, bw, bh in (s.bbox for s in seeds)]
        masks = self._propagate(images, start, boxes)
        out = []
        for t, res in enumerate(results):
            found = masks.get(t)
            instances: list[Instance] = []
            covered = np.zeros(images[t].shape[:2], bool)
            if found is not None:
                for k, m in enumerate(found):
                    if not m.any():
                        continue
                    covered |= m
                    instances.append(Instance(m, bbox_xywh(m), int(m.sum()), seeds[k].score, character=True,
                                              reason=f"sam2-video: object {k} seeded by a box at frame {start}",
                                              track_id=k))
            for inst in res.instances:
                if inst.character and (inst.mask & covered).sum() < 0.5 * max(inst.area, 1):
                    instances.append(Instance(inst.mask, inst.bbox, inst.area, inst.score, inst.predicted_iou,
                                              inst.stability_score, inst.point, True,
                                              "per-frame detection no sam2-video object covers"))
                elif not inst.character:
                    instances.append(inst)
            out.append(SegmentResult(instances, {**res.extra, "shot_method": self.name, "shot_objects": len(seeds),
                                                 "shot_key_frame": start,
                                                 "shot_coverage": round(M.coverage(covered), 5)}, res.saliency))
        return out
