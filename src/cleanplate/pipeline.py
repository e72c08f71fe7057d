"""Composes the stages for ``run``, ``segment`` and ``inpaint``: the library entry points.

Every command is the same flow over typed records (DESIGN.md): decode -> shots -> [segment ->
characters -> masks] -> [fill -> checks] -> commit. ``run`` keeps each frame and its mask in memory
from segmentation to fill (one decode, no mask read back); ``segment`` writes masks that
``inpaint`` reads (the disk hand-over). A runner (``run.runner``: local or ray) decides where the
stages run; only the driver commits: outputs atomically, then the frame's manifest line, so a
rerun skips frames whose record matches the current configuration (``force`` redoes them).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cleanplate import weights
from cleanplate.config import Config
from cleanplate.devices import resolve_device
from cleanplate.errors import FrameError, InputError
from cleanplate.fill.base import Inpainter, SequentialInpainter, create_inpainter
from cleanplate.io.frames import FolderSource, FrameSource, Loader, open_source
from cleanplate.io.manifest import Manifest
from cleanplate.io.metadata import StageSummary
from cleanplate.io.outputs import Layout
from cleanplate.io.review import Review, frame_hashes, load_review
from cleanplate.motion.shot_model import Link
from cleanplate.records import FrameRecord
from cleanplate.runners import Runner, create_runner
from cleanplate.stages.base import StageGroup, StageSpec
from cleanplate.stages.commit import Committer, FillOptions
from cleanplate.stages.decode import decode, load_mask, new_record
from cleanplate.stages.fill import ChecksStage, FillStage
from cleanplate.stages.review import ReviewStage
from cleanplate.stages.segment import CharactersStage, MaskStage, SegmentStage
from cleanplate.stages.shots import ShotModelStage, ShotStage


@dataclass(frozen=True)
class ProgressEvent:
    """Reported to the ``progress`` callback as it happens: a stage starts; a frame is committed
    (``frame``: its outputs and manifest line are written, ``status`` ok, skipped or failed); a frame
    leaves a step of a stage's work (``work``: ``step`` detect, characters, masks, fill or checks;
    not yet committed); a stage ends. ``time``: when (seconds since the epoch)."""

    stage: str  # "segment" | "fill"
    kind: str  # "start" | "frame" | "work" | "end"
    total: int | None = None
    frame_id: str | None = None
    status: str | None = None  # "ok" | "skipped" | "failed"
    message: str | None = None
    step: str | None = None
    time: float = field(default_factory=time.time)


ProgressFn = Callable[[ProgressEvent], None]


@dataclass
class RunSummary:
    """What a run did; ``stats`` holds the figures users track (see :func:`RunSummary.stats`)."""

    out_dir: Path
    segment: StageSummary | None = None
    fill: StageSummary | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def frames_total(self) -> int:
        return max((s.total for s in (self.segment, self.fill) if s is not None), default=0)

    @property
    def failed_frames(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for s in (self.segment, self.fill):
            if s is not None:
                for fid, reason in s.failures.items():
                    out.setdefault(fid, reason)
        return out

    @property
    def failed_fraction(self) -> float:
        total = self.frames_total
        return len(self.failed_frames) / total if total else 0.0

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "frames": self.frames_total,
            "failed_frames": len(self.failed_frames),
            "failed_fraction": round(self.failed_fraction, 4),
        }
        for s in (self.segment, self.fill):
            if s is not None:
                out.update(s.stats)
        return out


def _noop(_: ProgressEvent) -> None:
    pass


def _open_input(input_path: str | Path, config: Config) -> FrameSource:
    ic = config.input
    return open_source(input_path, recursive=ic.recursive, every=ic.every, limit=ic.limit, max_side=ic.max_side)


@dataclass
class _Plan:
    """One command: which stages commit, where frames and masks come from, how fill reads masks."""

    stages: tuple[str, ...]
    source: FrameSource
    layout: Layout
    config: Config
    device: str
    raise_errors: bool
    mask_dir: Path | None = None  # masks/ of done (or foreign) segmentation, read from disk
    seg_records: dict[str, dict[str, Any]] | None = None  # inpaint: the segment records of mask_dir
    extra_dilate: int = 0
    sequential: bool = False  # the fill needs done frames as context
    inpainter: Inpainter | SequentialInpainter | None = None
    extra_relative: bool = False  # extra_dilate is masks.dilate, relative to a 1080-line frame
    review: Review = field(default_factory=Review)  # OUT/review.json: a person's corrections


def _groups(plan: _Plan) -> list[StageGroup]:
    """The model stages, grouped by where they run together (one Ray actor pool per group) and
    by what the driver commits once a record leaves the group (the masks, the plates)."""
    c, d, r = plan.config, plan.device, plan.raise_errors
    groups: list[StageGroup] = []
    shot_model = StageSpec("shot-model", ShotModelStage, {"config": c, "raise_errors": r, "direct": _direct(plan)})
    if "segment" in plan.stages:
        seg = [StageSpec("segment", SegmentStage, {"config": c, "device": d, "raise_errors": r}, model=True)]
        if c.segment.shot.method != "none":
            seg.append(shot_model)
            seg.append(StageSpec("characters", CharactersStage, {"config": c, "device": d, "raise_errors": r},
                                 model=True))
        if plan.review.corrections:
            seg.append(StageSpec("review", ReviewStage, {"config": c, "corrections": plan.review.corrections,
                                                         "source": plan.source, "device": d, "raise_errors": r}))
        seg.append(StageSpec("masks", MaskStage, {"config": c, "raise_errors": r}))
        groups.append(StageGroup("segment", seg))
    if "fill" in plan.stages:
        # the shot model for the temporal fill and the checks (a no-op where the segment group built it)
        fill = [shot_model] if plan.sequential or c.qa.enabled else []
        fill += [StageSpec("fill", FillStage, {"config": c, "device": d, "raise_errors": r}, model=True,
                          instance=None if plan.inpainter is None else FillStage(c, d, r, plan.inpainter))]
        if c.qa.enabled:
            fill.append(StageSpec("checks", ChecksStage, {"config": c, "device": d, "raise_errors": r}, model=True))
        groups.append(StageGroup("fill", fill))
    return groups


def _direct(plan: _Plan) -> bool:
    """Whether the shot model registers each frame directly onto the few before it: only the
    temporal fill reads those links. With a fill in the command, when it is temporal; ``segment``
    alone, when ``fill.method`` is (stored with the records for a later ``inpaint`` with this
    config; any other segment-only run does not pay for them)."""
    if "fill" in plan.stages:
        return plan.sequential
    return plan.config.fill.method.startswith("temporal+")


PER_FRAME_WINDOW = 4
"""Frames per window when no stage needs a shot's frames together (progress and Ray rows stay small)."""


