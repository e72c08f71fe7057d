"""Orchestration: the segment and fill stages in order, resume, progress callbacks.

``segment(input, out)`` finds characters and writes cut-outs, instance masks and the combined,
dilated removal mask per frame. ``inpaint(mask_dir, out)`` fills the masks of those frames.
``run(input, out)`` is the two in a row. Each stage streams over the frames once, writes each
frame's outputs atomically, then appends the frame's record to the stage's manifest; a rerun
skips the frames whose record matches the current configuration.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cleanplate import masks as M
from cleanplate.config import Config
from cleanplate.devices import resolve_device
from cleanplate.errors import CleanplateError, FrameError, InputError
from cleanplate.io.frames import FrameRef, FrameSource, Loader, open_source
from cleanplate.io.manifest import Manifest
from cleanplate.io.metadata import MetadataWriter, StageSummary, check_config_unchanged, run_json_update
from cleanplate.io.outputs import Layout, read_mask, write_image, write_json

log = logging.getLogger("cleanplate")

SOURCE_LEVELS = np.array([0, 128, 255], np.uint8)
"""sources/<frame>.png grey levels: kept from the frame, copied from other frames, invented."""


@dataclass(frozen=True)
class ProgressEvent:
    """Reported to the ``progress`` callback: a stage starts, a frame finishes, a stage ends."""

    stage: str  # "segment" | "fill"
    kind: str  # "start" | "frame" | "end"
    total: int | None = None
    frame_id: str | None = None
    status: str | None = None  # "ok" | "skipped" | "failed"
    message: str | None = None


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


def _frame_failure(exc: BaseException) -> str:
    if isinstance(exc, CleanplateError):
        return str(exc)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"internal error: {type(exc).__name__}" + (f": {text}" if text else "")


def _fail(rec: dict[str, Any], exc: BaseException, stage: str, raise_errors: bool) -> None:
    """Record a frame's failure (one line) and log it; with ``raise_errors`` (``--debug``) internal
    errors propagate instead. Bad input (FrameError) is always only recorded."""
    if raise_errors and not isinstance(exc, FrameError):
        raise exc
    rec.update({"status": "failed", "error": _frame_failure(exc), "outputs": []})
    log.warning("%s %s failed: %s", stage, rec["frame_id"], rec["error"])


def _open_input(input_path: str | Path, config: Config) -> FrameSource:
    ic = config.input
    return open_source(input_path, recursive=ic.recursive, every=ic.every, limit=ic.limit, max_side=ic.max_side)


def _prepare_manifest(layout: Layout, stage: str, config: Config, force: bool
                      ) -> tuple[Manifest, str, dict[str, dict[str, Any]]]:
    """The stage's manifest, the current stage hash, and (with ``force``) the records it replaced."""
    stage_hash = config.stage_hash("segment" if stage == "segment" else "fill")
    manifest = Manifest(layout.state / f"{stage}.jsonl")
    previous: dict[str, dict[str, Any]] = {}
    if force:
        previous = manifest.reset()
    else:
        check_config_unchanged(layout, stage, manifest, stage_hash, config)
    parts = config.stage_parts("segment" if stage == "segment" else "fill")
    write_json(layout.state / f"{stage}.config.json", parts)
    return manifest, stage_hash, previous


# --------------------------------------------------------------------------------------- segment

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
    progress = progress or _noop
    layout = Layout(Path(out_dir), "." + config.output.plate_format)
    source = _open_input(input_path, config)
    layout.prepare(layout.instances, layout.masks)
    layout.clean_temp_files()
    manifest, stage_hash, previous = _prepare_manifest(layout, "segment", config, force)
    device = resolve_device(config.run.device)
    started = time.time()

    from cleanplate.segment import create_segmenter

    segmenter = create_segmenter(config, device)
    summary = StageSummary("segment", total=len(source))
    progress(ProgressEvent("segment", "start", total=len(source)))
    order: list[str] = []
    meta = MetadataWriter(layout, "segment", config, manifest)
    with manifest:
        for ref, loader in source:
            order.append(ref.frame_id)
            if manifest.is_done(ref.frame_id, stage_hash, layout.root):
                summary.skipped += 1
                meta.skip()
                progress(ProgressEvent("segment", "frame", frame_id=ref.frame_id, status="skipped"))
                continue
            old = manifest.records.get(ref.frame_id) or previous.get(ref.frame_id)
            rec = _segment_frame(ref, loader, segmenter, config, layout, stage_hash, raise_errors)
            _remove_stale(layout.root, old, rec)
            manifest.append(rec)
            summary.add(rec)
            meta.add(rec)
            progress(ProgressEvent("segment", "frame", frame_id=ref.frame_id, status=rec["status"],
                                   message=rec.get("error")))
            meta.maybe_flush()  # long runs: a progress summary on a time schedule
        summary.total = len(order)
        summary.seconds = time.time() - started
        summary.stats = meta.finish(order, summary.seconds)
        summary.failures = meta.failures
    run_json_update(layout, "segment", config, source.describe(), device,
                    [w.__dict__ for w in segmenter.weights_used()], summary)
    progress(ProgressEvent("segment", "end"))
    return RunSummary(layout.root, segment=summary)


