"""Metadata files (instances_metadata.json, inpainting_metadata.json, run.json) and summaries."""

from __future__ import annotations

import json
import platform
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from typing import Any

from cleanplate.config import Config
from cleanplate.errors import OutputError
from cleanplate.io.manifest import Manifest
from cleanplate.io.outputs import Layout, write_json

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

    def add(self, rec: dict[str, Any]) -> None:
        if rec["status"] == "ok":
            self.done += 1
        else:
            self.failed += 1
            self.failures[rec["frame_id"]] = rec.get("error") or "failed"
        for k, v in (rec.get("timings") or {}).items():
            self.timings.setdefault(k, []).append(float(v))

    def seconds_per_frame(self) -> dict[str, float]:
        return {k: round(sum(v) / len(v), 4) for k, v in self.timings.items() if v}

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


def _ordered(manifest: Manifest, order: list[str]) -> dict[str, dict[str, Any]]:
    return {fid: manifest.records[fid] for fid in order if fid in manifest.records}


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 6) if values else None


def segment_metadata(manifest: Manifest, order: list[str], config: Config) -> dict[str, Any]:
    frames = _ordered(manifest, order)
    ok = [r for r in frames.values() if r["status"] == "ok"]
    n = len(frames)
    multi = sum(1 for r in ok if r.get("n_characters", 0) >= 2)
    seg_t = [r["timings"].get("segment") for r in ok if r.get("timings", {}).get("segment") is not None]
    summary = {
        "frames": n,
        "frames_ok": len(ok),
        "frames_failed": n - len(ok),
        "failed_fraction": round((n - len(ok)) / n, 4) if n else 0.0,
        "instances_total": sum(r.get("n_instances", 0) for r in ok),
        "characters_total": sum(r.get("n_characters", 0) for r in ok),
        "instances_per_frame": _mean([r.get("n_instances", 0) for r in ok]),
        "characters_per_frame": _mean([r.get("n_characters", 0) for r in ok]),
        "frames_with_2plus_characters": multi,
        "frames_with_2plus_characters_pct": round(100.0 * multi / len(ok), 2) if ok else 0.0,
        "frames_without_characters": sum(1 for r in ok if r.get("n_characters", 0) == 0),
        "mean_mask_coverage": _mean([r.get("coverage", 0.0) for r in ok]),
        "mean_mask_coverage_undilated": _mean([r.get("coverage_raw", 0.0) for r in ok]),
        "seconds_per_frame_segment": _mean(seg_t),
        "backend": config.segment.backend,
        "dilate_px": config.masks.dilate,
    }
    return {"summary": summary, "frames": frames}


def fill_metadata(manifest: Manifest, order: list[str], config: Config, seconds: float) -> dict[str, Any]:
    frames = _ordered(manifest, order)
    ok = [r for r in frames.values() if r["status"] == "ok"]
    n = len(frames)
    fill_t = [r["timings"]["fill"] for r in ok if "fill" in r.get("timings", {})]
    done_now = sum(1 for r in ok if "fill" in r.get("timings", {}))
    summary = {
        "frames": n,
        "frames_ok": len(ok),
        "frames_failed": n - len(ok),
        "success_rate": round(len(ok) / n, 4) if n else 0.0,
        "method": config.fill.method,
        "mean_mask_coverage": _mean([r.get("coverage", 0.0) for r in ok]),
        "seconds_per_frame_fill": _mean(fill_t),
        "images_per_s": round(done_now / seconds, 4) if seconds > 0 and done_now else None,
    }
    return {"summary": summary, "frames": frames}


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
        data["weights"] = [w for s in ("segment", "fill") for w in data.get(s, {}).get("weights", [])]
    write_json(path, data)