def _window_frames(plan: _Plan) -> int:
    """Window size: a shot (at most ``shots.max_frames``) when a stage needs the shot's
    frames together (shot-level characters, a sequential fill, the checks against the shot);
    otherwise a few frames (at least a fill batch)."""
    c = plan.config
    shot_level = "segment" in plan.stages and c.segment.shot.method != "none"
    shot_fill = "fill" in plan.stages and (plan.sequential or c.qa.enabled)
    if shot_level or shot_fill:
        return c.shots.max_frames
    return max(PER_FRAME_WINDOW, c.fill.batch_size if "fill" in plan.stages else 1)


def _prepare(plan: _Plan, rec: FrameRecord, loader: Loader) -> FrameRecord:
    """Decode a frame (and read its mask when the fill takes it from disk)."""
    if rec.failed:
        return rec
    decode(rec, loader, plan.raise_errors)
    seg_done = "segment" not in plan.stages or not rec.segment_todo
    if "fill" in plan.stages and seg_done and (rec.fill_todo or plan.sequential) and plan.mask_dir is not None:
        load_mask(rec, plan.mask_dir / "masks" / f"{rec.frame_id}.png", plan.extra_dilate, plan.raise_errors,
                  plan.extra_relative)
    return rec


def _thunks(plan: _Plan, committer: Committer) -> Iterator[Callable[[], FrameRecord]]:
    seg_reader = None  # inpaint: the segment manifest beside the masks, for each frame's stored link
    if plan.seg_records is not None and plan.mask_dir is not None:
        seg_reader = Manifest(plan.mask_dir / ".cleanplate" / "segment.jsonl")
    try:
        for ref, loader in plan.source:
            rec = new_record(ref)
            rec.segment_todo = "segment" in plan.stages and not committer.is_done("segment", ref.frame_id)
            rec.fill_todo = "fill" in plan.stages and not committer.is_done("fill", ref.frame_id)
            reader = seg_reader if seg_reader is not None else (
                committer.manifests["segment"] if "segment" in plan.stages and not rec.segment_todo else None)
            stored = reader.read(ref.frame_id) if reader is not None else None
            if stored and isinstance(stored.get("link"), dict):  # registered when its masks were made
                rec.link = Link.from_record(stored["link"])
            if stored and isinstance(stored.get("direct_links"), list):  # older records hold none
                rec.direct_links = [lk for d in stored["direct_links"] if isinstance(d, dict)
                                    and (lk := Link.from_record(d)) is not None]
            if plan.seg_records is not None and rec.fill_todo:
                seg = plan.seg_records.get(ref.frame_id)
                if seg is None or seg.get("status") != "ok":
                    why = seg.get("error") if seg else "not segmented"
                    rec.error, rec.failed_stage = str(FrameError(f"segmentation failed: {why}")), "decode"
            yield lambda rec=rec, loader=loader: _prepare(plan, rec, loader)
    finally:
        if seg_reader is not None:
            seg_reader.close()


