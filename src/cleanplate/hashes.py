"""File checksums, hashed once: a digest cache keyed by path and trusted only while the file is unchanged.

The cache is a small JSON file (path of the caller's choosing, e.g. ``$CLEANPLATE_HOME/weight-hashes.json``)
mapping ``"<algo>:<real path>"`` to the digest and the file's ``[size, mtime_ns, ctime_ns, inode]``
when it was hashed. Any write, truncation, replacement or ``touch`` changes the ctime, so a changed
file is hashed again. A file changed less than :data:`RACY_NS` before it was hashed is not cached:
a change within the same clock tick could keep its timestamps (git's "racily clean" entries).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

RACY_NS = 2_000_000_000
"""Files changed this recently (ns) when hashed are not cached."""


def file_digest(path: Path, algo: str = "sha256") -> str:
    """Hex digest of the whole file (``hashlib.file_digest``), always read from disk."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, algo).hexdigest()


def _stamp(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _load(cache: Path) -> dict[str, dict[str, object]]:
    try:
        data = json.loads(cache.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _store(cache: Path, key: str, stamp: list[int], digest: str) -> None:
    """Record a digest (atomic replace); a cache that cannot be written is skipped, never an error."""
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        data = _load(cache)
        data[key] = {"stat": stamp, "digest": digest}
        fd, tmp = tempfile.mkstemp(prefix=f".{cache.name}.", suffix=".part", dir=cache.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=1)
            os.replace(tmp, cache)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        return


def cached_digest(path: Path, algo: str, cache: Path) -> str:
    """``file_digest(path, algo)``, from ``cache`` when the file is unchanged since it was hashed."""
    key = f"{algo}:{os.path.realpath(path)}"
    stamp = _stamp(os.stat(path))
    hit = _load(cache).get(key)
    if isinstance(hit, dict) and hit.get("stat") == stamp and isinstance(hit.get("digest"), str):
        return str(hit["digest"])
    digest = file_digest(path, algo)
    st = os.stat(path)
    settled = time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > RACY_NS
    if settled and _stamp(st) == stamp:  # not changed while it was read, nor just before
        _store(cache, key, stamp, digest)
    return digest
