"""Runners: where the stages run. ``local`` (default) or ``ray`` (Ray Data, ``cleanplate[ray]``)."""

from __future__ import annotations

from cleanplate.config import Config
from cleanplate.runners.base import Runner
from cleanplate.runners.local import LocalRunner


def create_runner(config: Config, device: str) -> Runner:
    """The runner of ``config.run.runner``; BackendUnavailableError when Ray is missing."""
    if config.run.runner == "ray":
        from cleanplate.runners.ray import RayRunner

        return RayRunner(config, device)
    return LocalRunner()


__all__ = ["LocalRunner", "Runner", "create_runner"]