def _all_done(plan: _Plan, committer: Committer) -> list[FrameRecord] | None:
    """For a folder whose frames are all done in every stage: their records (nothing to decode)."""
    if not isinstance(plan.source, FolderSource):
        return None
    out = []
    for ref in plan.source.refs:
        if any(not committer.is_done(s, ref.frame_id) for s in plan.stages):
            return None
        rec = new_record(ref)
        rec.segment_todo = rec.fill_todo = False
        out.append(rec)
    return out


def _execute(plan: _Plan, runner: Runner, force: bool, progress: ProgressFn, fill: FillOptions | None
             ) -> dict[str, StageSummary]:
    try:
        committer = Committer(plan.layout, plan.config, plan.stages, force, fill,
                              frame_hashes(plan.review) if "segment" in plan.stages else None)
        committer.on_frame = lambda stage, fid, status, error: progress(
            ProgressEvent(stage, "frame", frame_id=fid, status=status, message=error))
        steps = {"segment": ("segment", "detect"), "characters": ("segment", "characters"),
                 "review": ("segment", "review"),
                 "masks": ("segment", "masks"), "fill": ("fill", "fill"), "checks": ("fill", "checks")}

        def on_work(step: str, rec: FrameRecord) -> None:
            if step not in steps:
                return
            stage, name = steps[step]
            if stage in plan.stages and (rec.segment_todo if stage == "segment" else rec.fill_todo) \
                    and not rec.failed:
                progress(ProgressEvent(stage, "work", frame_id=rec.frame_id, step=name))
        total = len(plan.source)
        for stage in plan.stages:
            progress(ProgressEvent(stage, "start", total=total))
        try:
            done = _all_done(plan, committer)
            if done is not None:  # a finished run resumes in seconds
                for rec in done:
                    committer.commit(rec)
            else:
                runner.execute(_thunks(plan, committer), ShotStage(plan.config), _window_frames(plan),
                               _groups(plan), committer.commit, on_work)
        finally:
            committer.close()
        summaries = committer.finish(plan.source.describe(), plan.device)
        if "segment" in summaries and "fill" in summaries:
            both = RunSummary(plan.layout.root, segment=summaries["segment"], fill=summaries["fill"])
            committer.write_run_summary(both.stats())
        for stage in plan.stages:
            reused = summaries[stage].skipped
            progress(ProgressEvent(stage, "end", message=f"{reused} frame(s) reused from an earlier run"
                                   if reused else None))
        return summaries
    finally:
        runner.close()


# ------------------------------------------------------------------------------------- commands

def segment(
    input_path: str | Path,
    out_dir: str | Path,
    config: Config,
    *,
    force: bool = False,
    progress: ProgressFn | None = None,
    raise_errors: bool = False,
) -> RunSummary:
    """Find the characters of every frame of ``input_path``; write the segment outputs to ``out_dir``."""
    layout = Layout(Path(out_dir), "." + config.output.plate_format)
    source = _open_input(input_path, config)
    device = resolve_device(config.run.device)
    runner = create_runner(config, device)  # a missing Ray fails before anything is written
    layout.prepare(layout.instances, layout.masks, layout.thumbs)
    layout.clean_temp_files()
    plan = _Plan(("segment",), source, layout, config, device, raise_errors, review=load_review(layout.root))
    summaries = _execute(plan, runner, force, progress or _noop, None)
    return RunSummary(layout.root, segment=summaries["segment"])


def _read_run_json(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / "run.json").read_text())
    except (OSError, ValueError):
        return {}


