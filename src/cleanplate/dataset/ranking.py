"""Which plate of a group to keep, and a near-duplicate index that stays linear in the plates.

**Mask completeness** (:func:`completeness`): a mask that missed part of a character gives a plate
that still shows it, and it also has *less* invented area, so the least-invented plate is the
one to distrust. Each plate's mask is compared with its shot neighbours' (the frames of the same
shot within :data:`WINDOW` frames; without shot ids, the frames within that window):

* coverage: the plate's masked fraction relative to the median of its neighbours' (capped at 1);
* tracks (when the segment records carry ``track_id``\\ s): the share of the tracks seen both before
  and after the frame in the window that the frame's characters include.

The completeness is the smaller of the two, in [0, 1]; a plate is *complete* at
:data:`COMPLETE` or more.

**Rank** (:func:`rank_key`): passes every check, then under the training set's residue bar
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
from cleanplate.errors import ConfigError

WINDOW = 12
"""Frames on either side compared for mask completeness."""
COMPLETE = 0.85
"""Completeness at or above which a mask counts as complete. Read off the DAVIS bmx-trees default run
(issue 12): at 0.75, 7 of the 75 trusted plates still showed more than 10 % of the rider; at 0.85, 1
of 60 (the plates below are 9 that show him and 6 that do not)."""
EXPORT_RESIDUE = 0.08
"""The residue bar for the training set (``--max-residue``). The check flags a plate at
``qa.residue_threshold`` (0.3): the line where it still shows 20 % of a character, with precision
first. A LoRA set should not take a plate that may show a tenth of one: on the bench, plates showing
at least 10 % score above 0.08 in 97 % of cases, correct plates in 16-18 %; on the DAVIS default
runs, correct plates score at most 0.056 and four bmx plates that show 12-23 % of the rider
0.093-0.2 (0.09 would keep those out by a margin of 0.003)."""
STEP = 0.05
"""Completeness steps in which complete plates are ranked before sharpness (a plate whose mask covers
5 % less than its neighbours' is more likely to have missed a part than to be merely smaller)."""
RECENT = 256
"""Latest group seeds compared exactly by :class:`HashIndex`."""

_CHUNKS = 8
_BITS = 16
_FLIPS = np.array([0] + [1 << b for b in range(_BITS)], dtype=np.int64)


def _segment_records(out: Path) -> dict[str, tuple[Any, frozenset[int]]]:
    """``{frame_id: (shot_id, character track ids)}`` from ``instances_metadata.json`` ({} when absent or bad).

    Read one record at a time (:func:`~cleanplate.dataset.plates.iter_frames`), keeping only
    these two fields: a film's segment metadata never sits in memory as dicts.
    """
    seg: dict[str, tuple[Any, frozenset[int]]] = {}
    try:
        for fid, rec in iter_frames(Path(out) / "instances_metadata.json"):
            rec = rec if isinstance(rec, dict) else {}
            seg[fid] = (rec.get("shot_id"), frozenset(_tracks(rec)))
    except (OSError, ValueError, KeyError):
        return {}
    return seg


_NO_SEG: tuple[Any, frozenset[int]] = (None, frozenset())


def _tracks(rec: dict[str, Any]) -> set[int]:
    out = set()
    for inst in rec.get("instances") or []:
        if isinstance(inst, dict) and inst.get("character", True) and isinstance(inst.get("track_id"), int):
            out.add(int(inst["track_id"]))
    return out


def completeness(out: str | Path, plates: Sequence[Plate],
                 groups: dict[str, int] | None = None) -> dict[str, tuple[float, str]]:
    """Mask completeness of each plate (see the module docstring): ``{frame_id: (score, why)}``.

    Neighbours are frames of the same shot (``shot_id`` of the fill or segment record); frames
    without one use their near-duplicate group from ``groups`` (frame id -> group) instead; a
    frame with neither is not compared (score 1). Linear in the plates: one pass over a window
    of :data:`WINDOW` frames either side.
    """
    seg = _segment_records(Path(out))
    ordered = sorted((p for p in plates if p.status == "ok"), key=lambda p: p.index)
    shots: list[Any] = []
    for p in ordered:
        shot = p.shot_id if p.shot_id is not None else seg.get(p.frame_id, _NO_SEG)[0]
        if shot is None and groups is not None and p.frame_id in groups:
            shot = ("group", groups[p.frame_id])
        shots.append(shot)
    cov = np.array([p.coverage for p in ordered], dtype=np.float64)
    tracks = [seg.get(p.frame_id, _NO_SEG)[1] for p in ordered]
    result: dict[str, tuple[float, str]] = {}
    n = len(ordered)
    for k, p in enumerate(ordered):
        lo, hi = max(0, k - WINDOW), min(n, k + WINDOW + 1)
        near = [] if shots[k] is None else [j for j in range(lo, hi) if j != k and shots[j] == shots[k]]
        around = [cov[j] for j in near if cov[j] > 0]
        score, why = 1.0, ("no shot neighbours to compare with" if not near else "coverage as its neighbours'")
        if around:
            med = float(np.median(around))
            c = min(1.0, cov[k] / med) if med > 0 else 1.0
            if c < score:
                score, why = c, f"coverage {100 * cov[k]:.1f} % vs {100 * med:.1f} % in the shot around it"
        before = set().union(*(tracks[j] for j in near if j < k)) if near else set()
        after = set().union(*(tracks[j] for j in near if j > k)) if near else set()
        spanning = before & after
        if spanning:
            t = len(spanning & tracks[k]) / len(spanning)
            if t < score:
                missing = sorted(spanning - tracks[k])
                score, why = t, f"track(s) {', '.join(map(str, missing))} seen before and after are missing here"
        result[p.frame_id] = (round(score, 4), why)
    return result


def check_max_residue(max_residue: float) -> None:
    """One-line error for a ``--max-residue`` outside [0, 1]."""
    if not 0 <= max_residue <= 1:
        raise ConfigError(f"--max-residue must be a residue score in [0, 1], got {max_residue}")


def above_bar(p: Plate, max_residue: float = EXPORT_RESIDUE) -> bool:
    """True when a plate's shot-aware residue score is above ``max_residue`` (a frame checked alone
    has the frame-only score, on another scale: only its flag counts)."""
    return p.shot_residue is not None and p.shot_residue > max_residue


def suspect(p: Plate, max_residue: float = EXPORT_RESIDUE) -> str | None:
    """Why a plate the checks passed may still show part of a character (:func:`above_bar`), or None."""
    if not above_bar(p, max_residue):
        return None
    return f"residue {p.shot_residue:.3f} above the training set's bar {max_residue:g} (may show part of a character)"


def rank_key(p: Plate, complete: float, sharp: float, group_sharpest: float,
             max_residue: float = EXPORT_RESIDUE) -> tuple[Any, ...]:
    """Sort key of the best plate of a group (smallest first); see the module docstring."""
    is_complete = complete >= COMPLETE
    rel_sharp = round(20 * sharp / group_sharpest) if group_sharpest > 0 else 0
    tier = -int(round(complete / STEP)) if is_complete else -round(100 * complete)
    return (int(p.flagged), int(above_bar(p, max_residue)), int(not is_complete), tier, -rel_sharp,
            int(round(100 * p.invented)) if is_complete else 0, p.index)


def why_kept(kept: Plate, other: Plate, comp: dict[str, tuple[float, str]], sharp: dict[str, float],
             max_residue: float = EXPORT_RESIDUE) -> str:
    """One line: why ``kept`` ranks before ``other``."""
    ck, co = comp.get(kept.frame_id, (1.0, ""))[0], comp.get(other.frame_id, (1.0, ""))[0]
    if other.flagged and not kept.flagged:
        return f"the kept plate passes the checks ({', '.join(other.flags)} flagged here)"
    if above_bar(other, max_residue) and not above_bar(kept, max_residue):
        return f"the kept plate is under the training set's residue bar (residue {other.shot_residue:.3f} here)"
    if ((ck >= COMPLETE) != (co >= COMPLETE) or (co < COMPLETE and ck > co)
            or round(ck / STEP) > round(co / STEP)):
        return (f"the kept plate's mask is more complete ({ck:.2f} vs {co:.2f}: "
                f"{comp.get(other.frame_id, (1.0, ''))[1]})")
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


__all__ = ["COMPLETE", "RECENT", "WINDOW", "HashIndex", "completeness", "rank_key", "why_kept"]
