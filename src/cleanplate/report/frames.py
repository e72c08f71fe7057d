"""The frames of an output folder as the report sees them, and the report's thumbnails.

:func:`load_frames` joins ``instances_metadata.json`` and ``inpainting_metadata.json`` per frame.
:class:`Thumbs` writes small JPEGs into ``OUT/report_files/``; the original of a frame comes from
``OUT/thumbs/<frame>.jpg`` (written at decode time, so video input has originals too), else from
the source file of folder input.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from jinja2 import Environment, PackageLoader, select_autoescape

from cleanplate.io.outputs import atomic_write_bytes, encode_image, read_image_rgb, read_mask

THUMB_WIDTH = 360
FILES_DIR = "report_files"
THUMBS_DIR = "thumbs"
PLATE_EXTS = (".jpg", ".png", ".jpeg")


def _env() -> Environment:
    return Environment(loader=PackageLoader("cleanplate.report", "templates"),
                       autoescape=select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}



# ------------------------------------------------------------------------------------- frames

@dataclass
class FrameInfo:
    """What the metadata files say about one frame."""

    frame_id: str
    index: int
    source: str | None = None
    segment: dict[str, Any] = field(default_factory=dict)
    fill: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> str | None:
        """The failure reason of the first failed stage, or None."""
        for stage, rec in (("segment", self.segment), ("fill", self.fill)):
            if rec and rec.get("status") not in (None, "ok"):
                return f"{stage}: {rec.get('error') or 'failed'}"
        return None

    @property
    def checks(self) -> dict[str, Any] | None:
        c = self.fill.get("checks")
        return c if isinstance(c, dict) else None

    @property
    def extra(self) -> dict[str, Any]:
        e = self.fill.get("extra")
        return e if isinstance(e, dict) else {}


def load_frames(out: Path) -> tuple[list[FrameInfo], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Frames (in input order) and the three metadata documents (empty when missing or unreadable)."""
    seg = _read_json(out / "instances_metadata.json")
    fill = _read_json(out / "inpainting_metadata.json")
    run = _read_json(out / "run.json")
    frames: dict[str, FrameInfo] = {}
    for stage, doc in (("segment", seg), ("fill", fill)):
        recs = doc.get("frames") if isinstance(doc.get("frames"), dict) else {}
        for fid, rec in recs.items():
            if not isinstance(rec, dict):
                continue
            info = frames.setdefault(fid, FrameInfo(fid, int(rec.get("index", len(frames)) or 0)))
            setattr(info, stage, rec)
            info.source = info.source or rec.get("source")
    return sorted(frames.values(), key=lambda f: (f.index, f.frame_id)), seg, fill, run


def find_plate(out: Path, frame_id: str, rec: dict[str, Any] | None = None) -> Path | None:
    """The plate file of a frame: the fill record's ``backgrounds/`` output, else the usual names."""
    for rel in (rec or {}).get("outputs") or []:
        if str(rel).startswith("backgrounds/") and (out / rel).is_file():
            return out / rel
    for ext in PLATE_EXTS:
        p = out / "backgrounds" / f"{frame_id}{ext}"
        if p.is_file():
            return p
    return None


# --------------------------------------------------------------------------------- thumbnails

class Thumbs:
    """Writes thumbnails into ``report_files/`` once each; returns their relative URLs."""

    def __init__(self, out: Path, width: int = THUMB_WIDTH) -> None:
        self.out, self.width = out, width
        self.dir = out / FILES_DIR
        self.done: dict[str, dict[str, str | None]] = {}
        self.n = 0

    def _save(self, arr: np.ndarray, name: str) -> str:
        h, w = arr.shape[:2]
        if w > self.width:
            arr = cv2.resize(arr, (self.width, max(1, round(h * self.width / w))), interpolation=cv2.INTER_AREA)
        atomic_write_bytes(self.dir / name, encode_image(arr, ".jpg", 85))
        return f"{FILES_DIR}/{name}"

    def frame(self, info: FrameInfo) -> dict[str, str | None]:
        """URLs of the original, the mask overlay and the plate thumbnails (None where missing)."""
        if info.frame_id in self.done:
            return self.done[info.frame_id]
        stem = f"f{self.n:05d}"
        self.n += 1
        orig_path = original_path(self.out, info)
        original = _load_rgb(orig_path) if orig_path is not None else None
        plate_path = find_plate(self.out, info.frame_id)
        plate = _load_rgb(plate_path) if plate_path else None
        mask = _load_mask(self.out / "masks" / f"{info.frame_id}.png")
        urls: dict[str, str | None] = {"original": None, "overlay": None, "plate": None}
        if original is not None:
            urls["original"] = self._save(original, f"{stem}_orig.jpg")
        base = original if original is not None else plate
        if base is not None and mask is not None and mask.shape != base.shape[:2]:  # a thumbs/ original
            mask = cv2.resize(mask.astype(np.uint8), base.shape[1::-1], interpolation=cv2.INTER_NEAREST) > 0
        if base is not None and mask is not None:
            urls["overlay"] = self._save(overlay(base, mask), f"{stem}_mask.jpg")
        if plate is not None:
            urls["plate"] = self._save(plate, f"{stem}_plate.jpg")
        urls["plate_full"] = _rel(plate_path, self.out) if plate_path else None
        mpath = self.out / "masks" / f"{info.frame_id}.png"
        urls["mask_full"] = _rel(mpath, self.out) if mpath.is_file() else None
        urls["original_full"] = _rel(orig_path, self.out) if original is not None and orig_path is not None else None
        self.done[info.frame_id] = urls
        return urls


def original_path(out: Path, info: FrameInfo) -> Path | None:
    """Where the frame's original can be seen: ``OUT/thumbs/<frame>.jpg`` (any input, video included),
    else the source file of folder input; None when neither is there."""
    thumb = out / THUMBS_DIR / f"{info.frame_id}.jpg"
    if thumb.is_file():
        return thumb
    for rel in info.segment.get("outputs") or []:
        if str(rel).startswith(f"{THUMBS_DIR}/") and (out / rel).is_file():
            return out / rel
    if info.source and "#" not in Path(info.source).name and Path(info.source).is_file():
        return Path(info.source)
    return None


def _rel(path: Path, start: Path) -> str:
    try:
        rel = os.path.relpath(path.resolve(), start.resolve())
    except ValueError:  # another drive (Windows)
        return path.resolve().as_uri()
    return Path(rel).as_posix()


def _load_rgb(path: Path) -> np.ndarray | None:
    try:
        return read_image_rgb(path) if path.is_file() else None
    except OSError:
        return None


def _load_mask(path: Path) -> np.ndarray | None:
    try:
        return read_mask(path) if path.is_file() else None
    except OSError:
        return None


def overlay(image: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int] = (255, 40, 40)) -> np.ndarray:
    """The frame with the mask tinted (45 %) and outlined: HxWx3 uint8 RGB."""
    out = image.copy()
    m = mask.astype(bool)
    tint = np.array(colour, np.float32)
    out[m] = (0.55 * out[m].astype(np.float32) + 0.45 * tint).astype(np.uint8)
    contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, colour, max(1, round(max(image.shape[:2]) / 400)))
    return out


__all__ = ["FILES_DIR", "PLATE_EXTS", "THUMBS_DIR", "FrameInfo", "Thumbs", "find_plate", "load_frames", "original_path",
           "overlay"]
