"""Each instance's verdict and evidence as the report shows them (issue 26).

A segment record's ``instances`` hold, per candidate, ``character`` (the verdict), ``reason`` and
``evidence`` (``concept`` {label, score} or None, ``concept_model``, ``moving`` and ``change``
(shares 0..1), ``frames``, ``detected``, ``judged``, ``run_frames``). The table's page files carry
them compactly (:func:`compact`, read by ``_table.js.j2``); the sample and flagged views render
:func:`instance_rows`. Both say the same words (:func:`evidence_text` and the script's ``evidenceText``).
"""

from __future__ import annotations

import math
from typing import Any

MAX_LISTED = 24
"""Instances listed per frame; the rest are counted."""


def _instances(seg: dict[str, Any]) -> list[dict[str, Any]]:
    insts = seg.get("instances")
    return [i for i in insts if isinstance(i, dict)] if isinstance(insts, list) else []


def _share(v: Any) -> float | None:
    return round(float(v), 3) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def all_scenery(seg: dict[str, Any]) -> bool:
    """The frame had detections and every one was judged scenery (its mask holds no character)."""
    insts = _instances(seg)
    return bool(insts) and not any(i.get("character", True) for i in insts)


def has_scenery(seg: dict[str, Any]) -> bool:
    """At least one of the frame's detections was judged scenery."""
    return any(not i.get("character", True) for i in _instances(seg))


def compact(seg: dict[str, Any]) -> list[list[Any]]:
    """Per instance ``[character 1/0, reason, concept label, concept score, concept model, moving, change,
    detected, frames, track id]`` (None where the record has no such evidence), at most :data:`MAX_LISTED`."""
    rows = []
    for inst in _instances(seg)[:MAX_LISTED]:
        ev = inst.get("evidence") if isinstance(inst.get("evidence"), dict) else {}
        concept = ev.get("concept") if isinstance(ev.get("concept"), dict) else {}
        rows.append([1 if inst.get("character", True) else 0, str(inst.get("reason") or ""),
                     concept.get("label"), _share(concept.get("score")), ev.get("concept_model"),
                     _share(ev.get("moving")), _share(ev.get("change")), ev.get("detected"), ev.get("frames"),
                     inst.get("track_id")])
    return rows


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.0f} %"


def evidence_text(row: list[Any]) -> str:
    """The key figures of one :func:`compact` row: concept, moving, change, frames detected."""
    _, _, label, score, model, moving, change, detected, frames, _ = row
    if label is not None:
        concept = f"concept {label} {score:.2f}" if score is not None else f"concept {label}"
    elif model:
        concept = f"not named by {model}"
    else:
        concept = "no concept model"
    parts = [concept, f"moving {_pct(moving)}", f"change {_pct(change)}"]
    if isinstance(detected, int) and isinstance(frames, int):
        parts.append(f"detected in {detected} of {frames} frames")
    return " · ".join(parts)


def instance_rows(seg: dict[str, Any]) -> list[dict[str, Any]]:
    """The frame's instances for the sample and flagged views: verdict, evidence text, reason."""
    out = []
    for k, row in enumerate(compact(seg)):
        track = f"track {row[9]}" if row[9] is not None else f"instance {k}"
        out.append({"verdict": "character" if row[0] else "scenery", "track": track,
                    "evidence": evidence_text(row), "reason": row[1]})
    return out


def verdict_summary(seg: dict[str, Any]) -> str:
    """``"2 character(s), 1 scenery"``; ``""`` when the frame has no instances."""
    insts = _instances(seg)
    if not insts:
        return ""
    chars = sum(1 for i in insts if i.get("character", True))
    return f"{chars} character(s), {len(insts) - chars} scenery"


__all__ = ["MAX_LISTED", "all_scenery", "compact", "evidence_text", "has_scenery", "instance_rows", "verdict_summary"]
