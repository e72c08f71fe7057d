"""An oracle concept source: names exactly the true objects of footage with truth masks.

For tests and benchmarks: it answers as a perfect concept model would, so the character decision
can be driven without weights. Built from frames with their truth masks (one mask per object per
frame: :class:`OracleConceptSource`), from a DAVIS clip (``frames/`` + binary ``masks/`` of the same
stem: :meth:`OracleConceptSource.from_davis`), or from a benchmark case
(:func:`cleanplate.report.bench_cases.oracle_for`).

``detect`` finds each frame it is given among the frames it knows: the same pixels (a hash), else the
closest known frame of the same aspect ratio (the pipeline may have scaled it), whose masks are scaled
to the frame. A frame it does not know (no known frame within ``max_difference`` mean gray levels)
gets no detection.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np

from cleanplate.errors import InputError
from cleanplate.records import bbox_xywh
from cleanplate.segment.concept import ConceptDetection, resized_mask
from cleanplate.weights import WeightsUse

_THUMB = (32, 32)


def _key(image: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(image).tobytes() + str(image.shape).encode()).hexdigest()


def _thumb(image: np.ndarray) -> np.ndarray:
    return cv2.resize(image, _THUMB, interpolation=cv2.INTER_AREA).astype(np.float32)


class OracleConceptSource:
    """Names the truth objects: label ``label`` (default "person"), score 1.0, mask = the truth mask.

    ``frames``: HxWx3 uint8 RGB; ``truths``: per frame, a list of HxW bool masks (one per object in
    view; [] where nobody is). Empty masks are ignored.
    """

    name = "oracle"

    def __init__(self, frames: list[np.ndarray], truths: list[list[np.ndarray]], label: str = "person",
                 max_difference: float = 8.0) -> None:
        if len(frames) != len(truths):
            raise ValueError(f"{len(frames)} frames but {len(truths)} truth lists")
        self.concepts = [label]
        self.label = label
        self.max_difference = max_difference
        self._truths = [[np.asarray(m, bool) for m in ms if np.asarray(m).any()] for ms in truths]
        self._by_key = {_key(f): i for i, f in enumerate(frames)}
        self._shapes = [f.shape[:2] for f in frames]
        self._thumbs = [_thumb(f) for f in frames]

    @classmethod
    def from_davis(cls, clip: str | Path, start: int = 0, count: int | None = None,
                   size: tuple[int, int] | None = None, label: str = "person") -> OracleConceptSource:
        """From a DAVIS folder (``frames/*.jpg|png`` and ``masks/<stem>.png``, object > 0): frames
        ``start`` .. ``start + count``, scaled to ``size`` (W, H) when given."""
        from cleanplate.io.frames import load_image

        clip = Path(clip)
        files = sorted(p for p in (clip / "frames").iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        files = files[start:None if count is None else start + count]
        if not files:
            raise InputError(f"no frames in {clip / 'frames'}")
        frames, truths = [], []
        for f in files:
            image = load_image(f)
            mpath = clip / "masks" / f"{f.stem}.png"
            mask = cv2.imread(str(mpath), cv2.IMREAD_GRAYSCALE) if mpath.is_file() else None
            mask = np.zeros(image.shape[:2], bool) if mask is None else mask > 127
            if size is not None:
                image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
                mask = resized_mask(mask, (size[1], size[0]))
            frames.append(image)
            truths.append([mask])
        return cls(frames, truths, label)

    def _find(self, image: np.ndarray) -> int | None:
        i = self._by_key.get(_key(image))
        if i is not None:
            return i
        h, w = image.shape[:2]
        thumb, best, best_d = _thumb(image), None, float("inf")
        for j, (sh, t) in enumerate(zip(self._shapes, self._thumbs, strict=True)):
            if abs(sh[1] / sh[0] - w / h) > 0.02:
                continue
            d = float(np.abs(t - thumb).mean())
            if d < best_d:
                best, best_d = j, d
        return best if best_d <= self.max_difference else None

    def detect(self, images: list[np.ndarray]) -> list[list[ConceptDetection]]:
        """Per HxWx3 uint8 RGB frame: one detection per truth object of the matching known frame."""
        out = []
        for image in images:
            i = self._find(image)
            dets = []
            for m in [] if i is None else self._truths[i]:
                m = resized_mask(m, (int(image.shape[0]), int(image.shape[1])))
                if not m.any():
                    continue
                x, y, w, h = bbox_xywh(m)
                dets.append(ConceptDetection((float(x), float(y), float(x + w), float(y + h)), self.label, 1.0, m,
                                             self.name, "truth"))
            out.append(dets)
        return out

    def weights_used(self) -> list[WeightsUse]:
        return []
