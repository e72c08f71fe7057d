"""The inpainter protocols and registry.

An inpainter is a class holding a loaded model. ``fill(images, masks)`` takes a batch of HxWx3
uint8 RGB frames and HxW bool masks (True = to fill) and returns one
:class:`~cleanplate.records.FillResult` per frame. A sequential inpainter (the temporal fill)
instead takes a shot's frames in order through ``fill_sequence``. The pipeline pastes only masked
pixels of the result back into the frame, so unmasked pixels stay the input's, whatever a
backend returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol, runtime_checkable

import numpy as np

from cleanplate.config import Config
from cleanplate.records import FillResult, SequenceFrame
from cleanplate.registry import Registry
from cleanplate.weights import WeightsUse


class Inpainter(Protocol):
    name: str
    frame_threads: bool
    """True when ``fill`` of different frames may run at once on threads (native code that releases
    the GIL, no shared mutable state): the fill stage then fills ``fill.workers`` frames at a time."""

    def __init__(self, config: Config, device: str) -> None: ...

    def fill(self, images: list[np.ndarray], masks: list[np.ndarray]) -> list[FillResult]: ...

    def weights_used(self) -> list[WeightsUse]: ...


@runtime_checkable
class SequentialInpainter(Protocol):
    """An inpainter that needs the frames of a shot in order (and done frames as context)."""

    name: str

    def fill_sequence(self, frames: Iterable[SequenceFrame]
                      ) -> Iterator[tuple[SequenceFrame, FillResult | Exception]]:
        """One (frame, result or the frame's exception) per frame with ``todo``, in order."""
        ...

    def fill(self, images: list[np.ndarray], masks: list[np.ndarray]) -> list[FillResult]: ...

    def weights_used(self) -> list[WeightsUse]: ...


INPAINTERS: Registry[Inpainter] = Registry("fill method")


def create_inpainter(config: Config, device: str) -> Inpainter | SequentialInpainter:
    """The inpainter of ``config.fill.method`` (``temporal+<name>`` wraps the registered ``<name>``)."""
    import cleanplate.fill  # noqa: F401  (registers the built-in backends and their temporal+ forms)

    cls = INPAINTERS.get(config.fill.method)
    return cls(config, device)