def _fill_inputs(mask_dir: Path, frames: str | Path | None, config: Config
                 ) -> tuple[FrameSource, dict[str, dict[str, Any]] | None, int, bool]:
    """Frames to fill, the segment records (None for a foreign mask folder), the extra dilation and
    whether it is relative to a 1080-line frame (the ``masks.dilate`` default for foreign masks)."""
    if not mask_dir.is_dir():
        raise InputError(f"mask folder not found: {mask_dir}")
    seg_manifest = mask_dir / ".cleanplate" / "segment.jsonl"
    seg_records = Manifest(seg_manifest).records if seg_manifest.is_file() else None
    if frames is None:
        if seg_records is None:
            raise InputError(f"{mask_dir} is not a cleanplate segment output: give the frames with --input-dir")
        run = _read_run_json(mask_dir)
        frames = (run.get("segment", {}).get("input") or {}).get("path")
        if not frames:
            raise InputError(f"{mask_dir}/run.json does not say where the frames are: give --input-dir")
    if not (mask_dir / "masks").is_dir():
        raise InputError(f"no masks/ folder in {mask_dir}")
    source = _open_input(frames, config)
    extra, relative = config.fill.mask_dilate, False
    if extra is None:
        extra = 0 if seg_records is not None else config.masks.dilate
        relative = seg_records is None and config.masks.dilate_relative
    return source, seg_records, extra, relative


def inpaint(
    mask_dir: str | Path,
    out_dir: str | Path,
    config: Config,
    *,
    frames: str | Path | None = None,
    force: bool = False,
    progress: ProgressFn | None = None,
    raise_errors: bool = False,
    inpainter: Inpainter | SequentialInpainter | None = None,
) -> RunSummary:
    """Fill the removal masks in ``mask_dir/masks/`` and write clean plates to ``out_dir/backgrounds/``.

    ``mask_dir`` is a segment output (frames found through its run.json) or any folder holding
    ``masks/<frame>.png`` named like the frames in ``frames``. ``inpainter``: one already built for
    ``config`` (used by the local runner instead of building another).
    """
    mask_dir, layout = Path(mask_dir), Layout(Path(out_dir), "." + config.output.plate_format)
    source, seg_records, extra_dilate, extra_relative = _fill_inputs(mask_dir, frames, config)
    same_dir = mask_dir.resolve() == layout.root.resolve() if layout.root.exists() else False
    device = resolve_device(config.run.device)
    if inpainter is None and config.run.runner == "local":
        inpainter = create_inpainter(config, device)
    runner = create_runner(config, device)
    layout.prepare(layout.backgrounds, *(() if same_dir else (layout.masks,)))
    layout.clean_temp_files()
    plan = _Plan(("fill",), source, layout, config, device, raise_errors, mask_dir, seg_records, extra_dilate,
                 config.fill.method.startswith("temporal+") or isinstance(inpainter, SequentialInpainter),
                 inpainter, extra_relative)
    summaries = _execute(plan, runner, force, progress or _noop,
                         FillOptions(config.fill.method, extra_dilate, not same_dir))
    return RunSummary(layout.root, fill=summaries["fill"])


def run(
    input_path: str | Path,
    out_dir: str | Path,
    config: Config,
    *,
    force: bool = False,
    progress: ProgressFn | None = None,
    raise_errors: bool = False,
) -> RunSummary:
    """Segment then fill every frame of ``input_path`` into ``out_dir`` (the DESIGN.md layout).

    Frames and masks stay in memory from segmentation to fill. Every weights file the config needs
    is checked first (one error naming all that are missing or corrupt), then the fill method is
    loaded: missing weights or dependencies fail before segmentation starts.
    """
    import cleanplate.segment  # noqa: F401  (registers the segmenters' weights)

    weights.require_available(config)
    device = resolve_device(config.run.device)
    inpainter = create_inpainter(config, device if config.run.runner == "local" else "cpu")
    layout = Layout(Path(out_dir), "." + config.output.plate_format)
    source = _open_input(input_path, config)
    review = load_review(layout.root)  # a person's corrections are applied again, --force or not
    runner = create_runner(config, device)
    layout.prepare(layout.instances, layout.masks, layout.thumbs, layout.backgrounds)
    layout.clean_temp_files()
    plan = _Plan(("segment", "fill"), source, layout, config, device, raise_errors, layout.root, None, 0,
                 isinstance(inpainter, SequentialInpainter),
                 inpainter if config.run.runner == "local" else None, review=review)
    summaries = _execute(plan, runner, force, progress or _noop, FillOptions(config.fill.method, 0, False))
    return RunSummary(layout.root, segment=summaries["segment"], fill=summaries["fill"])


__all__ = ["ProgressEvent", "RunSummary", "inpaint", "run", "segment"]
