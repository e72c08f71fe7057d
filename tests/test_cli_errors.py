"""CLI-level errors (issue #2, item 8): one clear ``error:`` line, no traceback, the right exit code.

Exit codes: 1 too many failed frames, 2 config, 3 input, 4 output, 5 weights. Tested in-process
with ``CliRunner`` (global flags such as ``--debug`` go first there; ``main(argv)`` moves them) and
as a real subprocess, which is what a user or a script sees.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import Result
from PIL import Image
from typer.testing import CliRunner

from cleanplate._cli.common import EXIT_CODES, State
from cleanplate._cli.main import app, main
from cleanplate.config import available_profiles
from cleanplate.errors import ConfigError, InputError, OutputError, TooManyFailuresError, WeightsError
from conftest import SINTEL

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--debug`` sets a process-wide flag: put it back after each test."""
    monkeypatch.setattr(State, "debug", False)


def _invoke(*args: object) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def _error_line(code: int, stdout: str, stderr: str, got: int, *needles: str) -> str:
    """The single ``error:`` line of a failed command, checked for code, needles and no traceback."""
    stdout, stderr = ANSI.sub("", stdout), ANSI.sub("", stderr)
    assert got == code, f"exit {got}, expected {code}\nstdout: {stdout}\nstderr: {stderr}"
    lines = [ln for ln in stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stdout + stderr
    assert "error:" not in stdout
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _cli_error(code: int, *args: object, needles: tuple[str, ...] = ()) -> str:
    result = _invoke(*args)
    assert isinstance(result.exception, SystemExit), result.exception  # mapped, not raised
    return _error_line(code, result.stdout, result.stderr, result.exit_code, *needles)


def _subprocess(*args: object) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    env["COLUMNS"] = "200"
    return subprocess.run([sys.executable, "-m", "cleanplate._cli.main", *map(str, args)],
                          capture_output=True, text=True, timeout=120, env=env)


@pytest.fixture
def frames(tmp_path: Path) -> Path:
    """Two real Sintel frames scaled to 256x109 (fast)."""
    d = tmp_path / "frames"
    d.mkdir()
    for p in sorted(SINTEL.glob("*.png"))[:2]:
        Image.open(p).convert("RGB").resize((256, 109), Image.LANCZOS).save(d / p.name)
    return d


def test_exit_codes_table() -> None:
    assert EXIT_CODES[TooManyFailuresError] == 1
    assert EXIT_CODES[ConfigError] == 2
    assert EXIT_CODES[InputError] == 3
    assert EXIT_CODES[OutputError] == 4
    assert EXIT_CODES[WeightsError] == 5


# --- input errors: 3 ---------------------------------------------------------------------------

def test_missing_input(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    _cli_error(3, "run", missing, "-o", tmp_path / "out", needles=("input not found", str(missing)))
    _cli_error(3, "segment", "-i", missing, "-o", tmp_path / "out", needles=("input not found",))
    _cli_error(3, "inpaint", "-s", missing, "-o", tmp_path / "out", needles=("mask folder not found", str(missing)))
    assert not (tmp_path / "out").exists()


def test_empty_input_folder(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    _cli_error(3, "run", empty, "-o", tmp_path / "out", needles=("no frames", str(empty), ".png"))


def test_single_image_as_input(tmp_path: Path) -> None:
    image = tmp_path / "frame.png"
    shutil.copy(sorted(SINTEL.glob("*.png"))[0], image)
    _cli_error(3, "run", image, "-o", tmp_path / "out", needles=("single image", str(image), "folder"))


# --- output errors: 4 --------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["run", "segment"])
def test_unwritable_output(tmp_path: Path, frames: Path, command: str) -> None:
    blocker = tmp_path / "file.txt"  # tests run as root: a regular file as parent is what cannot be written
    blocker.write_text("not a folder")
    out = blocker / "out"
    args = ["run", frames, "-o", out] if command == "run" else ["segment", "-i", frames, "-o", out]
    _cli_error(4, *args, "--method" if command == "run" else "--limit", "opencv-telea" if command == "run" else "2",
               needles=("cannot create output folder", str(out)))
    assert blocker.read_text() == "not a folder"


def test_output_made_by_another_config(tmp_path: Path, frames: Path) -> None:
    out = tmp_path / "out"
    # masks.dilate is relative to a 1080-line frame: 20 and 60 are 2 and 6 px on these small frames
    shutil.copy(frames / "frame_0016.png", frames / "frame_0099.png")  # a third frame that --limit 2 leaves out
    base = ["--quiet", "segment", "-i", frames, "-o", out, "--limit", "2"]
    assert _invoke(*base, "--mask-dilate", "20").exit_code == 0
    records = json.loads((out / "instances_metadata.json").read_text())["frames"]
    assert len(records) == 2
    masks_before = {p.name: p.read_bytes() for p in (out / "masks").iterdir()}

    line = _cli_error(4, *base, "--mask-dilate", "60", needles=("masks.dilate", "--force", str(out)))
    assert "different configuration" in line
    assert {p.name: p.read_bytes() for p in (out / "masks").iterdir()} == masks_before  # untouched

    result = _invoke(*base, "--mask-dilate", "60", "--force")
    assert result.exit_code == 0, result.stderr
    assert {p.name: p.read_bytes() for p in (out / "masks").iterdir()} != masks_before
    meta = json.loads((out / "instances_metadata.json").read_text())
    assert meta["summary"]["dilate"] == 60 and meta["summary"]["dilate_relative"] is True


# --- config errors: 2 --------------------------------------------------------------------------

def test_unknown_profile(tmp_path: Path, frames: Path) -> None:
    line = _cli_error(2, "run", frames, "-o", tmp_path / "out", "--profile", "nope", needles=("unknown profile 'nope'",))
    for name in available_profiles():
        assert name in line
    assert {"default", "luca"} <= set(available_profiles())
    assert not (tmp_path / "out").exists()  # refused before anything is written
    _cli_error(2, "config", "show", "--profile", "nope", needles=("unknown profile 'nope'", "luca"))


def test_invalid_yaml_names_the_line(tmp_path: Path, frames: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("masks:\n  dilate: 5\nfill:\n  method: lama\n  batch_size: 2\n   radius: 3\n")
    _cli_error(2, "run", frames, "-o", tmp_path / "out", "-c", cfg, needles=("invalid YAML", str(cfg), "line 6"))
    _cli_error(2, "config", "show", "-c", cfg, needles=("line 6",))


def test_unknown_key_in_yaml(tmp_path: Path, frames: Path) -> None:
    cfg = tmp_path / "typo.yaml"
    cfg.write_text("segment:\n  backend: saliency\n  bogus: 1\n")
    _cli_error(2, "run", frames, "-o", tmp_path / "out", "-c", cfg, needles=("unknown key 'segment.bogus'", str(cfg)))


def test_missing_config_file(tmp_path: Path) -> None:
    _cli_error(2, "config", "show", "-c", tmp_path / "nope.yaml", needles=("config file not found", "nope.yaml"))


def test_bad_values(tmp_path: Path, frames: Path) -> None:
    _cli_error(2, "run", frames, "-o", tmp_path / "out", "--set", "masks.dilate=-3",
               needles=("masks.dilate", "greater than or equal to 0"))
    _cli_error(2, "config", "show", "--set", "masks.dilate", needles=("--set expects dotted.key=value",))
    _cli_error(2, "config", "show", "--set", "fill.plate=3", needles=("unknown key 'fill.plate'",))
    _cli_error(2, "run", frames, "-o", tmp_path / "out", "--max-failed", "2", needles=("run.max_failed",))
    assert not (tmp_path / "out").exists()


# --- --debug -----------------------------------------------------------------------------------

def test_debug_raises_with_traceback(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    result = _invoke("--debug", "run", missing, "-o", tmp_path / "out")
    assert isinstance(result.exception, InputError)
    assert result.exc_info is not None and result.exc_info[2] is not None
    assert result.exit_code == 1

    with pytest.raises(InputError, match="input not found"):  # main() accepts the flag anywhere
        main(["run", str(missing), "-o", str(tmp_path / "out"), "--debug"])
    with pytest.raises(SystemExit) as info:
        main(["run", str(missing), "-o", str(tmp_path / "out"), "--quiet"])
    assert info.value.code == 3


# --- too many failed frames: 1 -----------------------------------------------------------------

def test_max_failed(tmp_path: Path, frames: Path) -> None:
    (frames / "frame_0018.png").write_bytes(b"")
    out = tmp_path / "out"
    result = _invoke("run", frames, "-o", out, "--method", "opencv-telea", "--no-report")
    _error_line(1, result.stdout, result.stderr, result.exit_code,
                "1 of 3 frames failed", "33.3 %", "--max-failed 5.0 %")

    def check_recorded(stdout: str) -> None:
        seg = json.loads((out / "instances_metadata.json").read_text())["frames"]
        assert seg["frame_0018"]["status"] == "failed" and "empty file" in seg["frame_0018"]["error"]
        assert [seg[f]["status"] for f in ("frame_0016", "frame_0017")] == ["ok", "ok"]
        fill = json.loads((out / "inpainting_metadata.json").read_text())["frames"]
        assert fill["frame_0018"]["status"] == "failed" and "empty file" in fill["frame_0018"]["error"]
        assert sorted(p.name for p in (out / "backgrounds").iterdir()) == ["frame_0016.jpg", "frame_0017.jpg"]
        text = ANSI.sub("", stdout)
        assert "failed frames: 1 of 3" in text
        assert re.search(r"frame_0018: .*empty file", text), text

    check_recorded(result.stdout)
    result = _invoke("run", frames, "-o", out, "--method", "opencv-telea", "--no-report", "--max-failed", "0.5")
    assert result.exit_code == 0, result.stderr
    assert "error:" not in result.stderr
    check_recorded(result.stdout)  # a rerun retries the bad frame and still reports it


# --- config show -------------------------------------------------------------------------------

def test_config_show_luca_profile() -> None:
    result = _invoke("config", "show", "--profile", "luca")
    assert result.exit_code == 0, result.stderr
    cfg = yaml.safe_load(result.stdout)
    sam2 = cfg["segment"]["sam2"]
    assert cfg["profile"] == "luca"
    assert (sam2["points_per_side"], sam2["pred_iou_thresh"], sam2["stability_score_thresh"]) == (32, 0.7, 0.8)
    assert cfg["masks"]["dilate"] == 20
    assert (cfg["fill"]["method"], cfg["fill"]["batch_size"]) == ("temporal+lama", 8)


def test_config_show_overrides(tmp_path: Path) -> None:
    cfg = yaml.safe_load(_invoke("config", "show", "--set", "fill.method=opencv-ns").stdout)
    assert cfg["fill"]["method"] == "opencv-ns" and cfg["profile"] == "default"

    cfg = yaml.safe_load(_invoke("config", "show", "-p", "luca", "--set", "fill.method=opencv-ns").stdout)
    assert cfg["fill"]["method"] == "opencv-ns" and cfg["segment"]["sam2"]["points_per_side"] == 32

    file = tmp_path / "mine.yaml"
    file.write_text("profile: luca\nmasks:\n  dilate: 7\n")
    cfg = yaml.safe_load(_invoke("config", "show", "-c", file).stdout)
    assert cfg["profile"] == "luca" and cfg["masks"]["dilate"] == 7  # file over profile
    cfg = yaml.safe_load(_invoke("config", "show", "-c", file, "--set", "masks.dilate=9").stdout)
    assert cfg["masks"]["dilate"] == 9  # --set over file


# --- as a real subprocess ----------------------------------------------------------------------

def test_subprocess_missing_input(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    proc = _subprocess("run", missing, "-o", tmp_path / "out", "--quiet")
    _error_line(3, proc.stdout, proc.stderr, proc.returncode, "input not found", str(missing))
    assert proc.stderr.strip().count("\n") == 0 and proc.stdout == ""


def test_subprocess_config_errors(tmp_path: Path, frames: Path) -> None:
    proc = _subprocess("run", frames, "-o", tmp_path / "out", "--set", "masks.dilate=-3")
    _error_line(2, proc.stdout, proc.stderr, proc.returncode, "masks.dilate")
    proc = _subprocess("config", "show", "--profile", "nope")
    _error_line(2, proc.stdout, proc.stderr, proc.returncode, "unknown profile 'nope'", "default", "luca")


def test_subprocess_unwritable_output(tmp_path: Path, frames: Path) -> None:
    (tmp_path / "file.txt").write_text("")
    proc = _subprocess("segment", "-i", frames, "-o", tmp_path / "file.txt" / "out")
    _error_line(4, proc.stdout, proc.stderr, proc.returncode, "cannot create output folder")


def test_subprocess_weights_offline() -> None:
    proc = _subprocess("weights", "download", "isnet-anime")  # conftest: CLEANPLATE_OFFLINE=1
    _error_line(5, proc.stdout, proc.stderr, proc.returncode, "isnet-anime.onnx", "offline", "https://")


def test_subprocess_debug_shows_traceback(tmp_path: Path) -> None:
    proc = _subprocess("run", tmp_path / "nope", "-o", tmp_path / "out", "--debug")  # flag after the command
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr
    assert "InputError: input not found" in proc.stderr