def _segment_frame(ref: FrameRef, loader: Loader, segmenter: Any, config: Config, layout: Layout,
                   stage_hash: str, raise_errors: bool) -> dict[str, Any]:
    rec: dict[str, Any] = {"frame_id": ref.frame_id, "index": ref.index, "source": ref.source,
                           "stage_hash": stage_hash, "status": "ok", "error": None}
    timings: dict[str, float] = {}
    try:
        t = time.perf_counter()
        image = loader()
        timings["decode"] = time.perf_counter() - t
        t = time.perf_counter()
        result = segmenter.segment(image)
        timings["segment"] = time.perf_counter() - t
        t = time.perf_counter()
        chars = [i for i in result.instances if i.character]
        raw = M.combine((i.mask for i in chars), image.shape[:2])
        removal = M.dilate(raw, M.dilation_radius(config.masks.dilate, config.masks.dilate_relative, image.shape))
        timings["masks"] = time.perf_counter() - t
        t = time.perf_counter()
        outputs = _write_segment_outputs(ref.frame_id, image, result.instances, removal, config, layout)
        timings["write"] = time.perf_counter() - t
        rec.update({
            "shape": [int(image.shape[0]), int(image.shape[1])],
            "instances": [i.record() for i in result.instances],
            "n_instances": len(result.instances),
            "n_characters": len(chars),
            "coverage_raw": round(M.coverage(raw), 6),
            "coverage": round(M.coverage(removal), 6),
            "extra": result.extra,
            "outputs": outputs,
        })
    except Exception as exc:  # one frame's failure never stops the batch
        _fail(rec, exc, "segment", raise_errors)
    rec["timings"] = {k: round(v, 4) for k, v in timings.items()}
    return rec


def _write_segment_outputs(frame_id: str, image: np.ndarray, instances: list[Any], removal: np.ndarray,
                           config: Config, layout: Layout) -> list[str]:
    outputs = []
    oc = config.output
    for k, inst in enumerate(instances):
        if oc.save_instances:
            path = layout.cutout(frame_id, k)
            write_image(path, M.cutout(image, inst.mask, oc.context_mode))
            outputs.append(str(path.relative_to(layout.root)))
        if oc.save_masks:
            path = layout.instance_mask(frame_id, k)
            write_image(path, M.to_png(inst.mask))
            outputs.append(str(path.relative_to(layout.root)))
    path = layout.mask(frame_id)
    write_image(path, M.to_png(removal))  # written last: its presence means the frame's outputs exist
    outputs.append(str(path.relative_to(layout.root)))
    return outputs


def _remove_stale(root: Path, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
    """Delete outputs an earlier run wrote for this frame that the new record does not list."""
    if not old:
        return
    keep = set(new.get("outputs", []))
    for rel in old.get("outputs", []):
        if rel not in keep:
            (root / rel).unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------ fill

@dataclass(frozen=True)
class _FillContext:
    """What the fill helpers share for one stage run."""

    config: Config
    layout: Layout
    raise_errors: bool
    write_masks: bool  # write the mask actually filled beside plates of another folder
    checker: Any  # automatic plate checks, or None


@dataclass
class _FillItem:
    ref: FrameRef
    image: np.ndarray
    mask: np.ndarray
    rec: dict[str, Any]
    todo: bool = True


def _fill_inputs(mask_dir: Path, frames: str | Path | None, config: Config
                 ) -> tuple[FrameSource, dict[str, dict[str, Any]] | None, int]:
    """Frames to fill, the segment records (None for a foreign mask folder), and the extra dilation."""
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
    extra = config.fill.mask_dilate
    if extra is None:
        extra = 0 if seg_records is not None else config.masks.dilate
    return source, seg_records, extra


def _load_fill_input(ref: FrameRef, loader: Loader, mask_dir: Path, seg_records: dict[str, dict[str, Any]] | None,
                     extra_dilate: int) -> tuple[np.ndarray, np.ndarray]:
    """The frame (HxWx3 uint8 RGB) and its removal mask (HxW bool, extra dilation applied)."""
    if seg_records is not None:
        seg = seg_records.get(ref.frame_id)
        if seg is None or seg.get("status") != "ok":
            why = seg.get("error") if seg else "not segmented"
            raise FrameError(f"segmentation failed: {why}")
    image = loader()
    mpath = mask_dir / "masks" / f"{ref.frame_id}.png"
    if not mpath.is_file():
        raise FrameError(f"no mask masks/{ref.frame_id}.png in {mask_dir}")
    mask = read_mask(mpath)
    if mask.shape != image.shape[:2]:
        raise FrameError(f"mask is {mask.shape[1]}x{mask.shape[0]}, frame is {image.shape[1]}x{image.shape[0]}")
    return image, M.dilate(mask, extra_dilate)


def _create_checker(config: Config, device: str) -> Any:
    """The automatic plate checks (qa), or None when disabled."""
    if not config.qa.enabled:
        return None
    from cleanplate.qa import create_checker

    return create_checker(config, device)


def _read_run_json(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / "run.json").read_text())
    except (OSError, ValueError):
        return {}


