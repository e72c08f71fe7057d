"""cleanplate: turn film frames into clean background plates.

Library API (the CLI only wraps it)::

    from cleanplate import load_config, run
    cfg = load_config(profile="default")
    summary = run("frames/", "out/", cfg)
"""

from __future__ import annotations

__version__ = "0.1.0"

from cleanplate.config import Config, load_config
from cleanplate.errors import (
    BackendUnavailableError,
    CleanplateError,
    ConfigError,
    FrameError,
    InputError,
    OutputError,
    WeightsError,
)
from cleanplate.pipeline import RunSummary, inpaint, run, segment

__all__ = [
    "BackendUnavailableError",
    "CleanplateError",
    "Config",
    "ConfigError",
    "FrameError",
    "InputError",
    "OutputError",
    "RunSummary",
    "WeightsError",
    "__version__",
    "inpaint",
    "load_config",
    "run",
    "segment",
]
