"""Organise plates by scene type: k-means clusters, labels, a folder view and a contact sheet per cluster.

Features are CLIP image embeddings when its weights are here (then every plate also gets a
zero-shot scene label from a user-editable list, and a cluster is named after its most common
label), else colour/texture histograms (clusters named ``cluster_<k>``). k-means is k-means++
with a fixed seed; without ``clusters`` the number is chosen by the silhouette score.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from cleanplate.dataset.cluster import CLUSTER_VERSION, choose_k, kmeans, silhouette
from cleanplate.dataset.dedupe import dedupe_path
from cleanplate.dataset.features import cached_features, colour_texture, maybe_clip
from cleanplate.dataset.plates import (
    STEP_VERSION,
    Events,
    ProgressFn,
    StepResult,
    character_words_in,
    dataset_dir,
    load_plates,
    read_step,
    slug,
    step_hash,
    write_step,
)
from cleanplate.errors import ConfigError, InputError
from cleanplate.io.outputs import read_image_rgb, write_image
from cleanplate.qa.verdict import exclusion

PROMPT = "a still from an animated film: {label}"


def organize_path(out: str | Path) -> Path:
    return dataset_dir(Path(out)) / "organize.json"


def default_labels_file() -> Path:
    return Path(str(resources.files("cleanplate") / "profiles" / "scene_labels.yaml"))


def load_labels(path: str | Path | None = None) -> tuple[list[str], list[str]]:
    """Labels from a YAML file (``labels: [...]`` or a list) or a text file (one per line).

    Returns the labels and those dropped because they name characters. ConfigError when none is left.
    """
    p = Path(path) if path is not None else default_labels_file()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read labels file {p}: {exc.strerror}") from None
    if p.suffix.lower() in (".yaml", ".yml", ".json"):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"invalid YAML in {p}: {getattr(exc, 'problem', exc)}") from None
        data = data.get("labels") if isinstance(data, dict) else data
        if not isinstance(data, list):
            raise ConfigError(f"{p} must hold a list of labels (or 'labels: [...]')")
        raw = [str(x) for x in data]
    else:
        raw = [ln.split("#", 1)[0] for ln in text.splitlines()]
    labels, dropped, seen = [], [], set()
    for lab in (" ".join(r.split()) for r in raw):
        if not lab or lab.lower() in seen:
            continue
        seen.add(lab.lower())
        (dropped if character_words_in(lab) else labels).append(lab)
    if not labels:
        raise ConfigError(f"no usable scene labels in {p}")
    return labels, dropped


# ------------------------------------------------------------------------------ views

def contact_sheet(items: list[tuple[Path, str]], cols: int = 6, cell_w: int = 256, max_items: int = 60) -> np.ndarray:
    """A grid of thumbnails with their names: HxWx3 uint8 RGB."""
    items = items[:max_items]
    cell_h, bar = cell_w * 9 // 16, 18
    rows = max(1, (len(items) + cols - 1) // cols)
    sheet = np.full((rows * (cell_h + bar), min(cols, max(1, len(items))) * cell_w, 3), 24, np.uint8)
    for k, (path, title) in enumerate(items):
        r, c = divmod(k, cols)
        y0, x0 = r * (cell_h + bar), c * cell_w
        try:
            im = read_image_rgb(path)
        except OSError:
            continue
        h, w = im.shape[:2]
        s = min(cell_w / w, cell_h / h)
        tw, th = max(1, int(w * s)), max(1, int(h * s))
        thumb = cv2.resize(im, (tw, th), interpolation=cv2.INTER_AREA)
        oy, ox = y0 + (cell_h - th) // 2, x0 + (cell_w - tw) // 2
        sheet[oy:oy + th, ox:ox + tw] = thumb
        cv2.putText(sheet, title[:34], (x0 + 4, y0 + cell_h + 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (230, 230, 230), 1, cv2.LINE_AA)
    return sheet


def _clear_views(root: Path, old: dict[str, Any]) -> None:
    """Remove the folder views and sheets a previous organize wrote (and nothing outside ``dataset/clusters``)."""
    clusters = (dataset_dir(root) / "clusters").resolve()
    for c in old.get("clusters") or []:
        for key in ("folder", "contact_sheet"):
            rel = c.get(key)
            p = root / str(rel or "")
            if not rel or p.parent.resolve() != clusters:
                continue
            if p.is_symlink() or p.is_file():
                p.unlink(missing_ok=True)
            elif p.is_dir():
                shutil.rmtree(p, ignore_errors=True)


def _link_or_copy(src: Path, dst: Path, copy: bool) -> str:
    dst.unlink(missing_ok=True)
    if not copy:
        try:
            os.symlink(os.path.relpath(src, dst.parent), dst)
            return "symlink"
        except OSError:  # no symlinks here (some Windows setups, some network drives)
            pass
    shutil.copy2(src, dst)
    return "copy"


# ------------------------------------------------------------------------------ organize

def organize(
    out: str | Path,
    *,
    clusters: int | None = None,
    labels_file: str | Path | None = None,
    embeddings: bool | None = None,
    checkpoint: str | Path | None = None,
    device: str = "auto",
    copy: bool = False,
    use_dedupe: bool = True,
    seed: int = 0,
    force: bool = False,
    progress: ProgressFn | None = None,
) -> StepResult:
    """Cluster the plates of ``out`` (dedupe's kept plates when ``dedupe.json`` is there and
    ``use_dedupe``) and write ``OUT/dataset/organize.json``, ``clusters/<label>/`` and ``clusters/<label>.jpg``."""
    if clusters is not None and clusters < 1:
        raise ConfigError(f"--clusters must be at least 1, got {clusters}")
    out = Path(out)
    ddir = dataset_dir(out)
    path = organize_path(out)
    plates = [p for p in load_plates(out) if exclusion(p) is None]
    files: list[Path] = []
    note = "all plates"
    dd = read_step(dedupe_path(out)) if use_dedupe else None
    if dd is not None and isinstance(dd.get("kept"), list):
        kept = set(dd["kept"])
        plates = [p for p in plates if p.frame_id in kept]
        files.append(dedupe_path(out))
        note = f"dedupe's kept plates ({len(plates)})"
    if not plates:
        raise InputError(f"no usable plates in {out} to organise")
    embedder, emb_note = maybe_clip(embeddings, checkpoint, device)
    labels, dropped_labels = load_labels(labels_file) if embedder is not None else ([], [])
    settings = {"clusters": clusters, "features": embedder.key if embedder else "colour-texture-v1",
                "labels": labels or None, "copy": copy, "use_dedupe": use_dedupe, "seed": seed,
                "cluster_version": CLUSTER_VERSION}
    digest = step_hash(settings, plates, files)
    old = read_step(path) or {}
    views_ok = all((out / c.get("folder", "")).is_dir() and (out / c.get("contact_sheet", "")).is_file()
                   for c in old.get("clusters") or [])
    if old.get("hash") == digest and views_ok and not force:
        return StepResult("organize", path, True, old.get("summary", {}))

    events = Events("organize", progress)
    events.start(len(plates))

    unreadable: dict[str, str] = {}

    def tick(fid: str, status: str, why: str | None) -> None:
        events.frame(fid, status, why)
        if why:
            unreadable[fid] = why

    if embedder is not None:
        plates, x = cached_features(ddir / "cache" / "clip.npz", embedder.key, plates, embedder.images, batch=16,
                                    tick=tick)
    else:
        plates, x = cached_features(ddir / "cache" / "colour.npz", "colour-texture-v1", plates,
                                    lambda ims: np.stack([colour_texture(im) for im in ims]), tick=tick)
    events.end()
    if not plates:
        raise InputError(f"none of the plates of {out} could be read")
    x = x.astype(np.float64)
    k, sil = (min(clusters, len(plates)), None) if clusters else choose_k(x, seed)
    lab, _ = kmeans(x, k, seed)
    if sil is None and k >= 2:
        sil = round(silhouette(x, lab, seed=seed), 4)

    scene: list[str | None] = [None] * len(plates)
    score: list[float | None] = [None] * len(plates)
    if embedder is not None:
        t = embedder.texts([PROMPT.format(label=lb) for lb in labels])
        logits = 100.0 * x @ t.T.astype(np.float64)
        probs = np.exp(logits - logits.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        for i, j in enumerate(probs.argmax(1)):
            scene[i], score[i] = labels[int(j)], round(float(probs[i, j]), 4)

    order = sorted(set(lab.tolist()), key=lambda c: min(i for i in range(len(plates)) if lab[i] == c))
    names: dict[int, str] = {}
    used: Counter[str] = Counter()
    for n, c in enumerate(order):
        members = [i for i in range(len(plates)) if lab[i] == c]
        if embedder is not None:
            counts = Counter(scene[i] for i in members)
            top = max(counts, key=lambda s: (counts[s], -labels.index(str(s))))
            base = slug(str(top))
        else:
            base = f"cluster_{n}"
        used[base] += 1
        names[c] = base if used[base] == 1 else f"{base}_{used[base]}"

    _clear_views(out, old)
    cdir = ddir / "clusters"
    cdir.mkdir(parents=True, exist_ok=True)
    cluster_rows, frames, how = [], {}, set()
    for c in order:
        name = names[c]
        members = [plates[i] for i in range(len(plates)) if lab[i] == c]
        folder = cdir / name
        folder.mkdir(parents=True, exist_ok=True)
        for p in members:
            how.add(_link_or_copy(p.path, folder / p.path.name, copy))  # type: ignore[union-attr,arg-type]
        sheet = cdir / f"{name}.jpg"
        write_image(sheet, contact_sheet([(p.path, p.frame_id) for p in members]))  # type: ignore[misc]
        cluster_rows.append({"label": name, "size": len(members), "frames": [p.frame_id for p in members],
                             "folder": str(folder.relative_to(out)), "contact_sheet": str(sheet.relative_to(out))})
    for i, p in enumerate(plates):
        frames[p.frame_id] = {"cluster": order.index(int(lab[i])), "label": names[int(lab[i])],
                              "scene": scene[i], "scene_score": score[i]}
    summary = {"plates": len(plates), "input": note, "clusters": len(order), "silhouette": sil,
               "features": "CLIP embeddings" if embedder else "colour/texture histograms", "embeddings": emb_note,
               "labels": [r["label"] for r in cluster_rows], "dropped_labels": dropped_labels,
               "unreadable": unreadable,
               "views": "+".join(sorted(how))}
    data = {"step": "organize", "version": STEP_VERSION, "hash": digest, "settings": settings, "summary": summary,
            "clusters": cluster_rows, "frames": frames}
    write_step(path, data)
    return StepResult("organize", path, False, summary)
