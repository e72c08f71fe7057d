"""Resume manifests: one append-only JSON-lines file per stage in ``OUT/.cleanplate/``.

Each line is one frame's complete record, appended (and flushed to disk) only after all of
that frame's outputs were renamed into place. A line cut short by a kill is ignored when read,
and the next append starts on a fresh line. The last record of a frame wins. A frame is *done*
when its last record has status ``ok``, the current stage hash, and all the outputs it lists exist.

Film scale: loading is one pass over the file, and only what resume needs is kept in memory per
frame (status, stage hash, outputs, error, and the byte offset of the full record in the file);
:meth:`Manifest.read` and :meth:`Manifest.iter_records` read full records back from the file.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

KEPT = ("status", "stage_hash", "outputs", "error", "review")
"""The fields of a record kept in memory (``Manifest.records``); the rest stays in the file."""

OFFSET = "_offset"
"""Key of the byte offset of the frame's last full record in ``Manifest.records`` entries."""


def _slim(rec: dict[str, Any], offset: int) -> dict[str, Any]:
    out: dict[str, Any] = {k: rec.get(k) for k in KEPT}
    if isinstance(out["stage_hash"], str):
        out["stage_hash"] = sys.intern(out["stage_hash"])  # one string for all frames of a run
    if isinstance(out["status"], str):
        out["status"] = sys.intern(out["status"])
    out["outputs"] = list(out["outputs"] or [])
    out[OFFSET] = offset
    return out


class Manifest:
    """A stage's manifest. ``records`` maps frame id -> slim entry (see :data:`KEPT`, :data:`OFFSET`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: dict[str, dict[str, Any]] = {}
        self._hashes: Counter[str] = Counter()
        self._fh: Any = None
        self._reader: Any = None
        self._size = 0
        self._torn_tail = False
        if path.is_file():
            self._load()

    def _load(self) -> None:
        offset = 0
        line = b""
        with open(self.path, "rb") as fh:
            for line in fh:
                start, offset = offset, offset + len(line)
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a torn last line from a killed run
                if isinstance(rec, dict) and "frame_id" in rec:
                    self._set(rec["frame_id"], _slim(rec, start))
        self._size = offset
        self._torn_tail = bool(line) and not line.endswith(b"\n")

    def _set(self, frame_id: str, entry: dict[str, Any]) -> None:
        old = self.records.get(frame_id)
        if old is not None:
            self._hashes[old["stage_hash"] or ""] -= 1
            if self._hashes[old["stage_hash"] or ""] <= 0:
                del self._hashes[old["stage_hash"] or ""]
        self._hashes[entry["stage_hash"] or ""] += 1
        self.records[frame_id] = entry

    def hashes(self) -> set[str]:
        """The stage hashes of the frames' last records (kept up to date, O(1))."""
        return set(self._hashes)

    def is_done(self, frame_id: str, stage_hash: str, root: Path, review: str | None = None) -> bool:
        """``review``: the hash of the review corrections that apply to the frame (None: none)."""
        rec = self.records.get(frame_id)
        if rec is None or rec.get("status") != "ok" or rec.get("stage_hash") != stage_hash:
            return False
        if rec.get("review") != review:  # a person's corrections of its shot changed
            return False
        base = os.fspath(root)
        return all(os.path.isfile(os.path.join(base, p)) for p in rec.get("outputs", []))

    def append(self, record: dict[str, Any]) -> None:
        """Append one frame's full record (JSON-serialisable dict with ``frame_id``) and fsync it."""
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "ab")  # noqa: SIM115 - kept open for the run
            self._size = self._fh.seek(0, os.SEEK_END)
            if self._torn_tail:  # never glue a record onto the torn line a killed run left
                self._fh.write(b"\n")
                self._size += 1
                self._torn_tail = False
        data = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        start = self._size
        self._fh.write(data)
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._size += len(data)
        self._set(record["frame_id"], _slim(record, start))

    def read(self, frame_id: str) -> dict[str, Any] | None:
        """The frame's last full record, read back from the file (None when the frame has none)."""
        entry = self.records.get(frame_id)
        if entry is None:
            return None
        if self._fh is not None:
            self._fh.flush()
        if self._reader is None:
            self._reader = open(self.path, "rb")  # noqa: SIM115 - closed by close()
        self._reader.seek(entry[OFFSET])
        rec: dict[str, Any] = json.loads(self._reader.readline())
        return rec

    def iter_records(self, order: Iterable[str]) -> Iterator[dict[str, Any]]:
        """Full records of the frames in ``order`` that have one, in that order (one at a time)."""
        for fid in order:
            rec = self.read(fid)
            if rec is not None:
                yield rec

    def reset(self) -> dict[str, dict[str, Any]]:
        """Forget every record (``--force``); returns the slim entries so their outputs can be cleaned up."""
        self.close()
        old = dict(self.records)
        self.records.clear()
        self._hashes.clear()
        self._size, self._torn_tail = 0, False
        self.path.unlink(missing_ok=True)
        return old

    def close(self) -> None:
        for attr in ("_fh", "_reader"):
            fh = getattr(self, attr)
            if fh is not None:
                fh.close()
                setattr(self, attr, None)

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
