"""The decode stage: a frame of the input becomes a :class:`FrameRecord` with its pixels.

Also the disk hand-over of the ``inpaint`` command (and of frames an earlier ``run`` segmented):
:func:`load_mask` reads the removal mask a segment stage wrote.
"""

from __future__ import annotations

from pathlib import Path

from cleanplate import masks as M
from cleanplate.errors import FrameError
from cleanplate.io.frames import FrameRef, Loader
from cleanplate.io.outputs import read_mask
from cleanplate.records import FrameRecord
from cleanplate.stages.base import fail, timed


def new_record(ref: FrameRef) -> FrameRecord:
    return FrameRecord(ref.frame_id, ref.index, ref.source, None if ref.path is None else str(ref.path))


def decode(rec: FrameRecord, loader: Loader, raise_errors: bool = False) -> FrameRecord:
    """Set ``rec.image`` (HxWx3 uint8 RGB) from ``loader``; a bad frame is recorded as failed."""
    with timed(rec, "decode"):
        try:
            rec.image = loader()
        except Exception as exc:  # one frame's failure never stops the batch
            fail(rec, exc, "decode", raise_errors)
    return rec


def load_mask(rec: FrameRecord, path: Path, extra_dilate: int, raise_errors: bool = False,
              relative: bool = False) -> FrameRecord:
    """Set ``rec.mask`` (HxW bool) from a mask image, grown by ``extra_dilate`` px (``relative``: px of a
    1080-line frame, see :func:`cleanplate.masks.dilation_radius`)."""
    if rec.failed or rec.image is None:
        return rec
    with timed(rec, "decode"):
        try:
            if not path.is_file():
                raise FrameError(f"no mask masks/{path.name} in {path.parent.parent}")
            mask = read_mask(path)
            image = rec.image
            if mask.shape != image.shape[:2]:
                raise FrameError(f"mask is {mask.shape[1]}x{mask.shape[0]}, frame is {image.shape[1]}x{image.shape[0]}")
            rec.mask = M.dilate(mask, M.dilation_radius(extra_dilate, relative, mask.shape))
        except Exception as exc:
            fail(rec, exc, "decode", raise_errors)
    return rec
