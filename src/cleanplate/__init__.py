"""cleanplate: turn film frames into clean background plates.

Library API (the CLI only wraps it)::

    from cleanplate import load_config, run
    cfg = load_config(profile="default", overrides={"fill.method": "patchmatch"})
    summary = run("frames/", "out/", cfg)  # plates, masks, metadata and out/report.html
"""

from __future__ import annotations

__version__ = "0.1.0"

from pathlib import Path

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
from cleanplate.pipeline import ProgressEvent, ProgressFn, RunSummary, inpaint, segment


def run(
    input_path: str | Path,
    out_dir: str | Path,
    config: Config | None = None,
    *,
    force: bool = False,
    progress: ProgressFn | None = None,
    raise_errors: bool = False,
    report: bool = True,
) -> RunSummary:
    """Everything ``cleanplate run`` does: segment and fill every frame of ``input_path`` (a folder
    of frames or a video) into ``out_dir``, then write ``out_dir/report.html``.

    ``config`` defaults to the default profile; ``config.run.runner`` picks where the stages run
    (``local`` or ``ray``). ``progress`` gets a :class:`ProgressEvent` per stage start, frame and
    end. The report's path is ``summary.extra["report"]``. Raises a :class:`CleanplateError`
    subclass (one-line message) for bad input, configuration, weights or outputs; per-frame
    failures are recorded in the summary and the metadata files, never raised.
    """
    from cleanplate import pipeline

    cfg = config if config is not None else load_config()
    summary = pipeline.run(input_path, out_dir, cfg, force=force, progress=progress, raise_errors=raise_errors)
    if report:
        from cleanplate.report import write_report

        summary.extra["report"] = str(write_report(out_dir))
    return summary


__all__ = [
    "BackendUnavailableError",
    "CleanplateError",
    "Config",
    "ConfigError",
    "FrameError",
    "InputError",
    "OutputError",
    "ProgressEvent",
    "RunSummary",
    "WeightsError",
    "__version__",
    "inpaint",
    "load_config",
    "run",
    "segment",
]
