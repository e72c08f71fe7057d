"""Resume manifests: one append-only JSON-lines file per stage in ``OUT/.cleanplate/``.

Each line is one frame's complete record, appended (and flushed to disk) only after all of
that frame's outputs were renamed into place. A line cut short by a kill is ignored when read.
The last record of a frame wins. A frame is *done* when its last record has status ``ok``, the
current stage hash, and all the outputs it lists exist.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class Manifest:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: dict[str, dict[str, Any]] = {}
        self._fh: Any = None
        if path.is_file():
            self._load()

    def _load(self) -> None:
        with open(self.path, encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a torn last line from a killed run
                if isinstance(rec, dict) and "frame_id" in rec:
                    self.records[rec["frame_id"]] = rec

    def hashes(self) -> set[str]:
        return {r.get("stage_hash", "") for r in self.records.values()}

    def is_done(self, frame_id: str, stage_hash: str, root: Path) -> bool:
        rec = self.records.get(frame_id)
        if rec is None or rec.get("status") != "ok" or rec.get("stage_hash") != stage_hash:
            return False
        return all((root / p).is_file() for p in rec.get("outputs", []))

    def append(self, record: dict[str, Any]) -> None:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the run
        self._fh.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.records[record["frame_id"]] = record

    def reset(self) -> dict[str, dict[str, Any]]:
        """Forget every record (``--force``); returns them so their outputs can be cleaned up."""
        self.close()
        old = dict(self.records)
        self.records.clear()
        self.path.unlink(missing_ok=True)
        return old

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