def inpaint(
    mask_dir: str | Path,
    out_dir: str | Path,
    config: Config,
    *,
    frames: str | Path | None = None,
    force: bool = False,
    progress: ProgressFn | None = None,
    raise_errors: bool = False,
    inpainter: Any = None,
) -> RunSummary:
    """Fill the removal masks in ``mask_dir/masks/`` and write clean plates to ``out_dir/backgrounds/``.

    ``mask_dir`` is a segment output (frames found through its run.json) or any folder holding
    ``masks/<frame>.png`` named like the frames in ``frames``. ``inpainter``: one already built for
    ``config`` (``run`` builds it before segmenting, so missing weights fail before hours of work).
    """
    progress = progress or _noop
    mask_dir, layout = Path(mask_dir), Layout(Path(out_dir), "." + config.output.plate_format)
    source, seg_records, extra_dilate = _fill_inputs(mask_dir, frames, config)
    same_dir = mask_dir.resolve() == layout.root.resolve() if layout.root.exists() else False
    layout.prepare(layout.backgrounds, *(() if same_dir else (layout.masks,)))
    layout.clean_temp_files()
    manifest, stage_hash, _ = _prepare_manifest(layout, "fill", config, force)
    device = resolve_device(config.run.device)
    started = time.time()

    from cleanplate.fill import create_inpainter

    inpainter = inpainter if inpainter is not None else create_inpainter(config, device)
    ctx = _FillContext(config, layout, raise_errors, not same_dir, _create_checker(config, device))
    summary = StageSummary("fill", total=len(source))
    progress(ProgressEvent("fill", "start", total=len(source)))
    order: list[str] = []
    sequential = bool(getattr(inpainter, "sequential", False))
    meta = MetadataWriter(layout, "fill", config, manifest)

    def _finish(rec: dict[str, Any]) -> None:
        manifest.append(rec)
        summary.add(rec)
        meta.add(rec)
        progress(ProgressEvent("fill", "frame", frame_id=rec["frame_id"], status=rec["status"],
                               message=rec.get("error")))
        meta.maybe_flush()

    def prepared() -> Iterator[_FillItem]:
        """Frames with their masks, in order; failures are recorded here and not yielded.

        Done frames are skipped, except for sequential (temporal) fills, which get them as context
        with ``todo=False``.
        """
        for ref, loader in source:
            order.append(ref.frame_id)
            done = manifest.is_done(ref.frame_id, stage_hash, layout.root)
            if done:
                summary.skipped += 1
                meta.skip()
                progress(ProgressEvent("fill", "frame", frame_id=ref.frame_id, status="skipped"))
                if not sequential:
                    continue
            rec: dict[str, Any] = {"frame_id": ref.frame_id, "index": ref.index, "source": ref.source,
                                   "stage_hash": stage_hash, "status": "ok", "error": None,
                                   "method": config.fill.method, "extra_dilate": extra_dilate}
            try:
                t = time.perf_counter()
                image, mask = _load_fill_input(ref, loader, mask_dir, seg_records, extra_dilate)
                rec["timings"] = {"decode": round(time.perf_counter() - t, 4)}
            except Exception as exc:
                if done:
                    continue
                _fail(rec, exc, "fill", raise_errors)
                _finish(rec)
                continue
            yield _FillItem(ref, image, mask, rec, todo=not done)

    with manifest:
        if sequential:
            for item in _fill_sequence(prepared(), inpainter, ctx):
                _finish(item.rec)
        else:
            batch: list[_FillItem] = []
            for item in prepared():
                batch.append(item)
                if len(batch) >= config.fill.batch_size:
                    for done_item in _fill_batch(batch, inpainter, ctx):
                        _finish(done_item.rec)
                    batch.clear()
            for done_item in _fill_batch(batch, inpainter, ctx):
                _finish(done_item.rec)
        summary.total = len(order)
        summary.seconds = time.time() - started
        summary.stats = meta.finish(order, summary.seconds)
        summary.failures = meta.failures
    run_json_update(layout, "fill", config, source.describe(), device,
                    [w.__dict__ for w in inpainter.weights_used()], summary)
    progress(ProgressEvent("fill", "end"))
    return RunSummary(layout.root, fill=summary)


