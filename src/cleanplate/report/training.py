"""What the training set takes, as the report shows it: the verdict ``cleanplate export-lora`` applies.

The report calls the same function as the export (:func:`cleanplate.qa.verdict.verdicts`), on the
same records, with the export's settings: those of the last export of this folder
(``OUT/dataset/export.json``), else the export's defaults; dedupe's kept list and groups come from
``OUT/dataset/dedupe.json`` as the export reads them. So every plate the export leaves out is listed
here with the reason the export writes into ``export.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cleanplate.qa.plate import plate_from_record, segment_facts
from cleanplate.qa.verdict import EXPORT_RESIDUE, dedupe_inputs, reason_kind, verdicts
from cleanplate.report.frames import FrameInfo, _read_json


@dataclass
class TrainingView:
    """The verdict per frame id (None: taken) and the facts the report prints next to it."""

    reasons: dict[str, str | None] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    source: str = "the defaults of cleanplate export-lora"

    @property
    def left_out(self) -> dict[str, str]:
        return {fid: why for fid, why in self.reasons.items() if why is not None}

    def counts(self) -> dict[str, int]:
        counts = {"near_duplicates": 0, "flagged": 0, "rejected": 0, "failed": 0, "other": 0}
        for why in self.left_out.values():
            counts[reason_kind(why)] += 1
        return counts

    def note(self) -> str:
        parts = [f"{n} {k.replace('_', ' ')}" for k, n in self.counts().items() if n]
        s = self.settings
        how = (f"max residue {s['max_residue']:g}" + (", flagged plates included" if s["include_flagged"] else "")
               + (", dedupe's kept list" if s["kept"] else "") + (", masked loss" if s["need_mask"] else ""))
        return f"{', '.join(parts) or 'none'}; as {self.source} ({how})"


def training_view(out: Path, frames: list[FrameInfo]) -> TrainingView:
    """The training-set verdict of every frame that has a fill record (see the module docstring)."""
    export = _read_json(out / "dataset" / "export.json")
    settings = export.get("settings") if isinstance(export.get("settings"), dict) else {}
    dedupe = _read_json(out / "dataset" / "dedupe.json")
    kept, groups = dedupe_inputs(dedupe)
    if not settings.get("use_dedupe", True) or not dedupe:
        kept = None
    try:
        max_residue = float(settings.get("max_residue", EXPORT_RESIDUE))
    except (TypeError, ValueError):
        max_residue = EXPORT_RESIDUE
    include_flagged = bool(settings.get("include_flagged", False))
    need_mask = bool(settings.get("masked_loss", False))
    plates = [plate_from_record(out, k, f.frame_id, f.fill) for k, f in enumerate(frames) if f.fill]
    seg = {f.frame_id: segment_facts(f.segment) for f in frames if f.segment}
    reasons = verdicts(plates, seg, max_residue=max_residue, kept=kept, groups=groups,
                       include_flagged=include_flagged, need_mask=need_mask, decisions=_decisions(out))
    view = TrainingView(reasons, {"max_residue": max_residue, "include_flagged": include_flagged,
                                  "kept": kept is not None, "need_mask": need_mask})
    if settings:
        view.source = "the last cleanplate export-lora of this folder"
    return view


__all__ = ["TrainingView", "training_view"]


def _decisions(out: Path) -> dict[str, str]:
    """A person's accept / reject per frame (``OUT/review.json``); none when it cannot be read (the
    report still opens; export-lora and dedupe refuse an unreadable one)."""
    from cleanplate.errors import InputError
    from cleanplate.io.review import load_review

    try:
        return load_review(out).decisions
    except InputError:
        return {}
