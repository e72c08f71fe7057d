"""Shared pieces of the CLI: global state, config building, error mapping."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
import yaml

from cleanplate._cli.ui import err_console
from cleanplate.config import Config, load_config
from cleanplate.errors import (
    BackendUnavailableError,
    CleanplateError,
    ConfigError,
    InputError,
    OutputError,
    TooManyFailuresError,
    WeightsError,
)

EXIT_CODES: dict[type[CleanplateError], int] = {
    TooManyFailuresError: 1,
    ConfigError: 2,
    InputError: 3,
    OutputError: 4,
    WeightsError: 5,
    BackendUnavailableError: 6,
}

@functools.lru_cache(maxsize=1)
def _default_config() -> Config:
    return load_config()


def from_config(key: str) -> str:
    """``show_default`` text of an option that overrides the config key ``key`` (dotted): the key and
    its value in the default profile, e.g. ``run.max_failed: 0.05``."""
    value: Any = _default_config()
    for part in key.split("."):
        value = getattr(value, part)
    text = "none" if value is None else ("on" if value is True else "off" if value is False else str(value))
    return f"{key}: {text}"


class State:
    debug = False
    quiet = False
    log_json = False


def _parse_sets(sets: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in sets or []:
        if "=" not in item:
            raise ConfigError(f"--set expects dotted.key=value, got '{item}'")
        key, raw = item.split("=", 1)
        try:
            out[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError:
            out[key.strip()] = raw
    return out


def _config(config: Path | None, profile: str | None, sets: list[str] | None, **flags: Any) -> Config:
    overrides = {k.replace("__", "."): v for k, v in flags.items()}
    overrides.update(_parse_sets(sets))
    return load_config(profile=profile, config_file=config, overrides=overrides)


def _guard(fn: Callable[[], int | None]) -> None:
    """Run a command body; map cleanplate errors to one line and an exit code."""
    try:
        code = fn() or 0
    except CleanplateError as exc:
        if State.debug:
            raise
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_CODES.get(type(exc), 1)) from None
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted: finished frames are kept; rerun to resume[/]")
        raise typer.Exit(130) from None
    except Exception as exc:  # an internal bug: one line unless --debug
        if State.debug:
            raise
        err_console.print(f"[bold red]internal error:[/] {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
                          highlight=False, soft_wrap=True)
        raise typer.Exit(70) from None
    raise typer.Exit(code)


