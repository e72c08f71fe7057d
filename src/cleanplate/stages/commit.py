"""The commit step: the only writer. Outputs atomically, then the frame's manifest line.

:class:`Committer` runs in the driver (never in a worker): for every record, in input order, it
writes the segment outputs (cut-outs, instance masks, the thumbnail, the removal mask last) and
the segment manifest line, then the fill outputs (plate, mask, source map) and the fill manifest
line, and reports progress. Every call into the metadata modules (manifests, metadata files,
run.json) is made here: per stage a :class:`~cleanplate.io.metadata.MetadataWriter` counts each
committed record, keeps a small progress summary on a time schedule and writes the full metadata
file once, at the end, streamed from the append-only manifest.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cleanplate import masks as M
from cleanplate.config import Config
from cleanplate.io.manifest import Manifest
from cleanplate.io.metadata import MetadataWriter, StageSummary, check_config_unchanged, run_json_update
from cleanplate.io.outputs import THUMB_QUALITY, Layout, thumbnail, write_image, write_json
from cleanplate.records import FrameRecord
from cleanplate.stages.base import failure_text

SOURCE_LEVELS = np.array([0, 128, 255], np.uint8)
"""sources/<frame>.png grey levels: kept from the frame, copied from other frames, invented."""

SEGMENT_STEPS = ("decode", "segment", "characters", "masks")
"""Failures in these stages are the segment record's; later ones the fill record's."""

FrameEvent = Callable[[str, str, str, str | None], None]
"""Called per frame and stage: (stage, frame id, status ok | skipped | failed, error)."""

Record = dict[str, Any]  # a manifest line (JSON)


@dataclass(frozen=True)
class FillOptions:
    """Facts of the fill stage the commit records: the method, the extra dilation of masks read
    from disk, and whether to write the filled mask beside plates of another folder."""

    method: str
    extra_dilate: int
    write_masks: bool


class Committer:
    """Writes outputs, manifest lines and metadata for the stages of one command (in the driver)."""

    def __init__(self, layout: Layout, config: Config, stages: tuple[str, ...], force: bool,
                 fill: FillOptions | None = None, review: dict[str, str] | None = None) -> None:
        self.layout, self.config, self.stages, self.fill = layout, config, stages, fill
        self.review = review or {}  # frame id -> hash of the review corrections of its shot
        self.manifests: dict[str, Manifest] = {}
        self.hashes: dict[str, str] = {}
        self.previous: dict[str, dict[str, Record]] = {}
        for stage in stages:
            key = "segment" if stage == "segment" else "fill"
            self.hashes[stage] = config.stage_hash(key)
            manifest = Manifest(layout.state / f"{stage}.jsonl")
            self.previous[stage] = manifest.reset() if force else {}
            self.manifests[stage] = manifest
        for stage in stages:  # refuse before anything is written
            if not force:
                check_config_unchanged(layout, stage, self.manifests[stage], self.hashes[stage], config)
        for stage in stages:
            write_json(layout.state / f"{stage}.config.json", config.stage_parts("segment" if stage == "segment" else "fill"))
        self.summaries = {s: StageSummary(s) for s in stages}
        self.meta = {s: MetadataWriter(layout, s, config, self.manifests[s]) for s in stages}
        self.order: list[str] = []
        self.weights: dict[str, dict[tuple[str, str], dict[str, Any]]] = {s: {} for s in stages}
        self.started = time.time()
        self.on_frame: FrameEvent = lambda *_: None

    # ---------------------------------------------------------------------------------- resume
    def is_done(self, stage: str, frame_id: str) -> bool:
        return self.manifests[stage].is_done(frame_id, self.hashes[stage], self.layout.root,
                                             self.review.get(frame_id))

    # ---------------------------------------------------------------------------------- commit
    def commit(self, rec: FrameRecord, stage: str | None = None) -> None:
        """Write what ``rec`` brings for ``stage`` (None: every stage of the command) when it is
        still to do, then its manifest line. A frame's segment outputs come before its fill's."""
        stages = self.stages if stage is None else (stage,)
        if stages[0] == self.stages[0]:
            self.order.append(rec.frame_id)
        for note in list(rec.weights):
            if note.stage in self.weights and note.stage in stages:
                self.weights[note.stage][(note.name, note.path)] = {
                    "name": note.name, "path": note.path, "sha256": note.sha256, "source": note.source}
        if "segment" in self.stages and "segment" in stages:
            if rec.segment_todo:
                self._finish("segment", self._segment_record(rec))
            else:
                self._skip("segment", rec.frame_id)
        if "fill" in self.stages and "fill" in stages:
            if rec.fill_todo:
                self._finish("fill", self._fill_record(rec))
            else:
                self._skip("fill", rec.frame_id)

    def _skip(self, stage: str, frame_id: str) -> None:
        self.summaries[stage].skipped += 1
        self.meta[stage].skip()
        self.on_frame(stage, frame_id, "skipped", None)

    def _finish(self, stage: str, out: Record) -> None:
        old = self.manifests[stage].records.get(out["frame_id"]) or self.previous[stage].get(out["frame_id"])
        if old:  # delete outputs an earlier run wrote for this frame that the new record does not list
            keep = set(out.get("outputs", []))
            for rel in old.get("outputs", []):
                if rel not in keep:
                    (self.layout.root / rel).unlink(missing_ok=True)
        self.manifests[stage].append(out)
        self.summaries[stage].add(out)
        self.meta[stage].add(out)
        self.meta[stage].maybe_flush()  # long runs: a small progress summary on a time schedule
        self.on_frame(stage, out["frame_id"], out["status"], out.get("error"))

    def _base(self, rec: FrameRecord, stage: str) -> Record:
        return {"frame_id": rec.frame_id, "index": rec.index, "source": rec.source, "shot_id": rec.shot_id,
                "stage_hash": self.hashes[stage], "status": "ok", "error": None,
                "review": self.review.get(rec.frame_id)}

    def _segment_record(self, rec: FrameRecord) -> Record:
        out = self._base(rec, "segment")
        # the fill may already work on this record in the main thread: read a copy
        timings = {k: v for k, v in dict(rec.timings).items() if k in (*SEGMENT_STEPS, "shots")}
        if rec.failed and rec.failed_stage in SEGMENT_STEPS:
            out.update({"status": "failed", "error": rec.error, "outputs": [], "timings": timings})
            return out
        image, seg, mask = rec.image, rec.segment, rec.mask
        assert image is not None and seg is not None and mask is not None and rec.mask_raw is not None
        t = time.perf_counter()
        try:
            outputs = self._write_segment(rec.frame_id, image, seg.instances, mask)
        except Exception as exc:
            out.update({"status": "failed", "error": failure_text(exc), "outputs": []})
            rec.error, rec.failed_stage = out["error"], "segment"
            return out
        timings["write"] = round(time.perf_counter() - t, 4)
        chars = [i for i in seg.instances if i.character]
        if getattr(rec.link, "model", False):  # the shot model's registration onto the frame before
            out["link"] = rec.link.record()  # type: ignore[union-attr]
        direct = [lk.record() for lk in rec.direct_links if getattr(lk, "model", False)]
        if direct:  # its direct links onto the frames before (a record without them still loads)
            out["direct_links"] = direct
        out.update({
            "shape": [int(image.shape[0]), int(image.shape[1])],
            "instances": [i.record() for i in seg.instances],
            "n_instances": len(seg.instances),
            "n_characters": len(chars),
            "coverage_raw": round(M.coverage(rec.mask_raw), 6),
            "coverage": round(M.coverage(mask), 6),
            "dilate_px": rec.dilate_px,
            "extra": seg.extra,
            "outputs": outputs,
            "timings": timings,
        })
        return out

    def _write_segment(self, frame_id: str, image: np.ndarray, instances: list[Any], removal: np.ndarray
                       ) -> list[str]:
        layout, oc, outputs = self.layout, self.config.output, []
        for k, inst in enumerate(instances):
            if oc.save_instances:
                path = layout.cutout(frame_id, k)
                write_image(path, M.cutout(image, inst.mask, oc.context_mode))
                outputs.append(path)
            if oc.save_masks:
                path = layout.instance_mask(frame_id, k)
                write_image(path, M.to_png(inst.mask))
                outputs.append(path)
        path = layout.thumb(frame_id)
        write_image(path, thumbnail(image), THUMB_QUALITY)
        outputs.append(path)
        path = layout.mask(frame_id)
        write_image(path, M.to_png(removal))  # written last: its presence means the frame's outputs exist
        outputs.append(path)
        return [str(p.relative_to(layout.root)) for p in outputs]

    def _fill_record(self, rec: FrameRecord) -> Record:
        assert self.fill is not None
        out = self._base(rec, "fill")
        out.update({"method": self.fill.method, "extra_dilate": self.fill.extra_dilate})
        keys = ("fill", "checks") if "segment" in self.stages else ("decode", "shots", "fill", "checks")
        timings = {k: v for k, v in dict(rec.timings).items() if k in keys}
        if rec.failed:
            seg_failed = "segment" in self.stages and rec.failed_stage in SEGMENT_STEPS
            out.update({"status": "failed", "error": f"segmentation failed: {rec.error}" if seg_failed else rec.error,
                        "outputs": [], "timings": timings})
            return out
        image, mask, plate, res = rec.image, rec.mask, rec.plate, rec.fill
        assert image is not None and mask is not None and plate is not None and res is not None
        t = time.perf_counter()
        layout = self.layout
        try:
            paths = [layout.plate(rec.frame_id)]
            write_image(paths[0], plate, self.config.output.jpeg_quality)
            if self.fill.write_masks:  # the mask actually filled, beside the plates of another folder
                paths.append(layout.mask(rec.frame_id))
                write_image(paths[-1], M.to_png(mask))
            if res.source_map is not None:  # 0 kept, 128 from other frames, 255 invented
                layout.sources.mkdir(exist_ok=True)
                paths.append(layout.source_map(rec.frame_id))
                write_image(paths[-1], SOURCE_LEVELS[np.minimum(res.source_map, 2)])
        except Exception as exc:
            out.update({"status": "failed", "error": failure_text(exc), "outputs": [], "timings": timings})
            return out
        timings["write"] = round(time.perf_counter() - t, 4)
        out.update({"timings": timings, "coverage": round(M.coverage(mask), 6), "extra": res.extra,
                    "shape": [int(image.shape[0]), int(image.shape[1])],
                    "outputs": [str(p.relative_to(layout.root)) for p in paths]})
        if rec.checks is not None:
            out["checks"] = rec.checks
        return out

    # ---------------------------------------------------------------------------------- finish
    def finish(self, source: dict[str, object], device: str) -> dict[str, StageSummary]:
        """Write the metadata files (streamed from the manifests) and run.json; the stages' summaries."""
        seconds = time.time() - self.started
        for stage in self.stages:
            s = self.summaries[stage]
            s.total, s.seconds = len(self.order), seconds
            s.stats = self.meta[stage].finish(self.order, seconds)
            s.failures = self.meta[stage].failures
            weights = list(self.weights[stage].values()) or self._previous_weights(stage)
            run_json_update(self.layout, stage, self.config, source, device, weights, s)
        for m in self.manifests.values():
            m.close()
        return self.summaries

    def write_run_summary(self, stats: dict[str, Any]) -> None:
        """The whole run's figures into run.json (``run``, after both stages)."""
        run_json_update(self.layout, "summary", self.config, None, None, None, None, stats=stats)

    def _previous_weights(self, stage: str) -> list[dict[str, Any]]:
        """Weights run.json lists for a stage whose frames were all done before (none loaded now)."""
        try:
            data = json.loads(Path(self.layout.run_json).read_text())
            return list(data.get(stage, {}).get("weights", []))
        except (OSError, ValueError, AttributeError):
            return []

    def close(self) -> None:
        for m in self.manifests.values():
            m.close()
