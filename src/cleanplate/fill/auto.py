"""``fill.method: auto``: the best inventor available without downloading anything.

LaMa when its weights are already on disk (and its runtime is installed), else PatchMatch, the
offline inventor that measured best on the bench. (The structure-first
:mod:`exemplar <cleanplate.fill.exemplar>` fill is 2 dB below PatchMatch per frame on the
still-character composite, ``benchmarks/bench_still.py``: it is a method of its own, not the
fallback, until it beats it.) The choice is made once, when the inpainter is
built, and recorded in every frame's ``FillResult.extra`` (``auto_method``; ``auto_why`` when LaMa
was passed over). ``temporal+auto`` (the default fill) borrows from the shot's other frames first
and hands only what no frame saw to this choice.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cleanplate.config import Config
from cleanplate.errors import BackendUnavailableError, WeightsError
from cleanplate.fill.base import INPAINTERS
from cleanplate.fill.lama import LamaInpainter
from cleanplate.records import FillResult
from cleanplate.weights import WeightsUse, resolve

OFFLINE = "patchmatch"
"""The inventor ``auto`` takes without LaMa weights."""


def lama_on_disk(config: Config) -> str | None:
    """None when ``fill.lama``'s weights are here (never downloads); else why not, in one line."""
    try:
        resolve(config.fill.lama.model, config.fill.lama.checkpoint, download=False)
    except (WeightsError, KeyError) as exc:
        return f"lama weights not on disk ({str(exc)[:120]})"
    return None


@INPAINTERS.register("auto")
class AutoInpainter:
    """LaMa when its weights are on disk, else :data:`OFFLINE`; ``chosen`` names the one used."""

    name = "auto"

    def __init__(self, config: Config, device: str) -> None:
        self.why = lama_on_disk(config)
        self.inner: Any = None
        if self.why is None:
            try:
                self.inner = LamaInpainter(config, device)
            except (WeightsError, BackendUnavailableError) as exc:
                self.why = f"lama not usable ({str(exc)[:120]})"
        if self.inner is None:
            self.inner = INPAINTERS.get(OFFLINE)(config, device)
        self.chosen: str = self.inner.name
        self.frame_threads = bool(getattr(self.inner, "frame_threads", False))

    def fill(self, images: list[np.ndarray], masks: list[np.ndarray]) -> list[FillResult]:
        out = self.inner.fill(images, masks)
        for r in out:
            r.extra["auto_method"] = self.chosen
            if self.why:
                r.extra["auto_why"] = self.why
        return out

    def weights_used(self) -> list[WeightsUse]:
        return list(self.inner.weights_used())


__all__ = ["AutoInpainter", "lama_on_disk"]
