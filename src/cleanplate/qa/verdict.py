"""Whether the training set takes a plate, and why not: the one verdict the report and the dataset
steps (dedupe, export-lora) share.

:func:`verdicts` gives, per plate, None (taken) or the reason it is left out, checked in this order:

1. failed or missing (:func:`exclusion`): never usable;
2. a near-duplicate that dedupe did not keep (when its kept list is used);
2b. a person's decision in ``OUT/review.json``: a rejected plate is left out; an accepted one skips
   step 3 (taken even when flagged);
3. unless ``include_flagged``, untrusted (:func:`untrusted`): flagged by a check, checks that
   failed, an incomplete mask (:func:`completeness` under :data:`COMPLETE`), or a shot-aware residue
   score above the training set's bar (:data:`EXPORT_RESIDUE`, ``--max-residue``);
4. with a masked loss, no removal mask.

**Mask completeness** (:func:`completeness`): a mask that missed part of a character gives a plate
that still shows it, and it also has *less* invented area, so the least-invented plate is the
one to distrust. Each plate's mask is compared with its shot neighbours' (the frames of the same
shot within :data:`WINDOW` frames; without shot ids, the frames of its near-duplicate group):

* coverage: the plate's masked fraction relative to the median of its neighbours' (capped at 1);
* tracks (when the segment records carry ``track_id``\\ s): the share of the tracks seen both before
  and after the frame in the window that the frame's characters include.

The completeness is the smaller of the two, in [0, 1]; a plate is *complete* at :data:`COMPLETE` or more.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np

from cleanplate.errors import ConfigError
from cleanplate.qa.plate import NO_SEGMENT, Plate, SegmentFacts

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

NEAR_DUPLICATE = "near-duplicate (dedupe)"
REJECTED = "rejected in review (review.json)"
NO_MASK = "no removal mask (masks/<frame>.png)"


def exclusion(plate: Plate) -> str | None:
    """Why a plate can never be used (failed, missing), or None."""
    if plate.status == "failed":
        return f"failed: {plate.error or 'fill failed'}"
    if plate.status == "missing" or plate.path is None:
        return "plate file missing"
    if plate.status != "ok":
        return f"status {plate.status}"
    return None


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


def completeness(plates: Sequence[Plate], seg: Mapping[str, SegmentFacts],
                 groups: Mapping[str, int] | None = None) -> dict[str, tuple[float, str]]:
    """Mask completeness of each ok plate (see the module docstring): ``{frame_id: (score, why)}``.

    ``seg``: :func:`~cleanplate.qa.plate.segment_facts` per frame id. Neighbours are frames of the
    same shot (the fill record's ``shot_id``, else the segment record's); frames without one use
    their near-duplicate group from ``groups`` (frame id -> group) instead; a frame with neither is
    not compared (score 1). Linear in the plates: one pass over a window of :data:`WINDOW` frames
    either side.
    """
    ordered = sorted((p for p in plates if p.status == "ok"), key=lambda p: p.index)
    shots: list[Any] = []
    for p in ordered:
        shot = p.shot_id if p.shot_id is not None else seg.get(p.frame_id, NO_SEGMENT)[0]
        if shot is None and groups is not None and p.frame_id in groups:
            shot = ("group", groups[p.frame_id])
        shots.append(shot)
    cov = np.array([p.coverage for p in ordered], dtype=np.float64)
    tracks = [seg.get(p.frame_id, NO_SEGMENT)[1] for p in ordered]
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


def untrusted(p: Plate, comp: tuple[float, str] | None, max_residue: float = EXPORT_RESIDUE) -> str | None:
    """Why a usable plate cannot be trusted unseen (a flagged or failed check, an incomplete mask, a
    residue score above the training set's bar), or None."""
    if p.flagged:
        return f"flagged by the checks: {', '.join(p.flags)}"
    checks = p.checks or {}
    if checks.get("error") or checks.get("status") not in (None, "ok"):
        return f"flagged by the checks: they failed ({checks.get('error') or checks.get('status')})"
    if comp is not None and comp[0] < COMPLETE:
        return f"flagged by the checks: mask looks incomplete ({comp[1]})"
    why = suspect(p, max_residue)
    return f"flagged by the checks: {why}" if why else None


def verdicts(plates: Sequence[Plate], seg: Mapping[str, SegmentFacts], *, max_residue: float = EXPORT_RESIDUE,
             kept: Collection[str] | None = None, groups: Mapping[str, int] | None = None,
             include_flagged: bool = False, need_mask: bool = False,
             comp: Mapping[str, tuple[float, str]] | None = None,
             decisions: Mapping[str, str] | None = None) -> dict[str, str | None]:
    """Per plate, None when the training set takes it, else why it is left out (module docstring).

    ``seg``: :func:`~cleanplate.qa.plate.segment_facts` per frame id; ``kept``: dedupe's kept
    frame ids (None: dedupe not used); ``groups``: dedupe's group per frame id, neighbours for
    :func:`completeness` where frames have no shot id; ``comp``: the completeness when already
    computed; ``decisions``: a person's accept / reject per frame id (``OUT/review.json``).
    ``export-lora`` leaves out exactly the plates with a reason (plus, with a masked
    loss, those whose original frame cannot be read).
    """
    check_max_residue(max_residue)
    if comp is None:
        comp = completeness(plates, seg, groups)
    kept_set = set(kept) if kept is not None else None
    out: dict[str, str | None] = {}
    for p in plates:
        why = exclusion(p)
        if why is None and kept_set is not None and p.frame_id not in kept_set:
            why = NEAR_DUPLICATE
        decision = (decisions or {}).get(p.frame_id)
        if why is None and decision == "reject":
            why = REJECTED
        if why is None and not include_flagged and decision != "accept":
            why = untrusted(p, comp.get(p.frame_id), max_residue)
        if why is None and need_mask and p.mask_path is None:
            why = NO_MASK
        out[p.frame_id] = why
    return out


def dedupe_inputs(step: Mapping[str, Any] | None) -> tuple[list[str] | None, dict[str, int]]:
    """Dedupe's kept frame ids (None when absent) and group per frame id, from ``dedupe.json`` (as a dict)."""
    step = step or {}
    kept = step.get("kept")
    frames = step.get("frames") if isinstance(step.get("frames"), dict) else {}
    groups = {fid: f["group"] for fid, f in frames.items() if isinstance(f, dict) and isinstance(f.get("group"), int)}
    return ([str(k) for k in kept] if isinstance(kept, list) else None), groups


def reason_kind(why: str) -> str:
    """The summary bucket of a reason: ``near_duplicates``, ``flagged``, ``rejected``, ``failed`` or ``other``."""
    if why.startswith("near-duplicate"):
        return "near_duplicates"
    if why.startswith("flagged"):
        return "flagged"
    if why.startswith("rejected"):
        return "rejected"
    if why.startswith(("failed", "plate file missing")):
        return "failed"
    return "other"


__all__ = ["COMPLETE", "EXPORT_RESIDUE", "NEAR_DUPLICATE", "REJECTED", "WINDOW", "above_bar", "check_max_residue", "completeness",
           "dedupe_inputs", "exclusion", "reason_kind", "suspect", "untrusted", "verdicts"]
