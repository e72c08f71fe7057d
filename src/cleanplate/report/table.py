"""The report's table of every frame, paged from files so that a film's frames are not embedded whole.

Files written into ``OUT/report_files/data/`` (plain ``<script>`` files: the page works from
``file://`` where ``fetch()`` does not; the report loads them on demand):

* ``index.js``: counts, page sizes, thresholds, and one entry per shot (frame range, flagged, failed
  and left-out counts, a strip of up to :data:`STRIP` plates) — ``cpReport.index({...})``;
* ``page_NNNNN.js``: the rows of :data:`PAGE` frames in frame order (id, shot, status, coverage,
  characters, check scores and flags, links to the original, plate and mask, why the training set
  leaves the plate out, each instance's verdict, reason and evidence) — ``cpReport.page(n, [...])``;
* ``cols_NNNNN.js``: the sortable and filterable columns of :data:`COLS` frames (shot, coverage,
  scores, flags as bits, failed, left out, detections all judged scenery) — ``cpReport.cols(n, {...})``; loaded only when the user sorts or
  filters, so opening the report reads one index and one page.

Originals come from ``OUT/thumbs/`` (any input) or the source file (folder input); plates and masks
are linked where they are, so writing the table costs a few ``stat`` calls per frame: linear in
the frames.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from cleanplate.io.outputs import atomic_write_bytes
from cleanplate.qa.checks import CHECKS
from cleanplate.qa.plate import ShotId, shot_id_of
from cleanplate.report.evidence import all_scenery, compact
from cleanplate.report.frames import FILES_DIR, FrameInfo, _rel, find_plate, original_path

DATA_DIR = "data"
PAGE = 100
"""Frames per data page (the table shows 50 rows at a time)."""
COLS = 5000
"""Frames per column chunk."""
STRIP = 8
"""Plates shown per shot strip."""

FLAG_BITS = {name: 1 << k for k, name in enumerate(CHECKS)}
"""Bit of each check in the ``flags`` column."""


def _num(v: Any, digits: int = 4) -> float | None:
    """A finite number rounded, else None (JSON has no NaN)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return round(float(v), digits)


def shot_of(info: FrameInfo) -> ShotId | None:
    """The frame's shot id (``"shot0003"`` as the shots stage names it; an int in older outputs): the
    segment record's, else the fill record's (or their extra)."""
    return shot_id_of(info.segment, info.fill)


def frame_row(out: Path, info: FrameInfo, left_out: str | None = None) -> list[Any]:
    """One table row: ``[id, index, shot, failure or "", coverage, characters, residue, flat, seam,
    flags, original url, plate url, mask url, why the training set leaves it out or "", instances]``
    (urls relative to ``out``, None where missing; instances: :func:`~cleanplate.report.evidence.compact`)."""
    checks = info.checks or {}
    orig = original_path(out, info)
    plate = None if info.failed else find_plate(out, info.frame_id, info.fill)
    mask = out / "masks" / f"{info.frame_id}.png"
    cov = info.segment.get("coverage", info.fill.get("coverage"))
    flags = [f for f in checks.get("flags") or [] if f in FLAG_BITS]
    return [info.frame_id, info.index, shot_of(info), info.failed or "", _num(cov), info.segment.get("n_characters"),
            *(_num(checks.get(c)) for c in CHECKS), flags,
            _rel(orig, out) if orig is not None else None, _rel(plate, out) if plate is not None else None,
            _rel(mask, out) if mask.is_file() else None, left_out or "", compact(info.segment)]


def _js(call: str, *args: Any) -> bytes:
    body = ", ".join(json.dumps(a, separators=(",", ":"), allow_nan=False) for a in args)
    return f"cpReport.{call}({body});\n".encode()


def write_table(out: Path, frames: list[FrameInfo], thresholds: dict[str, float],
                left_out: dict[str, str | None] | None = None) -> dict[str, Any]:
    """Write the table's data files (see the module docstring); returns the facts the template shows.
    ``left_out``: the training-set verdict per frame id (:mod:`cleanplate.report.training`)."""
    reasons = left_out or {}
    data = out / FILES_DIR / DATA_DIR
    data.mkdir(parents=True, exist_ok=True)
    shots: dict[Any, dict[str, Any]] = {}
    page: list[list[Any]] = []
    cols: dict[str, list[Any]] = {}
    n_pages = n_cols = n_scenery = 0

    def flush_cols() -> None:
        nonlocal n_cols, cols
        if cols:
            atomic_write_bytes(data / f"cols_{n_cols:05d}.js", _js("cols", n_cols, cols))
            n_cols += 1
            cols = {}

    for k, info in enumerate(frames):
        row = frame_row(out, info, reasons.get(info.frame_id))
        page.append(row)
        if not cols:
            cols = {"shot": [], "cov": [], **{c: [] for c in CHECKS}, "flags": [], "failed": [], "out": [],
                    "scen": []}
        cols["shot"].append(row[2])
        cols["cov"].append(row[4])
        for j, c in enumerate(CHECKS):
            cols[c].append(row[6 + j])
        cols["flags"].append(sum(FLAG_BITS[f] for f in row[9]))
        cols["failed"].append(1 if row[3] else 0)
        cols["out"].append(1 if row[13] else 0)
        scen = all_scenery(info.segment)
        cols["scen"].append(1 if scen else 0)
        n_scenery += scen
        s = shots.setdefault(row[2], {"id": row[2], "first": k, "last": k, "n": 0, "flagged": 0, "failed": 0,
                                      "left_out": 0, "plates": []})
        s["last"] = k
        s["n"] += 1
        s["flagged"] += bool(row[9])
        s["failed"] += bool(row[3])
        s["left_out"] += bool(row[13])
        if row[11] is not None:
            s["plates"].append([k, row[0], row[11], bool(row[9]), row[13]])
        if len(page) == PAGE:
            atomic_write_bytes(data / f"page_{n_pages:05d}.js", _js("page", n_pages, page))
            n_pages, page = n_pages + 1, []
        if len(cols["shot"]) == COLS:
            flush_cols()
        if len(s["plates"]) > 4 * STRIP:  # keep memory per shot bounded: thin out evenly
            s["plates"] = s["plates"][::2]
    if page:
        atomic_write_bytes(data / f"page_{n_pages:05d}.js", _js("page", n_pages, page))
        n_pages += 1
    flush_cols()
    strips = []
    for s in shots.values():
        plates = s.pop("plates")
        step = max(1, -(-len(plates) // STRIP))
        s["strip"] = plates[::step][:STRIP]
        strips.append(s)
    index = {"total": len(frames), "page": PAGE, "pages": n_pages, "colChunk": COLS, "colChunks": n_cols,
             "checks": list(CHECKS), "thresholds": thresholds, "flagBits": FLAG_BITS, "shots": strips,
             "allScenery": n_scenery}
    atomic_write_bytes(data / "index.js", _js("index", index))
    return {"frames": len(frames), "pages": n_pages, "shots": len(strips), "all_scenery": n_scenery,
            "data_dir": f"{FILES_DIR}/{DATA_DIR}"}


__all__ = ["COLS", "FLAG_BITS", "PAGE", "STRIP", "frame_row", "shot_of", "write_table"]
