"""Metadata files (instances_metadata.json, inpainting_metadata.json, run.json) and summaries.

Film scale: the per-frame records live in the stage manifest (append-only); the summaries are
kept incrementally (O(1) per frame); the metadata JSON files are written once per stage by
:class:`MetadataWriter`, streamed from the manifest, in the same format as ever.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from cleanplate.config import Config
from cleanplate.errors import OutputError
from cleanplate.io.manifest import Manifest
from cleanplate.io.outputs import _FILE_MODE, TMP_SUFFIX, Layout, json_default, write_json

_PACKAGES = ("cleanplate", "numpy", "opencv-python-headless", "onnxruntime", "pillow", "av", "pypatchmatch",
             "torch", "transformers", "scenedetect-headless")


@dataclass
class StageSummary:
    """Counts and figures of one stage of one run."""

    stage: str
    total: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    failures: dict[str, str] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, list[float]] = field(default_factory=dict)
    """Per timing key: [sum of seconds, number of frames] (O(1) memory per key)."""

    def add(self, rec: dict[str, Any]) -> None:
        if rec["status"] == "ok":
            self.done += 1
        else:
            self.failed += 1
            self.failures[rec["frame_id"]] = rec.get("error") or "failed"
        for k, v in (rec.get("timings") or {}).items():
            total = self.timings.setdefault(k, [0.0, 0.0])
            total[0] += float(v)
            total[1] += 1

    def seconds_per_frame(self) -> dict[str, float]:
        return {k: round(v[0] / v[1], 4) for k, v in self.timings.items() if v[1]}

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "total": self.total, "done": self.done, "skipped": self.skipped,
                "failed": self.failed, "seconds": round(self.seconds, 3),
                "seconds_per_frame": self.seconds_per_frame(),
                "images_per_s": round(self.done / self.seconds, 4) if self.seconds > 0 and self.done else None,
                "failures": self.failures}


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def check_config_unchanged(layout: Layout, stage: str, manifest: Manifest, stage_hash: str, config: Config) -> None:
    """Refuse to mix outputs of two configurations in one folder (``--force`` redoes instead)."""
    others = manifest.hashes() - {stage_hash}
    if not others:
        return
    changed: list[str] = []
    old_path = layout.state / f"{stage}.config.json"
    if old_path.is_file():
        try:
            old = _flatten(json.loads(old_path.read_text()))
            new = _flatten(config.stage_parts("segment" if stage == "segment" else "fill"))
            changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        except (OSError, ValueError):
            changed = []
    what = f" (changed: {', '.join(changed[:6])}{' ...' if len(changed) > 6 else ''})" if changed else ""
    raise OutputError(
        f"{layout.root} holds {stage} outputs made with a different configuration{what}; "
        "rerun with --force to redo them, or choose another output folder"
    )


class _Mean:
    """A running mean: O(1) per value."""

    __slots__ = ("n", "total")

    def __init__(self) -> None:
        self.n, self.total = 0, 0.0

    def add(self, value: float) -> None:
        self.n += 1
        self.total += float(value)

    def value(self, digits: int = 6) -> float | None:
        return round(self.total / self.n, digits) if self.n else None


class SegmentStats:
    """The summary of ``instances_metadata.json``, accumulated one segment record at a time."""

    def __init__(self) -> None:
        self.frames = self.ok = self.instances = self.characters = self.multi = self.without = 0
        self.inst_mean, self.char_mean = _Mean(), _Mean()
        self.cov, self.cov_raw, self.seg_t = _Mean(), _Mean(), _Mean()
        self.dilate_px: set[int] = set()  # the radii used (one per frame size with relative dilation)

    def add(self, rec: dict[str, Any]) -> None:
        self.frames += 1
        if rec.get("status") != "ok":
            return
        self.ok += 1
        ni, nc = rec.get("n_instances", 0), rec.get("n_characters", 0)
        self.instances += ni
        self.characters += nc
        self.inst_mean.add(ni)
        self.char_mean.add(nc)
        self.multi += nc >= 2
        self.without += nc == 0
        self.cov.add(rec.get("coverage", 0.0))
        self.cov_raw.add(rec.get("coverage_raw", 0.0))
        t = (rec.get("timings") or {}).get("segment")
        if t is not None:
            self.seg_t.add(t)
        if rec.get("dilate_px") is not None and len(self.dilate_px) < 16:
            self.dilate_px.add(int(rec["dilate_px"]))

    def summary(self, config: Config, seconds: float | None = None) -> dict[str, Any]:
        n, ok = self.frames, self.ok
        return {
            "frames": n,
            "frames_ok": ok,
            "frames_failed": n - ok,
            "failed_fraction": round((n - ok) / n, 4) if n else 0.0,
            "instances_total": self.instances,
            "characters_total": self.characters,
            "instances_per_frame": self.inst_mean.value(),
            "characters_per_frame": self.char_mean.value(),
            "frames_with_2plus_characters": self.multi,
            "frames_with_2plus_characters_pct": round(100.0 * self.multi / ok, 2) if ok else 0.0,
            "frames_without_characters": self.without,
            "mean_mask_coverage": self.cov.value(),
            "mean_mask_coverage_undilated": self.cov_raw.value(),
            "seconds_per_frame_segment": self.seg_t.value(),
            "backend": config.segment.backend,
            "dilate": config.masks.dilate,
            "dilate_relative": config.masks.dilate_relative,
            "dilate_px": (sorted(self.dilate_px)[0] if len(self.dilate_px) == 1
                          else sorted(self.dilate_px) or None),
        }


class FillStats:
    """The summary of ``inpainting_metadata.json``, accumulated one fill record at a time."""

    def __init__(self) -> None:
        self.frames = self.ok = self.filled = 0
        self.cov, self.fill_t = _Mean(), _Mean()

    def add(self, rec: dict[str, Any]) -> None:
        self.frames += 1
        if rec.get("status") != "ok":
            return
        self.ok += 1
        self.cov.add(rec.get("coverage", 0.0))
        t = (rec.get("timings") or {}).get("fill")
        if t is not None:
            self.filled += 1
            self.fill_t.add(t)

    def summary(self, config: Config, seconds: float | None = None) -> dict[str, Any]:
        n, ok = self.frames, self.ok
        return {
            "frames": n,
            "frames_ok": ok,
            "frames_failed": n - ok,
            "success_rate": round(ok / n, 4) if n else 0.0,
            "method": config.fill.method,
            "mean_mask_coverage": self.cov.value(),
            "seconds_per_frame_fill": self.fill_t.value(),
            "images_per_s": round(self.filled / seconds, 4) if seconds and seconds > 0 and self.filled else None,
        }


def _stats(stage: str) -> SegmentStats | FillStats:
    return SegmentStats() if stage == "segment" else FillStats()


def summarize(stage: str, records: Iterable[dict[str, Any]], config: Config,
              seconds: float | None = None) -> dict[str, Any]:
    """The metadata summary of ``stage`` ("segment" | "fill") over full frame records."""
    stats = _stats(stage)
    for rec in records:
        stats.add(rec)
    return stats.summary(config, seconds)


def _dumps(obj: Any, indent: str) -> str:
    """``json.dumps(obj, indent=2)`` as it appears nested at ``indent`` (JSON strings hold no raw newlines)."""
    return json.dumps(obj, indent=2, default=json_default).replace("\n", "\n" + indent)


class MetadataWriter:
    """Keeps a stage's metadata file (instances_ / inpainting_metadata.json) for the commit step.

    ``add(record)`` after each manifest append (O(1): running summary only); ``skip()`` for a frame
    a previous run finished; ``maybe_flush()`` rewrites the small ``OUT/.cleanplate/<stage>.summary.json``
    at most every ``every_s`` seconds (its size does not grow with the run); ``finish(order)`` writes
    the full ``{"summary": ..., "frames": {frame_id: record}}`` once, records streamed one at a time
    from the manifest file, atomically (temp + fsync + rename), and returns the summary.
    ``failures`` (frame id -> error) is filled by ``finish``.
    """

    def __init__(self, layout: Layout, stage: str, config: Config, manifest: Manifest, *,
                 every_s: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        if stage not in ("segment", "fill"):
            raise ValueError(f"no metadata file for stage {stage!r}")
        self.layout, self.stage, self.config, self.manifest = layout, stage, config, manifest
        self.path = layout.instances_metadata if stage == "segment" else layout.inpainting_metadata
        self.summary_path = layout.state / f"{stage}.summary.json"
        self.every_s, self._clock = every_s, clock
        self._started = clock()
        self._last_flush = self._started
        self._running = _stats(stage)
        self.skipped = 0
        self.failures: dict[str, str] = {}

    def add(self, record: dict[str, Any]) -> None:
        """Count one committed frame record (the dict just appended to the manifest)."""
        self._running.add(record)

    def skip(self, n: int = 1) -> None:
        """Count frames skipped because a previous run finished them."""
        self.skipped += n

    def maybe_flush(self) -> bool:
        """Rewrite the progress summary when ``every_s`` seconds passed since the last one; True if written."""
        if self._clock() - self._last_flush < self.every_s:
            return False
        self.flush()
        return True

    def flush(self, summary: dict[str, Any] | None = None, finished: bool = False,
              written: dict[str, Any] | None = None) -> None:
        """Write ``OUT/.cleanplate/<stage>.summary.json``: this run's counts so far (or the final summary;
        ``written`` then identifies the metadata file written, so an idle rerun can keep it)."""
        seconds = self._clock() - self._started
        write_json(self.summary_path, {
            "stage": self.stage,
            "finished": finished,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "committed": self._running.frames,
            "skipped": self.skipped,
            "summary": summary if summary is not None else self._running.summary(self.config, seconds),
            **({"written": written} if written else {}),
        })
        self._last_flush = self._clock()

    def _fingerprint(self, order: list[str]) -> dict[str, Any]:
        """What the metadata file's content depends on: the manifest file (its size, inode and mtime:
        it is only appended to, or replaced by ``--force``) and the frame order."""
        h = hashlib.sha256()
        for fid in order:
            h.update(fid.encode() + b"\n")
        try:
            st = os.stat(self.manifest.path)
            manifest = [st.st_size, st.st_ino, st.st_mtime_ns]
        except OSError:
            manifest = None
        return {"manifest": manifest, "order": h.hexdigest(), "frames": len(order)}

    def _unchanged(self, fingerprint: dict[str, Any]) -> dict[str, Any] | None:
        """The summary of the metadata file already there, when nothing it depends on changed since."""
        if self._running.frames or not self.path.is_file():
            return None
        try:
            prev = json.loads(self.summary_path.read_text())
        except (OSError, ValueError):
            return None
        written = prev.get("written") if isinstance(prev, dict) else None
        if not (prev.get("finished") and isinstance(written, dict) and isinstance(prev.get("summary"), dict)):
            return None
        if written.get("fingerprint") != fingerprint or written.get("bytes") != self.path.stat().st_size:
            return None
        return dict(prev["summary"])

    def finish(self, order: Iterable[str], seconds: float | None = None) -> dict[str, Any]:
        """Write the stage's metadata file for the frames in ``order`` (their last records); the summary.

        A rerun that committed nothing keeps the file an earlier run wrote for the same manifest and
        frames (resume of a finished film in seconds)."""
        seconds = self._clock() - self._started if seconds is None else seconds
        order = list(order)
        fingerprint = self._fingerprint(order)
        kept = self._unchanged(fingerprint)
        if kept is not None:
            records = self.manifest.records
            self.failures = {fid: rec.get("error") or "failed" for fid in order
                             if (rec := records.get(fid)) is not None and rec.get("status") != "ok"}
            return kept
        stats = _stats(self.stage)
        self.failures = {}
        root, state = self.path.parent, self.layout.state
        spool_fd, spool = tempfile.mkstemp(prefix=f".{self.path.name}.frames.", suffix=TMP_SUFFIX, dir=state)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=TMP_SUFFIX, dir=root)
        try:
            n = 0
            with os.fdopen(spool_fd, "w+", encoding="utf-8") as frames:
                for rec in self.manifest.iter_records(order):
                    stats.add(rec)
                    if rec.get("status") != "ok":
                        self.failures[rec["frame_id"]] = rec.get("error") or "failed"
                    frames.write(("," if n else "") + "\n    " + json.dumps(rec["frame_id"]) + ": "
                                 + _dumps(rec, "    "))
                    n += 1
                summary = stats.summary(self.config, seconds)
                if isinstance(self._running, FillStats):  # the speed of this run: frames it filled
                    filled = self._running.filled
                    summary["images_per_s"] = round(filled / seconds, 4) if seconds and seconds > 0 and filled else None
                frames.seek(0)
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    out.write('{\n  "summary": ' + _dumps(summary, "  ") + ',\n  "frames": {')
                    shutil.copyfileobj(frames, out, 1 << 20)
                    out.write("\n  }\n}\n" if n else "}\n}\n")
                    out.flush()
                    os.fsync(out.fileno())
            os.chmod(tmp, _FILE_MODE)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        finally:
            Path(spool).unlink(missing_ok=True)
        self.flush(summary, finished=True, written={"fingerprint": fingerprint, "bytes": self.path.stat().st_size})
        return summary


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    return out


def run_json_update(layout: Layout, stage: str, config: Config, source: dict[str, Any] | None,
                    device: str | None, weights: list[dict[str, Any]] | None, summary: StageSummary | None,
                    stats: dict[str, Any] | None = None) -> None:
    """Merge this stage's facts into OUT/run.json (resolved config, versions, weights, timings)."""
    path = layout.run_json
    try:
        data = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        data = {}
    data["cleanplate"] = package_versions().get("cleanplate")
    data["config"] = config.to_dict()
    data["stage_hashes"] = {**data.get("stage_hashes", {}),
                            stage: config.stage_hash("segment" if stage == "segment" else "fill")}
    data["versions"] = package_versions()
    data["command"] = sys.argv
    if stage == "summary":
        data["summary"] = stats
    else:
        data[stage] = {
            "input": source,
            "device": device,
            "weights": weights or [],
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **(summary.to_dict() if summary else {}),
        }
        used = [w for s in ("segment", "fill") for w in data.get(s, {}).get("weights", [])]
        # one entry per file: the segmenter and the plate checks share u2netp
        data["weights"] = list({(w.get("name"), w.get("sha256")): w for w in used}.values())
    write_json(path, data)
