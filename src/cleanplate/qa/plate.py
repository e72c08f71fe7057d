"""One frame's fill outcome as the training-set verdict reads it, parsed from the metadata records.

:func:`plate_from_record` turns a record of ``inpainting_metadata.json`` into a :class:`Plate`;
:func:`segment_facts` keeps the two fields of an ``instances_metadata.json`` record the verdict
needs (the shot and the characters' track ids). The report (``cleanplate.report``) and the dataset
steps (``cleanplate.dataset``) both parse the records here, so they see the same plates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cleanplate.io.outputs import Layout

ShotId = str | int
"""A shot id as the metadata carries it (``"shot0003"`` from the shots stage; ints in older outputs)."""


@dataclass(frozen=True)
class Plate:
    """One frame's fill outcome, as the verdict and the dataset steps see it.

    ``coverage`` is the masked fraction of the frame; ``invented`` the fraction of the frame made
    up by the inpainter (``coverage * inpainted_fraction`` for temporal fills, else ``coverage``).
    """

    frame_id: str
    index: int
    status: str  # ok | failed | missing (record ok, plate file gone)
    path: Path | None
    mask_path: Path | None
    source: str | None
    coverage: float = 0.0
    invented: float = 0.0
    flags: tuple[str, ...] = ()
    checks: dict[str, Any] | None = None
    shot_id: ShotId | None = None
    error: str | None = None
    shape: tuple[int, int] | None = None  # H, W

    @property
    def usable(self) -> bool:
        return self.status == "ok" and self.path is not None

    @property
    def flagged(self) -> bool:
        return bool(self.flags)

    @property
    def shot_residue(self) -> float | None:
        """The residue score when the frame was checked with its shot (``detail.shot_neighbours``),
        else None: a frame checked alone has the frame-only score, on another scale."""
        checks = self.checks or {}
        detail = checks.get("detail") if isinstance(checks.get("detail"), dict) else {}
        score = checks.get("residue")
        if not detail.get("shot_neighbours") or not isinstance(score, int | float):
            return None
        return float(score)

    def stamp(self) -> list[int]:
        """Size and mtime (ns) of the plate file: the cheap identity used for resume and caches."""
        return file_stamp(self.path)


def file_stamp(path: Path | None) -> list[int]:
    if path is None:
        return [-1, -1]
    try:
        st = path.stat()
    except OSError:
        return [-1, -1]
    return [int(st.st_size), int(st.st_mtime_ns)]


def shot_id_of(*records: Any) -> ShotId | None:
    """The first shot id (a non-empty string or an int) among ``records`` and their ``extra``."""
    for rec in records:
        if not isinstance(rec, dict):
            continue
        for holder in (rec, rec.get("extra")):
            v = holder.get("shot_id") if isinstance(holder, dict) else None
            if (isinstance(v, str) and v) or (isinstance(v, int) and not isinstance(v, bool)):
                return v
    return None


def read_checks(rec: dict[str, Any]) -> tuple[dict[str, Any] | None, tuple[str, ...]]:
    """The check results of a fill record (``checks``, else ``extra.checks``) and their flags."""
    checks = rec.get("checks")
    if not isinstance(checks, dict):
        extra = rec.get("extra") if isinstance(rec.get("extra"), dict) else {}
        checks = extra.get("checks") if isinstance(extra.get("checks"), dict) else None
    if checks is None:
        return None, ()
    raw = checks.get("flags") or []
    flags = tuple(str(f) for f in raw) if isinstance(raw, list | tuple) else (str(raw),)
    return checks, flags


def _float(v: Any, default: float = 0.0) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return default


def _plate_path(layout: Layout, fid: str, rec: dict[str, Any]) -> Path | None:
    for rel in rec.get("outputs") or []:
        if str(rel).startswith("backgrounds/"):
            p = layout.root / rel
            if p.is_file():
                return p
    for ext in (".jpg", ".png", ".jpeg", ".webp"):
        p = layout.backgrounds / f"{fid}{ext}"
        if p.is_file():
            return p
    return None


def plate_from_record(out: Path, k: int, fid: str, rec: Any) -> Plate:
    """The :class:`Plate` of frame ``fid`` from its ``inpainting_metadata.json`` record (``k``: its
    position in the file, the index when the record has none). Looks for the plate and mask files."""
    layout = Layout(Path(out))
    rec = rec if isinstance(rec, dict) else {}
    path = _plate_path(layout, fid, rec)
    status = str(rec.get("status", "ok"))
    if status == "ok" and path is None:
        status = "missing"
    extra = rec.get("extra") if isinstance(rec.get("extra"), dict) else {}
    coverage = _float(rec.get("coverage"))
    invented = coverage
    if "inpainted_fraction" in extra:  # share of the masked area the inpainter made up
        invented = coverage * _float(extra["inpainted_fraction"], 1.0)
    checks, flags = read_checks(rec)
    mask = layout.mask(fid)
    shape = rec.get("shape")
    return Plate(
        frame_id=fid, index=int(rec.get("index", k)), status=status, path=path,
        mask_path=mask if mask.is_file() else None, source=rec.get("source"),
        coverage=coverage, invented=round(invented, 6), flags=flags, checks=checks,
        shot_id=shot_id_of(rec), error=rec.get("error"),
        shape=(int(shape[0]), int(shape[1])) if isinstance(shape, list) and len(shape) == 2 else None,
    )


SegmentFacts = tuple[ShotId | None, frozenset[int]]
"""What the verdict reads of a segment record: the frame's shot id and its characters' track ids."""
NO_SEGMENT: SegmentFacts = (None, frozenset())


def segment_facts(rec: Any) -> SegmentFacts:
    """The shot id and the characters' track ids of an ``instances_metadata.json`` record."""
    if not isinstance(rec, dict):
        return NO_SEGMENT
    tracks = set()
    for inst in rec.get("instances") or []:
        if isinstance(inst, dict) and inst.get("character", True) and isinstance(inst.get("track_id"), int):
            tracks.add(int(inst["track_id"]))
    return shot_id_of(rec), frozenset(tracks)


__all__ = ["NO_SEGMENT", "Plate", "SegmentFacts", "ShotId", "file_stamp", "plate_from_record", "read_checks",
           "segment_facts", "shot_id_of"]
