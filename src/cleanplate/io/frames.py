"""Frames in: a folder of images (natural sort) or a video file (PyAV).

:func:`open_source` describes the input; iterating a :class:`FrameSource` yields
``(FrameRef, loader)`` pairs where ``loader()`` returns the frame as HxWx3 uint8 RGB or raises
:class:`~cleanplate.errors.FrameError` with a one-line reason. Decoding is deterministic, so the
same call always gives the same bytes (the plate's unmasked pixels are compared against it).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from natsort import natsorted, ns
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from cleanplate.errors import FrameError, InputError

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
VIDEO_EXTS = {".mp4", ".mkv", ".mov", ".webm", ".avi", ".m4v"}

# Our own max_side check replaces PIL's decompression-bomb guard; truncated files must fail, not pad.
Image.MAX_IMAGE_PIXELS = None
ImageFile.LOAD_TRUNCATED_IMAGES = False

Loader = Callable[[], np.ndarray]


@dataclass(frozen=True)
class FrameRef:
    """One frame of the input: a file-name-safe id, its position, and where it came from."""

    frame_id: str
    index: int
    source: str
    path: Path | None = None


def _check_side(w: int, h: int, max_side: int) -> None:
    if max(w, h) > max_side:
        raise FrameError(f"image is {w}x{h}, larger than max_side {max_side} (raise input.max_side to allow it)")


def to_rgb8(im: Image.Image) -> np.ndarray:
    """Any PIL image -> HxWx3 uint8 RGB. 16/32-bit integer images are scaled, not clipped."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(im)
        if arr.dtype != np.uint16:
            # mode "I" holds 16-bit PNGs in int32; scale by the range the values use.
            top = 65535 if arr.max(initial=0) > 255 else 255
            arr = np.clip(arr, 0, top).astype(np.float64) * (255.0 / top)
        else:
            arr = arr.astype(np.float64) / 257.0
        gray = np.rint(arr).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if im.mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        scale = 255.0 if arr.max(initial=0) <= 1.0 else 1.0
        gray = np.clip(np.rint(arr * scale), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if im.mode != "RGB":
        im = im.convert("RGB")  # CMYK, L, LA, P, PA, RGBA (alpha dropped), YCbCr, 1
    return np.ascontiguousarray(np.asarray(im, dtype=np.uint8))


def load_image(path: Path, max_side: int = 8192) -> np.ndarray:
    """Decode an image file to HxWx3 uint8 RGB, EXIF orientation applied.

    Raises FrameError (one line) for empty, truncated, non-image or too-large files.
    """
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise FrameError(f"cannot read file: {exc.strerror}") from None
    if size == 0:
        raise FrameError("empty file (0 bytes)")
    try:
        with Image.open(path) as im:
            _check_side(im.width, im.height, max_side)
            im.load()
            im = ImageOps.exif_transpose(im)
            _check_side(im.width, im.height, max_side)
            return to_rgb8(im)
    except FrameError:
        raise
    except UnidentifiedImageError:
        raise FrameError("not an image (format not recognised)") from None
    except (OSError, ValueError, SyntaxError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FrameError(f"corrupt or truncated image: {msg}") from None
    except Image.DecompressionBombError as exc:  # pragma: no cover - MAX_IMAGE_PIXELS is disabled
        raise FrameError(str(exc)) from None


def _safe_id(rel: Path) -> str:
    parts = list(rel.with_suffix("").parts)
    return "__".join(p.replace(" ", "_") for p in parts)


def _unique_ids(ids: list[str], files: list[Path]) -> list[str]:
    """Frame ids made unique in linear time: a stem shared by several files gets the extension
    (``x_png``, ``x_jpg``); ids that still collide (``a/b.png`` and ``a__b.png``) get the position."""
    dupes = {i for i, n in Counter(ids).items() if n > 1}
    out = [f"{fid}_{p.suffix.lower().lstrip('.')}" if fid in dupes else fid for fid, p in zip(ids, files, strict=True)]
    still = {i for i, n in Counter(out).items() if n > 1}
    return [f"{fid}_{k}" if fid in still else fid for k, fid in enumerate(out)] if still else out


class FrameSource:
    """An input: a folder of frames or a video. Iterate to get ``(FrameRef, loader)`` pairs."""

    kind: str

    def __init__(self, root: Path) -> None:
        self.root = root

    def __iter__(self) -> Iterator[tuple[FrameRef, Loader]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> dict[str, object]:
        return {"kind": self.kind, "path": str(self.root.resolve())}


class FolderSource(FrameSource):
    kind = "folder"

    def __init__(self, root: Path, recursive: bool = False, limit: int | None = None, max_side: int = 8192) -> None:
        super().__init__(root)
        self.max_side = max_side
        pattern = root.rglob("*") if recursive else root.iterdir()
        files = [p for p in pattern if p.suffix.lower() in IMAGE_EXTS and p.is_file() and not p.name.startswith(".")]
        files = natsorted(files, key=lambda p: str(p.relative_to(root)), alg=ns.PATH | ns.IGNORECASE)
        if limit is not None:
            files = files[:limit]
        ids = [_safe_id(p.relative_to(root)) for p in files]
        self.refs = [FrameRef(fid, k, str(p), p) for k, (fid, p) in enumerate(zip(_unique_ids(ids, files), files,
                                                                                  strict=True))]

    def __len__(self) -> int:
        return len(self.refs)

    def __iter__(self) -> Iterator[tuple[FrameRef, Loader]]:
        for ref in self.refs:
            path = ref.path
            assert path is not None
            yield ref, (lambda p=path: load_image(p, self.max_side))


class VideoSource(FrameSource):
    kind = "video"

    def __init__(self, root: Path, every: int = 1, limit: int | None = None, max_side: int = 8192) -> None:
        super().__init__(root)
        self.every, self.limit, self.max_side = every, limit, max_side
        import av

        try:
            with av.open(str(root)) as container:
                if not container.streams.video:
                    raise InputError(f"{root} has no video stream")
                stream = container.streams.video[0]
                self.n_frames = int(stream.frames or 0)
                self.fps = float(stream.average_rate or 0)
        except InputError:
            raise
        except Exception as exc:  # PyAV raises av.error.* types
            raise InputError(f"cannot open video {root}: {str(exc).splitlines()[0] if str(exc) else exc}") from None

    def __len__(self) -> int:
        if not self.n_frames:
            return self.limit or 0
        n = (self.n_frames + self.every - 1) // self.every
        return min(n, self.limit) if self.limit else n

    def __iter__(self) -> Iterator[tuple[FrameRef, Loader]]:
        import av

        stem = self.root.stem.replace(" ", "_")
        kept = 0
        with av.open(str(self.root)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            decoded = 0
            try:
                for frame in container.decode(stream):
                    idx = decoded
                    decoded += 1
                    if idx % self.every:
                        continue
                    if self.limit is not None and kept >= self.limit:
                        return
                    ref = FrameRef(f"{stem}_{idx:06d}", kept, f"{self.root}#{idx}")
                    kept += 1
                    arr = frame.to_ndarray(format="rgb24")
                    yield ref, (lambda a=arr: self._check(a))
            except av.error.FFmpegError as exc:
                ref = FrameRef(f"{stem}_{decoded:06d}", kept, f"{self.root}#{decoded}")

                def fail(msg: str = str(exc).splitlines()[0] if str(exc) else "decode error") -> np.ndarray:
                    raise FrameError(f"video decoding stopped here: {msg}")

                yield ref, fail

    def _check(self, arr: np.ndarray) -> np.ndarray:
        _check_side(arr.shape[1], arr.shape[0], self.max_side)
        return arr

    def describe(self) -> dict[str, object]:
        return {"kind": self.kind, "path": str(self.root.resolve()), "every": self.every, "fps": self.fps}


def open_source(
    path: str | os.PathLike[str],
    *,
    recursive: bool = False,
    every: int = 1,
    limit: int | None = None,
    max_side: int = 8192,
) -> FrameSource:
    """Open a folder of frames or a video file; InputError when missing, empty or of another kind."""
    root = Path(path).expanduser()
    if not root.exists():
        raise InputError(f"input not found: {root}")
    if root.is_dir():
        src = FolderSource(root, recursive=recursive, limit=limit, max_side=max_side)
        if len(src) == 0:
            hint = "" if recursive else " (sub-folders are searched with --recursive)"
            raise InputError(f"no frames ({', '.join(sorted(IMAGE_EXTS))}) in {root}{hint}")
        return src
    if root.suffix.lower() in VIDEO_EXTS:
        return VideoSource(root, every=every, limit=limit, max_side=max_side)
    if root.suffix.lower() in IMAGE_EXTS:
        raise InputError(f"{root} is a single image: give the folder that holds the frames")
    raise InputError(f"{root} is neither a folder of frames nor a video ({', '.join(sorted(VIDEO_EXTS))})")
