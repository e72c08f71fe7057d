"""Outputs out: atomic writes (temp file in the same folder + rename) and the output layout."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from cleanplate.errors import OutputError

TMP_SUFFIX = ".cptmp"


def _file_mode() -> int:
    """Mode a plain ``open()`` would give a new file (mkstemp makes 0600 files)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_FILE_MODE = _file_mode()


def atomic_write_bytes(path: Path, data: bytes, *, fsync: bool = False) -> None:
    """Write ``data`` to ``path`` so that a reader (or a crash) sees the old file or the whole new one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def encode_image(arr: np.ndarray, ext: str, jpeg_quality: int = 95) -> bytes:
    """Encode HxW (gray), HxWx3 (RGB) or HxWx4 (RGBA) uint8 as PNG or JPEG bytes."""
    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGBA2BGRA)
    params: list[int] = []
    if ext in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
    elif ext == ".png":
        params = [cv2.IMWRITE_PNG_COMPRESSION, 3]
    ok, buf = cv2.imencode(ext, arr, params)
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 array
        raise OutputError(f"cannot encode image as {ext}")
    return buf.tobytes()


def write_image(path: Path, arr: np.ndarray, jpeg_quality: int = 95) -> None:
    atomic_write_bytes(path, encode_image(arr, path.suffix.lower(), jpeg_quality))


THUMB_SIDE = 320
THUMB_QUALITY = 85


def thumbnail(image: np.ndarray, side: int = THUMB_SIDE) -> np.ndarray:
    """HxWx3 uint8 RGB scaled (area filter) so its longer side is ``side`` px; smaller frames as they are."""
    h, w = image.shape[:2]
    if max(h, w) <= side:
        return image
    f = side / max(h, w)
    return cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)


def read_image_rgb(path: Path) -> np.ndarray:
    """Read a PNG/JPEG written by us: HxWx3 uint8 RGB."""
    arr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if arr is None:
        raise OSError(f"cannot read {path}")
    return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)


def read_mask(path: Path) -> np.ndarray:
    """Read a mask image: HxW bool (non-zero, or alpha when present, is set)."""
    from cleanplate.masks import from_png

    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise OSError(f"cannot read mask {path}")
    return from_png(arr)


def write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, default=json_default) + "\n").encode(), fsync=True)


def json_default(o: Any) -> Any:
    """JSON for numpy scalars and paths (the ``default=`` of every metadata file cleanplate writes)."""
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


@dataclass(frozen=True)
class Layout:
    """Paths of the output layout (DESIGN.md)."""

    root: Path
    plate_ext: str = ".jpg"

    @property
    def instances(self) -> Path:
        return self.root / "instances"

    @property
    def masks(self) -> Path:
        return self.root / "masks"

    @property
    def backgrounds(self) -> Path:
        return self.root / "backgrounds"

    @property
    def state(self) -> Path:
        return self.root / ".cleanplate"

    @property
    def sources(self) -> Path:
        return self.root / "sources"

    @property
    def thumbs(self) -> Path:
        return self.root / "thumbs"

    def thumb(self, frame_id: str) -> Path:
        return self.thumbs / f"{frame_id}.jpg"

    def source_map(self, frame_id: str) -> Path:
        return self.sources / f"{frame_id}.png"

    def mask(self, frame_id: str) -> Path:
        return self.masks / f"{frame_id}.png"

    def plate(self, frame_id: str) -> Path:
        return self.backgrounds / f"{frame_id}{self.plate_ext}"

    def cutout(self, frame_id: str, k: int) -> Path:
        return self.instances / f"{frame_id}_{k}.png"

    def instance_mask(self, frame_id: str, k: int) -> Path:
        return self.instances / f"{frame_id}_{k}_mask.png"

    @property
    def instances_metadata(self) -> Path:
        return self.root / "instances_metadata.json"

    @property
    def inpainting_metadata(self) -> Path:
        return self.root / "inpainting_metadata.json"

    @property
    def run_json(self) -> Path:
        return self.root / "run.json"

    def prepare(self, *dirs: Path) -> None:
        """Create the output folders; OutputError (one line) when that is not possible."""
        for d in (self.root, self.state, *dirs):
            try:
                d.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OutputError(f"cannot create output folder {d}: {exc.strerror}") from None
        probe = self.state / f".probe{os.getpid()}"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise OutputError(f"output folder {self.root} is not writable: {exc.strerror}") from None

    def clean_temp_files(self) -> int:
        """Remove temp files a killed run left behind; returns how many."""
        n = 0
        for d in (self.root, self.state, self.instances, self.masks, self.backgrounds, self.sources, self.thumbs):
            if d.is_dir():
                for p in d.glob(f".*{TMP_SUFFIX}"):
                    p.unlink(missing_ok=True)
                    n += 1
        return n
