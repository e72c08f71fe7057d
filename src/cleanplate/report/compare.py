"""Side-by-side contact sheets of the same frames from two output folders (PNG and HTML).

``compare(OLD, NEW)`` pairs the plates of ``OLD/backgrounds`` and ``NEW/backgrounds`` by frame
name, takes a seeded random sample (optionally filtered by a glob pattern on the name), and
writes a PNG sheet (one row per frame: old | new) and an HTML page with the same rows, where
hovering a third "flip" image swaps old and new in place. Each row states the mean absolute
difference between the two plates, so unchanged frames are visible at a glance.
"""

from __future__ import annotations

import fnmatch
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from natsort import natsorted

from cleanplate.errors import InputError
from cleanplate.io.outputs import atomic_write_bytes, encode_image, read_image_rgb
from cleanplate.report.html import PLATE_EXTS, _env, _rel

LABEL_H = 24
HEADER_H = 30


@dataclass
class CompareResult:
    """The sheet's paths, the frames on it, and how many frames only one folder has."""

    png: Path
    html: Path
    frames: list[str]
    common: int
    only_old: int
    only_new: int


def plates_in(folder: Path) -> dict[str, Path]:
    """Frame name -> plate file, from ``folder/backgrounds`` (or ``folder`` itself if it holds images)."""
    root = folder / "backgrounds" if (folder / "backgrounds").is_dir() else folder
    if not root.is_dir():
        raise InputError(f"not a folder: {folder}")
    out: dict[str, Path] = {}
    for p in root.iterdir():
        if p.suffix.lower() in PLATE_EXTS and p.is_file() and not p.name.startswith("."):
            out.setdefault(p.stem, p)
    return out


def _paths(out: Path | None, new: Path) -> tuple[Path, Path]:
    if out is None:  # beside NEW's backgrounds/, never among the plates of a bare folder
        png = new / "compare.png" if (new / "backgrounds").is_dir() else new.parent / f"{new.name}_compare.png"
    elif out.suffix.lower() == ".html":
        png = out.with_suffix(".png")
    elif out.suffix.lower() == ".png":
        png = out
    else:
        png = out.with_name(out.name + ".png")
    return png, png.with_suffix(".html")


def _fit(img: np.ndarray, width: int) -> np.ndarray:
    h, w = img.shape[:2]
    return cv2.resize(img, (width, max(1, round(h * width / w))),
                      interpolation=cv2.INTER_AREA if w > width else cv2.INTER_LINEAR)


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode()


def _label(width: int, text: str, height: int = LABEL_H, shade: int = 235) -> np.ndarray:
    band = np.full((height, width, 3), shade, np.uint8)
    cv2.putText(band, _ascii(text), (6, height - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (20, 20, 20), 1, cv2.LINE_AA)
    return band


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference in grey levels; ``b`` is resized to ``a`` when their sizes differ."""
    if a.shape != b.shape:
        b = cv2.resize(b, (a.shape[1], a.shape[0]), interpolation=cv2.INTER_AREA)
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def compare(old_dir: str | Path, new_dir: str | Path, out: str | Path | None = None, *, sample: int = 16,
            seed: int = 0, pattern: str | None = None, width: int = 480) -> CompareResult:
    """Write the contact sheet of frames both folders have; see the module docstring.

    ``sample`` <= 0 takes every common frame. The PNG goes to ``out`` (default
    ``NEW/compare.png``; ``NEW_compare.png`` beside a bare folder of plates), the HTML beside it
    with its thumbnails in ``<name>_files/``.
    """
    old, new = Path(old_dir), Path(new_dir)
    a, b = plates_in(old), plates_in(new)
    common = natsorted(set(a) & set(b))
    if pattern:
        common = [f for f in common if fnmatch.fnmatchcase(f, pattern)]
    if not common:
        what = f" matching '{pattern}'" if pattern else ""
        raise InputError(f"no frame names{what} in both {old} ({len(a)} plates) and {new} ({len(b)} plates)")
    picked = common
    if 0 < sample < len(common):
        picked = natsorted(random.Random(seed).sample(common, sample))
    png_path, html_path = _paths(Path(out) if out is not None else None, new)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    files = html_path.with_name(html_path.stem + "_files")
    if files.is_dir():
        shutil.rmtree(files)
    files.mkdir(parents=True)

    rows_png: list[np.ndarray] = [np.hstack([_label(width, f"OLD  {old.resolve().name}", HEADER_H, 210),
                                             _label(width, f"NEW  {new.resolve().name}", HEADER_H, 210)])]
    rows_html = []
    for k, fid in enumerate(picked):
        pa, pb = read_image_rgb(a[fid]), read_image_rgb(b[fid])
        diff = mean_abs_diff(pa, pb)
        ta, tb = _fit(pa, width), _fit(pb, width)
        h = max(ta.shape[0], tb.shape[0])
        ta = np.pad(ta, ((0, h - ta.shape[0]), (0, 0), (0, 0)), constant_values=255)
        tb = np.pad(tb, ((0, h - tb.shape[0]), (0, 0), (0, 0)), constant_values=255)
        rows_png.append(_label(2 * width, f"{fid}   mean |new - old| = {diff:.2f}"))
        rows_png.append(np.hstack([ta, tb]))
        name_a, name_b = f"{k:04d}_old.jpg", f"{k:04d}_new.jpg"
        atomic_write_bytes(files / name_a, encode_image(ta, ".jpg", 90))
        atomic_write_bytes(files / name_b, encode_image(tb, ".jpg", 90))
        rows_html.append({"id": fid, "diff": f"{diff:.2f}", "old": f"{files.name}/{name_a}",
                          "new": f"{files.name}/{name_b}", "old_full": _rel(a[fid], html_path.parent),
                          "new_full": _rel(b[fid], html_path.parent)})
    atomic_write_bytes(png_path, encode_image(np.vstack(rows_png), ".png"))
    html = _env().get_template("compare.html.j2").render(
        old=str(old.resolve()), new=str(new.resolve()), rows=rows_html, common=len(common),
        only_old=len(set(a) - set(b)), only_new=len(set(b) - set(a)), pattern=pattern, seed=seed,
        png=png_path.name)
    atomic_write_bytes(html_path, html.encode("utf-8"))
    return CompareResult(png_path, html_path, picked, len(common), len(set(a) - set(b)), len(set(b) - set(a)))


__all__ = ["CompareResult", "compare", "mean_abs_diff", "plates_in"]
