"""``--help`` of every command (issue 25, item 6): every option shows its default, the dilation says
what its px are."""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from cleanplate._cli.main import app

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
OPTION = re.compile(r"^│\s+(?:\*\s+)?(--[a-z][\w-]*)", re.M)


def _commands() -> list[list[str]]:
    """Every command path of the app (``[]`` is the top level), from the click tree typer builds."""
    paths: list[list[str]] = []

    def walk(cmd: Any, path: list[str]) -> None:  # typer's own (vendored) click classes
        paths.append(path)
        for name, sub in (getattr(cmd, "commands", None) or {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return paths


def _help(path: list[str]) -> str:
    res = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    return ANSI.sub("", res.output)


def _options(text: str) -> dict[str, str]:
    """Each option of a help page with its whole cell text (continuation lines included)."""
    starts = list(OPTION.finditer(text))
    return {m.group(1): " ".join(text[m.end():(starts[k + 1].start() if k + 1 < len(starts) else len(text))]
                                 .replace("│", " ").split())
            for k, m in enumerate(starts)}


COMMANDS = _commands()


def test_the_walk_reaches_every_command() -> None:
    names = {" ".join(p) for p in COMMANDS}
    assert {"run", "segment", "inpaint", "demo", "report", "compare", "bench", "dedupe", "organize", "export-lora",
            "weights verify", "weights download", "config show"} <= names, names


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "cleanplate")
def test_every_option_shows_its_default(path: list[str]) -> None:
    options = _options(_help(path))
    assert "--help" in options
    missing = [name for name, cell in options.items()
               if name != "--help" and "[default:" not in cell and "[required]" not in cell]
    assert missing == [], f"cleanplate {' '.join(path)}: no default shown for {missing}"


def test_config_backed_defaults_name_their_key_and_value() -> None:
    run = _options(_help(["run"]))
    assert len(run) > 40  # every option of run was parsed
    assert "[default: (run.max_failed: 0.05)]" in run["--max-failed"]
    assert "[default: (masks.dilate: 20)]" in run["--mask-dilate"]
    assert "[default: (off)]" in run["--force"] and "[default: (default)]" in run["--profile"]


@pytest.mark.parametrize("path", [["run"], ["segment"], ["inpaint"]])
def test_the_dilation_help_says_px_of_a_1080_line_frame_scaled(path: list[str]) -> None:
    cell = _options(_help(path))["--mask-dilate"]
    assert "px of a 1080-line frame, scaled with the frame: 20 gives 4 px at 240 lines" in cell, cell
    if path == ["inpaint"]:  # an explicit value is used as it is (pipeline.inpaint: fill.mask_dilate, not relative)
        assert "in px of the frame as it is (not scaled)" in cell, cell
