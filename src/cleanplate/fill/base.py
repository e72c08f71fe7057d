"""The inpainter protocol and registry.

An inpainter is a class holding a loaded model. ``fill(images, masks)`` takes a batch of HxWx3
uint8 RGB frames and HxW bool masks (True = to fill) and returns one
:class:`~cleanplate.records.FillResult` per frame. The pipeline pastes only masked pixels of the
result back into the frame, so unmasked pixels stay the input's, whatever a backend returns.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from cleanplate.config import Config
from cleanplate.records import FillResult
from cleanplate.registry import Registry
from cleanplate.weights import WeightsUse


class Inpainter(Protocol):
    name: str

    def __init__(self, config: Config, device: str) -> None: ...

    def fill(self, images: list[np.ndarray], masks: list[np.ndarray]) -> list[FillResult]: ...

    def weights_used(self) -> list[WeightsUse]: ...


INPAINTERS: Registry[Inpainter] = Registry("fill method")


def create_inpainter(config: Config, device: str) -> Inpainter:
    import cleanplate.fill  # noqa: F401  (registers the built-in backends)
    from cleanplate.fill.temporal import register_temporal

    register_temporal()  # temporal+<name> for every inpainter registered by now
    cls = INPAINTERS.get(config.fill.method)
    return cls(config, device)
