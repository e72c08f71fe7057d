"""Export plates as a LoRA training set in the kohya-ss sd-scripts layout.

``DATASET/img/<repeats>_<concept>/<frame>.<ext>`` with ``<frame>.txt`` captions (trigger word,
scene label, template; tags naming characters removed), ``dataset_config.toml``,
``train_command.sh``, ``README.md`` (kohya + diffusers) and ``cleanplate_export.json``.

With ``masked_loss`` the set holds the ORIGINAL frames instead of the plates, with the inverted
removal mask as the loss mask (``mask/<repeats>_<concept>/<frame>.png``, white = train, black =
ignore; or the PNG alpha channel with ``mask_form="alpha"``): the LoRA never learns an invented pixel.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from cleanplate.dataset import kohya
from cleanplate.dataset.dedupe import dedupe_path
from cleanplate.dataset.organize import organize_path
from cleanplate.dataset.plates import (
    STEP_VERSION,
    Events,
    Plate,
    ProgressFn,
    StepResult,
    character_words_in,
    dataset_dir,
    file_stamp,
    load_plates,
    read_step,
    slug,
    step_hash,
    write_step,
)
from cleanplate.dataset.ranking import segment_records
from cleanplate.errors import ConfigError, FrameError, OutputError
from cleanplate.io.frames import VIDEO_EXTS, VideoSource, load_image
from cleanplate.io.outputs import atomic_write_bytes, read_mask, write_image
from cleanplate.io.review import REVIEW_FILE, load_review
from cleanplate.qa.verdict import EXPORT_RESIDUE, check_max_residue, dedupe_inputs, reason_kind, verdicts

FORMATS = ("kohya",)
MASK_FORMS = ("conditioning", "alpha")
DEFAULT_TRIGGER = "cleanplate_bg"
DEFAULT_CAPTION = "{trigger}, {scene}, background, scenery"
MARKER = "cleanplate_export.json"


def export_path(out: str | Path) -> Path:
    return dataset_dir(Path(out)) / "export.json"


def make_caption(template: str, trigger: str, scene: str | None, concept: str) -> tuple[str, list[str]]:
    """Comma-separated tags from ``template``; tags naming characters are dropped (returned second)."""
    try:
        text = template.format(trigger=trigger, scene=scene or "", concept=concept)
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(f"caption template {template!r}: unknown or bad placeholder {exc} "
                          "(use {trigger}, {scene}, {concept})") from None
    kept: list[str] = []
    removed: list[str] = []
    for tag in (" ".join(t.split()) for t in text.split(",")):
        if not tag:
            continue
        if character_words_in(tag):
            removed.append(tag)
        elif tag not in kept:
            kept.append(tag)
    return ", ".join(kept), removed


def _scenes(out: Path) -> dict[str, str]:
    """Scene words per frame from organize.json: the zero-shot label, else a named cluster (not ``cluster_<k>``)."""
    org = read_step(organize_path(out)) or {}
    scenes = {}
    for fid, f in (org.get("frames") or {}).items():
        name = f.get("scene") or f.get("label")
        if name and not str(name).startswith("cluster_"):
            scenes[fid] = str(name).replace("_", " ")
    return scenes


def _with_originals(plates: list[Plate], needed: bool) -> Iterator[tuple[Plate, np.ndarray | str | None]]:
    """Each plate with its original frame (HxWx3 uint8 RGB, loaded one at a time), or the reason it
    cannot be read; None when not ``needed``. Video frames come last, in one decoding pass per video."""
    videos: dict[str, dict[str, Plate]] = {}
    for p in plates:
        src = p.source or ""
        base, sep, idx = src.rpartition("#")
        if not needed:
            yield p, None
        elif sep and idx.isdigit() and Path(base).suffix.lower() in VIDEO_EXTS:
            videos.setdefault(base, {})[src] = p
        elif not src:
            yield p, "no source frame recorded"
        else:
            try:
                orig: np.ndarray | str = load_image(Path(src))
            except FrameError as exc:
                orig = f"original frame unreadable: {exc}"
            yield p, orig
    for video, wanted in videos.items():
        try:
            for ref, loader in VideoSource(Path(video)):
                p = wanted.pop(ref.source, None)
                if p is not None:
                    try:
                        orig = loader()
                    except FrameError as exc:
                        orig = f"original frame unreadable: {exc}"
                    yield p, orig
                    if not wanted:
                        break
        except Exception as exc:  # PyAV / a missing video: every frame left gets the reason
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            for p in wanted.values():
                yield p, f"cannot decode {video}: {msg}"
            wanted.clear()
        for p in wanted.values():
            yield p, "original frame not found in the video"


def _validate(fmt: str, trigger: str, repeats: int, concept: str, resolution: int, batch_size: int,
              mask_form: str, bucket_steps: int, min_b: int, max_b: int) -> None:
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format '{fmt}' (available: {', '.join(FORMATS)})")
    if mask_form not in MASK_FORMS:
        raise ConfigError(f"unknown mask form '{mask_form}' (available: {', '.join(MASK_FORMS)})")
    if not trigger.strip() or "," in trigger:
        raise ConfigError(f"--trigger must be a non-empty word without commas, got {trigger!r}")
    if character_words_in(trigger) or character_words_in(concept):
        raise ConfigError(f"trigger '{trigger}' / concept '{concept}' names a character; a background LoRA must not")
    if repeats < 1 or batch_size < 1:
        raise ConfigError("--repeats and --batch-size must be at least 1")
    if resolution < 64 or bucket_steps < 8:
        raise ConfigError("--resolution must be at least 64 and --bucket-steps at least 8")
    for name, v in (("--min-bucket-reso", min_b), ("--max-bucket-reso", max_b)):
        if v % bucket_steps:
            raise ConfigError(f"{name} {v} must be divisible by --bucket-steps {bucket_steps}")
    if not 0 < min_b <= max_b:
        raise ConfigError(f"--min-bucket-reso {min_b} must be positive and at most --max-bucket-reso {max_b}")


def export_lora(
    out: str | Path,
    dataset: str | Path,
    *,
    fmt: str = "kohya",
    trigger: str = DEFAULT_TRIGGER,
    repeats: int = 10,
    concept: str = "background",
    resolution: int = 1024,
    batch_size: int = 1,
    caption: str = DEFAULT_CAPTION,
    include_flagged: bool = False,
    max_residue: float = EXPORT_RESIDUE,
    masked_loss: bool = False,
    mask_form: str = "conditioning",
    bucket: bool = True,
    min_bucket_reso: int | None = None,
    max_bucket_reso: int | None = None,
    bucket_steps: int = 64,
    use_dedupe: bool = True,
    force: bool = False,
    progress: ProgressFn | None = None,
) -> StepResult:
    """Write the training set for the plates of ``out`` into ``dataset``; the step JSON goes to
    ``OUT/dataset/export.json``. Which plates are left out, and why, is the training-set verdict
    (:func:`cleanplate.qa.verdict.verdicts`, the one the report shows): failed frames always;
    near-duplicates when ``dedupe.json`` is there and ``use_dedupe``; flagged ones (a flagged or
    failed check, a mask less complete than its shot neighbours', or a residue score above
    ``max_residue``) unless ``include_flagged``; with ``masked_loss``, plates without a removal mask."""
    out, root = Path(out), Path(dataset).expanduser().resolve()
    concept = slug(concept)
    min_b = min_bucket_reso or max(bucket_steps, resolution // 4 // bucket_steps * bucket_steps)
    max_b = max_bucket_reso or resolution * 2 // bucket_steps * bucket_steps
    _validate(fmt, trigger, repeats, concept, resolution, batch_size, mask_form, bucket_steps, min_b, max_b)
    check_max_residue(max_residue)
    make_caption(caption, trigger, "x", concept)  # a bad template fails before any work
    path = export_path(out)
    plates = load_plates(out)
    warnings: list[str] = []
    dd = read_step(dedupe_path(out)) if use_dedupe else None
    if dd is not None and dd.get("hash") != step_hash(dd.get("settings") or {}, plates,
                                                      [out / "instances_metadata.json", out / REVIEW_FILE]):
        warnings.append("dedupe.json is older than the plates: rerun `cleanplate dedupe` to refresh the kept list")
    settings = {"format": fmt, "dataset": str(root), "trigger": trigger, "repeats": repeats, "concept": concept,
                "resolution": resolution, "batch_size": batch_size, "caption": caption,
                "include_flagged": include_flagged, "max_residue": float(max_residue), "masked_loss": masked_loss,
                "mask_form": mask_form if masked_loss else None, "bucket": bucket,
                "buckets": [min_b, max_b, bucket_steps], "use_dedupe": use_dedupe}
    digest = step_hash(settings, plates, [dedupe_path(out), organize_path(out), out / "instances_metadata.json",
                                          out / REVIEW_FILE])
    old = read_step(path) or {}
    if (old.get("hash") == digest and not force and (root / MARKER).is_file()
            and all((root / f).is_file() for f in old.get("files") or [])):
        return StepResult("export", path, True, old.get("summary", {}), warnings)
    previous = read_step(root / MARKER) or {}
    if root.is_dir() and any(root.iterdir()) and not previous and not force:
        raise OutputError(f"{root} is not empty and holds no cleanplate export: choose an empty folder (or --force)")

    kept, groups = dedupe_inputs(dd if dd is not None else read_step(dedupe_path(out)))  # groups stand in for shots
    if dd is None:
        kept = None
    reasons = verdicts(plates, segment_records(out), max_residue=max_residue, kept=kept, groups=groups,
                       include_flagged=include_flagged, need_mask=masked_loss, decisions=load_review(out).decisions)
    excluded: dict[str, str] = {fid: why for fid, why in reasons.items() if why is not None}
    chosen = [p for p in plates if reasons[p.frame_id] is None]

    sub = f"{repeats}_{concept}"
    img_dir = root / "img" / sub
    mask_dir = root / "mask" / sub if masked_loss and mask_form == "conditioning" else None
    for d in (img_dir, mask_dir):
        if d is not None:
            d.mkdir(parents=True, exist_ok=True)
    scenes = _scenes(out)
    events = Events("export", progress)
    events.start(len(chosen))
    files: list[str] = []
    meta_lines: list[str] = []
    removed_tags: set[str] = set()
    example = ""
    for p, orig in _with_originals(chosen, masked_loss):
        if orig is not None:
            if isinstance(orig, str):
                excluded[p.frame_id] = orig
                events.frame(p.frame_id, "failed", orig)
                continue
            removal = read_mask(p.mask_path)  # type: ignore[arg-type]
            if removal.shape != orig.shape[:2]:
                excluded[p.frame_id] = "original frame and removal mask differ in size"
                events.frame(p.frame_id, "failed", excluded[p.frame_id])
                continue
            keep = np.where(removal, 0, 255).astype(np.uint8)  # white = train (real pixels)
            image_name = f"{p.frame_id}.png"
            if mask_dir is not None:
                write_image(img_dir / image_name, orig)
                write_image(mask_dir / image_name, keep)
                files.append(str((mask_dir / image_name).relative_to(root)))
            else:
                write_image(img_dir / image_name, np.dstack([orig, keep]))
        else:
            image_name = f"{p.frame_id}{p.path.suffix.lower()}"  # type: ignore[union-attr]
            atomic_write_bytes(img_dir / image_name, p.path.read_bytes())  # type: ignore[union-attr]
        text, removed = make_caption(caption, trigger, scenes.get(p.frame_id), concept)
        removed_tags.update(removed)
        example = example or text
        atomic_write_bytes(img_dir / f"{p.frame_id}.txt", (text + "\n").encode())
        meta_lines.append(json.dumps({"file_name": image_name, "text": text}))
        files += [str((img_dir / image_name).relative_to(root)), str((img_dir / f"{p.frame_id}.txt").relative_to(root))]
        events.frame(p.frame_id)
    events.end()
    atomic_write_bytes(img_dir / "metadata.jsonl", ("\n".join(meta_lines) + "\n").encode() if meta_lines else b"")
    files.append(str((img_dir / "metadata.jsonl").relative_to(root)))

    k = kohya.KohyaSettings(image_dir=img_dir, repeats=repeats, concept=concept, resolution=resolution,
                            batch_size=batch_size, bucket=bucket, min_bucket_reso=min_b, max_bucket_reso=max_b,
                            bucket_reso_steps=bucket_steps, trigger=trigger, mask_dir=mask_dir,
                            alpha_mask=masked_loss and mask_form == "alpha")
    counts = _counts(len(meta_lines), excluded)
    atomic_write_bytes(root / "dataset_config.toml", kohya.dataset_config(k).encode())
    atomic_write_bytes(root / "train_command.sh", kohya.train_command(k, root).encode())
    (root / "train_command.sh").chmod(0o755)
    atomic_write_bytes(root / "README.md", kohya.readme(k, root, counts, example).encode())
    files += ["dataset_config.toml", "train_command.sh", "README.md"]
    _remove_stale(root, previous, set(files))
    if not meta_lines:
        warnings.append("no plate was exported (all were left out): see 'excluded' in export.json")
    if removed_tags:
        warnings.append(f"caption tags naming characters were removed: {', '.join(sorted(removed_tags))}")
    summary = {**counts, "dataset": str(root), "image_dir": str(img_dir), "trigger": trigger, "repeats": repeats,
               "masked_loss": (mask_form if masked_loss else False), "dedupe_used": kept is not None,
               "organize_used": bool(scenes), "train_script": kohya.script_name(resolution)}
    data = {"step": "export", "version": STEP_VERSION, "hash": digest, "settings": settings, "summary": summary,
            "warnings": warnings, "excluded": excluded, "files": files,
            "inputs": {"dedupe": file_stamp(dedupe_path(out)), "organize": file_stamp(organize_path(out))}}
    write_step(root / MARKER, data)
    write_step(path, data)
    return StepResult("export", path, False, summary, warnings)


def _counts(exported: int, excluded: dict[str, str]) -> dict[str, Any]:
    counts = {"exported": exported, "near_duplicates": 0, "flagged": 0, "rejected": 0, "failed": 0, "other": 0}
    for why in excluded.values():
        counts[reason_kind(why)] += 1
    return counts


def _remove_stale(root: Path, old: dict[str, Any], keep: set[str]) -> None:
    """Delete the files a previous export to this folder wrote that this one did not."""
    for rel in old.get("files") or []:
        if rel not in keep:
            (root / rel).unlink(missing_ok=True)
    for d in sorted({(root / rel).parent for rel in old.get("files") or []}, key=lambda p: -len(p.parts)):
        if d != root and d.is_dir() and not any(d.iterdir()):
            d.rmdir()
