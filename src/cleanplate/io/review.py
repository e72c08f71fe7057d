"""``OUT/review.json``: a person's decisions and corrections, stored with the run.

Layout (JSON object, written atomically)::

    {"version": 1,
     "decisions": {"<frame id>": "accept" | "reject"},
     "corrections": [
        {"id": "c1", "kind": "point", "frame_id": F, "shot_id": S, "frames": [...], "x": 120.0, "y": 80.5},
        {"id": "c2", "kind": "remove" | "add", "frame_id": F, "shot_id": S, "frames": [...],
         "radius": 6.0, "points": [[x, y], ...]}]}

Coordinates are pixels of the frame as decoded (x right, y down). ``frames``: the frame ids of the
shot the correction applies to (the whole shot, as the run that was reviewed cut it). A decision
is per plate; a correction is per shot: the pipeline redoes the segment and fill of every frame
whose :func:`frame_hashes` entry differs from the one its manifest record carries.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cleanplate.errors import InputError
from cleanplate.io.outputs import write_json

REVIEW_FILE = "review.json"
DECISIONS = ("accept", "reject")
KINDS = ("point", "remove", "add")
MAX_POINTS = 4096
MAX_RADIUS = 512.0


@dataclass
class Review:
    """The parsed review file: ``decisions`` frame id -> accept | reject; ``corrections`` (see module doc)."""

    decisions: dict[str, str] = field(default_factory=dict)
    corrections: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"version": 1, "decisions": dict(sorted(self.decisions.items())), "corrections": self.corrections}

    def for_frame(self, frame_id: str) -> list[dict[str, Any]]:
        """The corrections whose shot holds ``frame_id``, in the order they were made."""
        return [c for c in self.corrections if frame_id in c["frames"]]


def _number(v: Any, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise InputError(f"{what} must be a finite number")
    return float(v)


def check_correction(c: Any) -> dict[str, Any]:
    """A validated copy of one correction (raises :class:`InputError` naming what is wrong)."""
    if not isinstance(c, dict):
        raise InputError("a correction must be a JSON object")
    kind = c.get("kind")
    if kind not in KINDS:
        raise InputError(f"correction kind must be one of {', '.join(KINDS)}")
    out: dict[str, Any] = {"id": str(c.get("id") or ""), "kind": kind}
    for key in ("frame_id", "shot_id"):
        if not isinstance(c.get(key), str) or not c[key]:
            raise InputError(f"correction {key} must be a non-empty string")
        out[key] = c[key]
    frames = c.get("frames")
    if not isinstance(frames, list) or not frames or not all(isinstance(f, str) for f in frames) \
            or c["frame_id"] not in frames:
        raise InputError("correction frames must list the shot's frame ids, its frame among them")
    out["frames"] = list(frames)
    if kind == "point":
        out["x"], out["y"] = _number(c.get("x"), "x"), _number(c.get("y"), "y")
    else:
        pts = c.get("points")
        if not isinstance(pts, list) or not 0 < len(pts) <= MAX_POINTS:
            raise InputError(f"brush points must be a list of 1 to {MAX_POINTS} [x, y] pairs")
        good = []
        for p in pts:
            if not isinstance(p, list) or len(p) != 2:
                raise InputError("each brush point must be [x, y]")
            good.append([_number(p[0], "x"), _number(p[1], "y")])
        out["points"] = good
        r = _number(c.get("radius"), "radius")
        if not 0 < r <= MAX_RADIUS:
            raise InputError(f"brush radius must be in (0, {MAX_RADIUS:g}]")
        out["radius"] = r
    return out


def parse(data: Any) -> Review:
    """A :class:`Review` from the file's JSON (raises :class:`InputError` when malformed)."""
    if not isinstance(data, dict):
        raise InputError("review.json must hold a JSON object")
    dec = data.get("decisions", {})
    if not isinstance(dec, dict) or not all(isinstance(k, str) and v in DECISIONS for k, v in dec.items()):
        raise InputError("review decisions must map frame ids to accept or reject")
    corr = data.get("corrections", [])
    if not isinstance(corr, list):
        raise InputError("review corrections must be a list")
    return Review(dict(dec), [check_correction(c) for c in corr])


def load_review(out: str | Path) -> Review:
    """``OUT/review.json`` (an empty review when there is none). A file that cannot be parsed is an
    :class:`InputError`: corrections are never silently dropped."""
    path = Path(out) / REVIEW_FILE
    if not path.is_file():
        return Review()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc
    return parse(data)


def save_review(out: str | Path, review: Review) -> Path:
    """Write ``OUT/review.json`` atomically."""
    path = Path(out) / REVIEW_FILE
    write_json(path, review.to_dict())
    return path


def frame_hashes(review: Review) -> dict[str, str]:
    """Frame id -> a hash of the corrections that apply to it (frames without any are absent). A
    frame whose manifest record carries another hash (or none) is redone."""
    per: dict[str, list[dict[str, Any]]] = {}
    for c in review.corrections:
        for fid in c["frames"]:
            per.setdefault(fid, []).append(c)
    return {fid: hashlib.sha256(json.dumps(cs, sort_keys=True).encode()).hexdigest()[:16] for fid, cs in per.items()}


__all__ = ["DECISIONS", "KINDS", "REVIEW_FILE", "Review", "check_correction", "frame_hashes", "load_review",
           "parse", "save_review"]
