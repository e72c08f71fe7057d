"""Terminal output: rich progress bars per stage, JSON-lines logging, the final summary."""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from cleanplate.pipeline import ProgressEvent, RunSummary

err_console = Console(stderr=True)
out_console = Console()


class _RateColumn(ProgressColumn):
    """Frames committed per second of wall time since the stage started (what the summary's images/s
    measures too), not rich's estimate over the last few updates, which a window committed at once
    would blow up."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed
        done = task.completed - task.fields.get("skipped", 0)
        if not elapsed or done <= 0:
            return Text("-- frames/s", style="progress.data.speed")
        return Text(f"{done / elapsed:.2f} frames/s", style="progress.data.speed")


class Reporter:
    """Turns library progress events into rich progress bars (one per stage), JSON lines, or nothing."""

    def __init__(self, quiet: bool = False, log_json: bool = False) -> None:
        self.quiet, self.log_json = quiet, log_json
        self.progress: Progress | None = None
        self.tasks: dict[str, Any] = {}
        self.counts: dict[str, dict[str, int]] = {}
        self.work: dict[str, dict[str, int]] = {}
        self.open: set[str] = set()
        self.lock = threading.Lock()  # events come from the model stages and the writer thread

    def __call__(self, ev: ProgressEvent) -> None:
        with self.lock:
            self._event(ev)

    def _note(self, stage: str) -> str:
        counts = self.counts[stage]
        parts = [f"{v} {k}" for k, v in counts.items() if v and k != "ok"]
        committed = sum(counts.values())
        ahead = {k: v - committed for k, v in self.work.get(stage, {}).items() if v > committed}
        parts += [f"{k} +{v}" for k, v in ahead.items()]  # frames worked on, not yet committed
        return ", ".join(parts)

    def _event(self, ev: ProgressEvent) -> None:
        if self.log_json:
            print(json.dumps({k: v for k, v in ev.__dict__.items() if v is not None}), flush=True)
            return
        if self.quiet:
            return
        if ev.kind == "start":
            if self.progress is None:
                self.progress = Progress(
                    TextColumn("[bold]{task.description:<8}"), BarColumn(), MofNCompleteColumn(), _RateColumn(),
                    TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[note]}"),
                    console=err_console, transient=False,
                )
                self.progress.start()
            self.tasks[ev.stage] = self.progress.add_task(ev.stage, total=ev.total or None, note="", skipped=0)
            self.counts[ev.stage] = {"ok": 0, "skipped": 0, "failed": 0}
            self.work[ev.stage] = {}
            self.open.add(ev.stage)
        elif ev.kind == "work" and self.progress is not None and ev.stage in self.tasks and ev.step:
            steps = self.work[ev.stage]
            steps[ev.step] = steps.get(ev.step, 0) + 1
            self.progress.update(self.tasks[ev.stage], note=self._note(ev.stage))
        elif ev.kind == "frame" and self.progress is not None and ev.stage in self.tasks:
            counts = self.counts[ev.stage]
            counts[ev.status or "ok"] = counts.get(ev.status or "ok", 0) + 1
            self.progress.update(self.tasks[ev.stage], advance=1, note=self._note(ev.stage),
                                 skipped=counts["skipped"])
            if ev.status == "failed":
                self.progress.console.print(f"[yellow]{ev.stage}: {ev.frame_id} failed: {ev.message}")
        elif ev.kind == "end" and self.progress is not None:
            if ev.message:
                self.progress.console.print(f"{ev.stage}: {ev.message}")
            self.open.discard(ev.stage)
            if not self.open:
                self.progress.stop()
                self.progress = None
                self.tasks.clear()


def _fmt(v: Any, pct: bool = False) -> str:
    if v is None:
        return "-"
    if pct:
        return f"{100 * v:.1f} %"
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def print_summary(summary: RunSummary, log_json: bool = False, quiet: bool = False) -> None:
    """The final summary: frames done/skipped/failed, the workflow's statistics, seconds per frame."""
    stats = summary.stats()
    if log_json:
        data = {"summary": stats, "stages": {s.stage: s.to_dict() for s in (summary.segment, summary.fill) if s}}
        print(json.dumps(data), flush=True)
        return
    if quiet:
        return
    t = Table(title=f"cleanplate — {summary.out_dir}", show_header=True, header_style="bold")
    t.add_column("stage")
    for col in ("frames", "done", "skipped", "failed", "s/frame", "frames/s"):
        t.add_column(col, justify="right")
    for s in (summary.segment, summary.fill):
        if s is None:
            continue
        d = s.to_dict()
        spf = d["seconds_per_frame"].get("segment" if s.stage == "segment" else "fill")
        t.add_row(s.stage, str(s.total), str(s.done), str(s.skipped), str(s.failed), _fmt(spf), _fmt(d["images_per_s"]))
    out_console.print(t)
    lines = []
    if summary.segment is not None:
        st = summary.segment.stats
        lines += [
            f"instances per frame (mean): {_fmt(st.get('instances_per_frame'))}, "
            f"characters per frame: {_fmt(st.get('characters_per_frame'))}",
            f"frames with >= 2 characters: {_fmt(st.get('frames_with_2plus_characters_pct'))} %",
            f"mean mask coverage: {_fmt(st.get('mean_mask_coverage'), pct=True)} "
            f"(before dilation {_fmt(st.get('mean_mask_coverage_undilated'), pct=True)})",
        ]
    if summary.fill is not None:
        st = summary.fill.stats
        lines.append(f"fill: {st.get('method')}, success {_fmt(st.get('success_rate'), pct=True)}")
    stage_spf = {}
    for s in (summary.segment, summary.fill):
        if s is not None:
            stage_spf.update({f"{s.stage}.{k}": v for k, v in s.seconds_per_frame().items()})
    if stage_spf:
        lines.append("seconds per frame: " + ", ".join(f"{k} {v:.3f}" for k, v in stage_spf.items()))
    failed = summary.failed_frames
    lines.append(f"failed frames: {len(failed)} of {summary.frames_total} ({_fmt(summary.failed_fraction, pct=True)})")
    for fid, reason in list(failed.items())[:20]:
        lines.append(f"  {fid}: {reason}")
    if len(failed) > 20:
        lines.append(f"  ... and {len(failed) - 20} more (see the metadata files)")
    for line in lines:
        out_console.print(line, highlight=False)
    sys.stdout.flush()