def _fill_batch(batch: list[_FillItem], inpainter: Any, ctx: _FillContext) -> Iterator[_FillItem]:
    """Fill a batch; if the batch call fails, retry frame by frame so only the bad frame fails."""
    if not batch:
        return
    t = time.perf_counter()
    try:
        results = inpainter.fill([b.image for b in batch], [b.mask for b in batch])
        per_frame = (time.perf_counter() - t) / len(batch)
        groups = [(b, r, per_frame) for b, r in zip(batch, results, strict=True)]
    except Exception as exc:
        if len(batch) == 1:
            _fail(batch[0].rec, exc, "fill", ctx.raise_errors)
            yield batch[0]
            return
        if ctx.raise_errors and not isinstance(exc, FrameError):
            raise
        for b in batch:
            yield from _fill_batch([b], inpainter, ctx)
        return
    for item, result, secs in groups:
        _save_fill(item, result, secs, ctx)
        yield item


def _fill_sequence(items: Iterator[_FillItem], inpainter: Any, ctx: _FillContext) -> Iterator[_FillItem]:
    """Sequential (temporal) fills see every frame in order; results come back for the todo ones."""
    from cleanplate.records import SequenceFrame

    by_id: dict[str, _FillItem] = {}

    def frames() -> Iterator[SequenceFrame]:
        for item in items:
            if item.todo:
                by_id[item.ref.frame_id] = item
            yield SequenceFrame(item.ref.frame_id, item.ref.index, item.image, item.mask, item.todo)

    t = time.perf_counter()
    for frame, result in inpainter.fill_sequence(frames()):
        item = by_id.pop(frame.frame_id)
        secs, t = time.perf_counter() - t, time.perf_counter()
        if isinstance(result, BaseException):
            _fail(item.rec, result, "fill", ctx.raise_errors)
        else:
            _save_fill(item, result, secs, ctx)
        yield item


def _save_fill(item: _FillItem, result: Any, secs: float, ctx: _FillContext) -> None:
    """Composite the fill into the frame (unmasked pixels untouched) and write the plate."""
    rec, config, layout, checker = item.rec, ctx.config, ctx.layout, ctx.checker
    try:
        t = time.perf_counter()
        plate = M.composite(item.image, result.plate, item.mask, config.masks.feather)
        path = layout.plate(item.ref.frame_id)
        write_image(path, plate, config.output.jpeg_quality)
        outputs = [str(path.relative_to(layout.root))]
        if ctx.write_masks:  # the mask actually filled, beside the plates of another folder
            mpath = layout.mask(item.ref.frame_id)
            write_image(mpath, M.to_png(item.mask))
            outputs.append(str(mpath.relative_to(layout.root)))
        if result.source_map is not None:  # 0 kept, 128 from other frames, 255 invented
            layout.sources.mkdir(exist_ok=True)
            spath = layout.source_map(item.ref.frame_id)
            write_image(spath, SOURCE_LEVELS[np.minimum(result.source_map, 2)])
            outputs.append(str(spath.relative_to(layout.root)))
        rec["timings"]["fill"] = round(secs, 4)
        rec["timings"]["write"] = round(time.perf_counter() - t, 4)
        rec.update({"coverage": round(M.coverage(item.mask), 6), "extra": result.extra,
                    "shape": [int(item.image.shape[0]), int(item.image.shape[1])], "outputs": outputs})
        if checker is not None:
            t = time.perf_counter()
            rec["checks"] = checker.check(item.image, plate, item.mask)
            rec["timings"]["checks"] = round(time.perf_counter() - t, 4)
    except Exception as exc:
        _fail(rec, exc, "fill", ctx.raise_errors)


# ------------------------------------------------------------------------------------------- run

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

    The fill method is loaded first: missing weights or dependencies fail before segmentation starts.
    """
    from cleanplate.fill import create_inpainter

    inpainter = create_inpainter(config, resolve_device(config.run.device))
    seg = segment(input_path, out_dir, config, force=force, progress=progress, raise_errors=raise_errors)
    fill = inpaint(out_dir, out_dir, config, frames=input_path, force=force, progress=progress,
                   raise_errors=raise_errors, inpainter=inpainter)
    summary = RunSummary(Path(out_dir), segment=seg.segment, fill=fill.fill)
    layout = Layout(Path(out_dir))
    run_json_update(layout, "summary", config, None, None, None, None, stats=summary.stats())
    return summary


__all__ = ["ProgressEvent", "RunSummary", "inpaint", "run", "segment"]
