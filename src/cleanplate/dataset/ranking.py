"""Which plate of a group to keep, and a near-duplicate index that stays linear in the plates.

**Mask completeness** and the residue bar are the training-set verdict's
(:mod:`cleanplate.qa.verdict`, shared with the report): :func:`completeness` here reads the segment
records of an output folder and calls it.

**Rank** (:func:`rank_key`): taken by the training set (the verdict), then passes every check, then under the training set's residue bar
(:data:`EXPORT_RESIDUE`), then complete masks (complete ones by completeness in :data:`STEP`
steps, incomplete ones by completeness), then sharpness (in 5 % steps of the group's sharpest),
then the least invented area (whole percent) among complete plates only, then frame order.

**Index** (:class:`HashIndex`): 128-bit codes (pHash + dHash) cut into eight 16-bit chunks, one
bucket table per chunk; a query probes its chunks and their 16 one-bit neighbours. Every code
within a total Hamming distance of 15 bits (mean 7.5) is found (pigeonhole: some chunk then differs
by at most one bit); up to the threshold beyond that, a match is found when one chunk differs by
at most a bit, and always when it is among the :data:`RECENT` latest seeds, which are compared
exactly (near-duplicates are mostly neighbours in time). Cost per query: 136 probes plus the
codes that share a chunk, not the number of seeds.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cleanplate.dataset.plates import Plate, iter_frames
from cleanplate.qa.plate import SegmentFacts, segment_facts
from cleanplate.qa.verdict import COMPLETE, EXPORT_RESIDUE, WINDOW, above_bar, check_max_residue, suspect
from cleanplate.qa.verdict import completeness as verdict_completeness

STEP = 0.05
"""Completeness steps in which complete plates are ranked before sharpness (a plate whose mask covers
5 % less than its neighbours' is more likely to have missed a part than to be merely smaller)."""
RECENT = 256
"""Latest group seeds compared exactly by :class:`HashIndex`."""

_CHUNKS = 8
_BITS = 16
_FLIPS = np.array([0] + [1 << b for b in range(_BITS)], dtype=np.int64)


def segment_records(out: Path) -> dict[str, SegmentFacts]:
    """``{frame_id: (shot_id, character track ids)}`` from ``instances_metadata.json`` ({} when absent or bad).

    Read one record at a time (:func:`~cleanplate.dataset.plates.iter_frames`), keeping only
    these two fields: a film's segment metadata never sits in memory as dicts.
    """
    try:
        return {fid: segment_facts(rec) for fid, rec in iter_frames(Path(out) / "instances_metadata.json")}
    except (OSError, ValueError, KeyError):
        return {}


def completeness(out: str | Path, plates: Sequence[Plate],
                 groups: dict[str, int] | None = None) -> dict[str, tuple[float, str]]:
    """Mask completeness of each plate of ``out`` (:func:`cleanplate.qa.verdict.completeness` with the
    segment records of ``out``): ``{frame_id: (score, why)}``."""
    return verdict_completeness(plates, segment_records(Path(out)), groups)


def rank_key(p: Plate, complete: float, sharp: float, group_sharpest: float,
             max_residue: float = EXPORT_RESIDUE, left_out: bool = False) -> tuple[Any, ...]:
    """Sort key of the best plate of a group (smallest first); see the module docstring. ``left_out``:
    the training-set verdict (:func:`cleanplate.qa.verdict.verdicts`) gave the plate a reason."""
    is_complete = complete >= COMPLETE
    rel_sharp = round(20 * sharp / group_sharpest) if group_sharpest > 0 else 0
    tier = -int(round(complete / STEP)) if is_complete else -round(100 * complete)
    return (int(left_out), int(p.flagged), int(above_bar(p, max_residue)), int(not is_complete), tier, -rel_sharp,
            int(round(100 * p.invented)) if is_complete else 0, p.index)


def why_kept(kept: Plate, other: Plate, comp: dict[str, tuple[float, str]], sharp: dict[str, float],
             max_residue: float = EXPORT_RESIDUE, reasons: dict[str, str | None] | None = None) -> str:
    """One line: why ``kept`` ranks before ``other`` (``reasons``: the verdict's, per frame id)."""
    ck, co = comp.get(kept.frame_id, (1.0, ""))[0], comp.get(other.frame_id, (1.0, ""))[0]
    if other.flagged and not kept.flagged:
        return f"the kept plate passes the checks ({', '.join(other.flags)} flagged here)"
    if above_bar(other, max_residue) and not above_bar(kept, max_residue):
        return f"the kept plate is under the training set's residue bar (residue {other.shot_residue:.3f} here)"
    if ((ck >= COMPLETE) != (co >= COMPLETE) or (co < COMPLETE and ck > co)
            or round(ck / STEP) > round(co / STEP)):
        return (f"the kept plate's mask is more complete ({ck:.2f} vs {co:.2f}: "
                f"{comp.get(other.frame_id, (1.0, ''))[1]})")
    why_out = (reasons or {}).get(other.frame_id)
    if why_out and not (reasons or {}).get(kept.frame_id):
        return f"the training set takes the kept plate, not this one ({why_out})"
    if round(sharp[kept.frame_id]) > round(sharp[other.frame_id]):
        return f"the kept plate is sharper ({sharp[kept.frame_id]:.0f} vs {sharp[other.frame_id]:.0f})"
    if round(100 * kept.invented) < round(100 * other.invented):
        return f"the kept plate has less invented area ({100 * kept.invented:.1f} % vs {100 * other.invented:.1f} %)"
    return "the kept plate comes first"


_POP8 = np.array([bin(i).count("1") for i in range(256)], np.uint8)


def _popcount(x: np.ndarray) -> np.ndarray:
    """Bits set in each uint64 of ``x`` (any shape), as int64."""
    v = np.ascontiguousarray(x, dtype=np.uint64)
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0: one pass in C
        return np.bitwise_count(v).astype(np.int64)
    return _POP8[v.view(np.uint8)].reshape(*v.shape, 8).sum(-1, dtype=np.int64)


class HashIndex:
    """Seeds' (pHash, dHash) codes, searchable by mean Hamming distance; see the module docstring."""

    def __init__(self) -> None:
        self.n = 0
        self._codes = np.zeros((1024, 2), dtype=np.uint64)
        self.tables: list[dict[int, array]] = [{} for _ in range(_CHUNKS)]  # chunk value -> seeds (int64)
        self._filled = np.zeros((_CHUNKS, 1 << _BITS), dtype=bool)  # which buckets hold a seed

    @staticmethod
    def _chunks(code: tuple[int, int]) -> list[int]:
        a, b = code
        return [(a >> (_BITS * i)) & 0xFFFF for i in range(4)] + [(b >> (_BITS * i)) & 0xFFFF for i in range(4)]

    def add(self, code: tuple[int, int]) -> int:
        """Add a seed; returns its number."""
        k = self.n
        if k == len(self._codes):
            self._codes = np.concatenate([self._codes, np.zeros_like(self._codes)])
        self._codes[k] = (int(code[0]), int(code[1]))
        self.n += 1
        for j, (table, c) in enumerate(zip(self.tables, self._chunks(code), strict=True)):
            bucket = table.get(c)
            if bucket is None:
                bucket = table[c] = array("q")
            bucket.append(k)
            self._filled[j, c] = True
        return k

    def candidates(self, code: tuple[int, int]) -> np.ndarray:
        """Seed numbers (a seed may come more than once) that may be within 15 bits (all of them are
        found), plus the latest :data:`RECENT`."""
        keys = np.asarray(self._chunks(code), dtype=np.int64)[:, None] ^ _FLIPS[None, :]  # 8 x 17 probes
        rows, cols = np.nonzero(self._filled[np.arange(_CHUNKS)[:, None], keys])
        hits = array("q", range(max(0, self.n - RECENT), self.n))
        for j, key in zip(rows.tolist(), keys[rows, cols].tolist(), strict=True):
            hits.extend(self.tables[j][key])  # array to array: a copy of the bucket's memory
        return np.frombuffer(hits, dtype=np.int64)

    def distances(self, code: tuple[int, int], seeds: np.ndarray) -> np.ndarray:
        """Mean Hamming distance (0..64) of pHash and dHash between ``code`` and each seed in ``seeds``."""
        x = np.bitwise_xor(self._codes[seeds], np.array([code[0], code[1]], dtype=np.uint64)[None, :])
        return _popcount(x).sum(axis=1) / 2.0


__all__ = ["COMPLETE", "EXPORT_RESIDUE", "RECENT", "WINDOW", "HashIndex", "above_bar", "check_max_residue",
           "completeness", "rank_key", "segment_records", "suspect", "why_kept"]
