"""Near-duplicate plates: group them, keep the best of each group.

Two plates are near-duplicates when the mean Hamming distance of their 64-bit pHash and dHash
is at most ``threshold``, or, with CLIP embeddings, when their cosine similarity is at least
``embedding_threshold`` and the hash distance at most twice ``threshold``. Groups are built
greedily in frame order around a seed plate, so a slow pan does not chain a whole shot into one
group: every member is within the threshold of its group's seed.

The best plate of a group is one the training set takes (:func:`cleanplate.qa.verdict.verdicts`,
the verdict export-lora and the report use), passes the automatic checks, then has a complete mask (agreement with
its shot neighbours' coverage and tracks), then is the sharpest (variance of the Laplacian); the
least invented area only breaks ties between complete plates (:mod:`cleanplate.dataset.ranking`).
Grouping searches seeds through a bucketed hash index: linear in the plates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cleanplate.dataset.features import (
    cached_features,
    hash_array,
    hash_distances,
    maybe_clip,
    perceptual_hashes,
    sharpness,
)
from cleanplate.dataset.plates import (
    STEP_VERSION,
    Events,
    Plate,
    ProgressFn,
    StepResult,
    dataset_dir,
    load_plates,
    read_step,
    step_hash,
    write_step,
)
from cleanplate.dataset.ranking import HashIndex, rank_key, segment_records, why_kept
from cleanplate.errors import ConfigError
from cleanplate.io.outputs import read_image_rgb
from cleanplate.io.review import REVIEW_FILE, load_review
from cleanplate.qa.verdict import (
    COMPLETE,
    EXPORT_RESIDUE,
    check_max_residue,
    completeness,
    exclusion,
    verdicts,
)

DEFAULT_THRESHOLD = 10.0
DEFAULT_EMBEDDING_THRESHOLD = 0.95


def dedupe_path(out: str | Path) -> Path:
    return dataset_dir(Path(out)) / "dedupe.json"


def _group(hashes: np.ndarray, emb: np.ndarray | None, threshold: float,
           emb_threshold: float) -> tuple[list[list[int]], list[float]]:
    """Greedy seeded grouping in order; returns groups (indices) and each item's distance to its seed.

    Seeds are searched through a :class:`~cleanplate.dataset.ranking.HashIndex`, so the cost per
    plate does not grow with the number of groups. With embeddings, a seed within twice the hash
    threshold also matches when the cosine similarity is at least ``emb_threshold``.
    """
    index = HashIndex()
    seeds: list[int] = []
    groups: list[list[int]] = []
    dist = [0.0] * len(hashes)
    for i in range(len(hashes)):
        code = (int(hashes[i, 0]), int(hashes[i, 1]))
        cand = index.candidates(code)
        if len(cand):
            d = index.distances(code, cand)
            ok = d <= threshold
            if emb is not None:
                s = np.asarray(seeds)[cand]
                ok |= (emb[s] @ emb[i] >= emb_threshold) & (d <= 2 * threshold)
            if ok.any():
                hits = np.flatnonzero(ok)
                best = hits[np.lexsort((cand[hits], d[hits]))[0]]  # nearest seed, earliest on ties
                g = int(cand[best])
                groups[g].append(i)
                dist[i] = float(d[best])
                continue
        index.add(code)
        seeds.append(i)
        groups.append([i])
    return groups, dist


def dedupe(
    out: str | Path,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    embeddings: bool | None = None,
    embedding_threshold: float = DEFAULT_EMBEDDING_THRESHOLD,
    max_residue: float = EXPORT_RESIDUE,
    checkpoint: str | Path | None = None,
    device: str = "auto",
    force: bool = False,
    progress: ProgressFn | None = None,
) -> StepResult:
    """Group near-duplicate plates of ``out`` and keep the best of each; writes ``OUT/dataset/dedupe.json``.

    ``embeddings``: True needs CLIP, False never uses it, None uses it when its weights are here.
    A rerun with the same plates and settings is skipped (``StepResult.skipped``) unless ``force``.
    """
    if not 0 <= threshold <= 64:
        raise ConfigError(f"--threshold must be a Hamming distance between 0 and 64, got {threshold}")
    check_max_residue(max_residue)
    if not -1 <= embedding_threshold <= 1:
        raise ConfigError(f"--embedding-threshold must be a cosine similarity in [-1, 1], got {embedding_threshold}")
    out = Path(out)
    path = dedupe_path(out)
    plates = load_plates(out)
    embedder, emb_note = maybe_clip(embeddings, checkpoint, device)
    settings = {"threshold": float(threshold), "embeddings": embedder.key if embedder else None,
                "embedding_threshold": float(embedding_threshold) if embedder else None,
                "max_residue": float(max_residue)}
    digest = step_hash(settings, plates, [Path(out) / "instances_metadata.json", Path(out) / REVIEW_FILE])
    old = read_step(path) or {}
    if old.get("hash") == digest and not force:
        return StepResult("dedupe", path, True, old.get("summary", {}))

    events = Events("dedupe", progress)
    dropped: dict[str, str] = {}
    usable: list[Plate] = []
    for p in plates:
        why = exclusion(p)
        if why is None:
            usable.append(p)
        else:
            dropped[p.frame_id] = why
    old_frames: dict[str, Any] = old.get("frames") or {}
    frames: dict[str, dict[str, Any]] = {}
    events.start(len(usable))
    readable: list[Plate] = []
    for p in usable:
        prev = old_frames.get(p.frame_id) or {}
        if prev.get("stamp") == p.stamp() and all(k in prev for k in ("phash", "dhash", "sharpness")):
            frames[p.frame_id] = {k: prev[k] for k in ("stamp", "phash", "dhash", "sharpness")}
            events.frame(p.frame_id, "skipped")
        else:
            try:
                rgb = read_image_rgb(p.path)  # type: ignore[arg-type]
            except OSError as exc:
                dropped[p.frame_id] = f"unreadable plate: {exc}"
                events.frame(p.frame_id, "failed", dropped[p.frame_id])
                continue
            ph, dh = perceptual_hashes(rgb)
            frames[p.frame_id] = {"stamp": p.stamp(), "phash": ph, "dhash": dh, "sharpness": round(sharpness(rgb), 3)}
            events.frame(p.frame_id)
        readable.append(p)
    events.end()

    emb = None
    if embedder is not None and readable:
        def failed(fid: str, status: str, why: str | None) -> None:
            if status == "failed":
                dropped[fid] = why or "unreadable plate"

        readable, emb = cached_features(dataset_dir(out) / "cache" / "clip.npz", embedder.key, readable,
                                        embedder.images, batch=16, tick=failed)
    hashes = hash_array([(frames[p.frame_id]["phash"], frames[p.frame_id]["dhash"]) for p in readable])
    groups_idx, seed_dist = _group(hashes, emb, float(threshold), float(embedding_threshold))
    sharp = {fid: float(f["sharpness"]) for fid, f in frames.items()}
    seg = segment_records(out)
    group_of = {readable[i].frame_id: g for g, ms in enumerate(groups_idx) for i in ms}
    comp = completeness(readable, seg, group_of)
    reasons = verdicts(readable, seg, max_residue=max_residue, groups=group_of, comp=comp,
                       decisions=load_review(out).decisions)  # the export's verdict

    groups: list[dict[str, Any]] = []
    kept: list[str] = []
    for g, members in enumerate(groups_idx):
        top = max(sharp[readable[i].frame_id] for i in members)
        best = min(members, key=lambda i: rank_key(readable[i], comp[readable[i].frame_id][0],
                                                   sharp[readable[i].frame_id], top, max_residue,
                                                   reasons[readable[i].frame_id] is not None))
        bp = readable[best]
        kept.append(bp.frame_id)
        d_best = hash_distances(hashes[best], hashes[members])
        for i, d in zip(members, d_best, strict=True):
            fr = frames[readable[i].frame_id]
            fr.update({"group": g, "invented": readable[i].invented, "flagged": readable[i].flagged,
                       "completeness": comp[readable[i].frame_id][0], "seed_distance": round(seed_dist[i], 2)})
            if comp[readable[i].frame_id][0] < COMPLETE:
                fr["incomplete"] = comp[readable[i].frame_id][1]
            if reasons[readable[i].frame_id] is not None:
                fr["left_out"] = reasons[readable[i].frame_id]
            if i != best:
                dropped[readable[i].frame_id] = (f"near-duplicate of {bp.frame_id} (distance {d:.1f}); "
                                                 f"{why_kept(bp, readable[i], comp, sharp, max_residue, reasons)}")
        groups.append({"id": g, "kept": bp.frame_id, "members": [readable[i].frame_id for i in members],
                       "max_distance": round(float(d_best.max()), 2)})
    order = {p.frame_id: p.index for p in readable}
    kept.sort(key=order.__getitem__)
    summary = {
        "plates": len(plates), "usable": len(readable), "groups": len(groups), "kept": len(kept),
        "dropped_duplicates": len(readable) - len(kept), "excluded": len(plates) - len(readable),
        "threshold": float(threshold), "embeddings": emb_note,
    }
    data = {"step": "dedupe", "version": STEP_VERSION, "hash": digest, "settings": settings, "summary": summary,
            "kept": kept, "dropped": dropped, "groups": groups, "frames": frames}
    write_step(path, data)
    return StepResult("dedupe", path, False, summary)
