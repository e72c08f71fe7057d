"""Resume: SIGKILL mid-run loses at most the window in segmentation and the plates in flight; a changed
config is refused or redone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cleanplate import load_config
from cleanplate.errors import OutputError
from cleanplate.io.outputs import TMP_SUFFIX
from cleanplate.pipeline import run

ARGS = ["--plate-format", "png", "--set", "qa.enabled=false", "--quiet"]  # the default fill: temporal+auto


def _cli(frames: Path, out: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "cleanplate._cli.main", "run", str(frames), "-o", str(out), *ARGS, *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def _files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes()
            for d in ("instances", "masks", "backgrounds") for p in sorted((out / d).iterdir())}


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.is_file() else 0


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, sintel_frames: list[Path]) -> tuple[Path, Path]:
    frames = tmp_path_factory.mktemp("frames")
    for p in sintel_frames[:6]:
        Image.open(p).convert("RGB").resize((512, 218), Image.LANCZOS).save(frames / p.name)
    out = tmp_path_factory.mktemp("ref")
    proc = _cli(frames, out)
    assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()
    return frames, out


@pytest.mark.parametrize("when", [0, 2])
def test_sigkill_then_rerun_equals_uninterrupted(tmp_path: Path, reference: tuple[Path, Path], when: int):
    """A one-shot run killed after its window's masks are committed (``when`` plates too): the rerun
    reuses the masks (and the plates), says how many, and every output equals an uninterrupted run's."""
    frames, ref = reference
    out = tmp_path / "out"
    proc = _cli(frames, out)
    masks, plates = out / ".cleanplate" / "segment.jsonl", out / ".cleanplate" / "fill.jsonl"
    deadline = time.time() + 240
    while (_lines(masks) < 6 or _lines(plates) < when) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _lines(masks) == 6  # the window's masks were committed once its characters were decided
    killed_at = _lines(plates)
    assert when <= killed_at < 6  # killed while filling

    rerun = subprocess.run([sys.executable, "-m", "cleanplate._cli.main", "--log-json", "run", str(frames), "-o",
                            str(out), *[a for a in ARGS if a != "--quiet"]], capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    ends = [json.loads(line) for line in rerun.stdout.splitlines() if '"end"' in line]
    said = {e["stage"]: e.get("message") for e in ends if e.get("kind") == "end"}
    assert said["segment"] == "6 frame(s) reused from an earlier run"
    assert (said["fill"] or "").startswith(f"{killed_at} frame(s)") if killed_at else said["fill"] is None
    assert _files(out) == _files(ref)
    assert not list(out.rglob(f"*{TMP_SUFFIX}")), "temp files left behind"
    for name in ("instances_metadata.json", "inpainting_metadata.json"):
        a = json.loads((out / name).read_text())
        b = json.loads((ref / name).read_text())
        assert {k: v["status"] for k, v in a["frames"].items()} == {k: v["status"] for k, v in b["frames"].items()}
        assert a["summary"]["frames_ok"] == 6
    run_json = json.loads((out / "run.json").read_text())
    assert run_json["segment"]["skipped"] == 6 and run_json["segment"]["done"] == 0
    assert run_json["fill"]["skipped"] == killed_at and run_json["fill"]["done"] == 6 - killed_at
    for p in (out / "backgrounds").iterdir():  # every plate decodes: nothing truncated
        assert np.asarray(Image.open(p)).shape == (218, 512, 3)


def test_rerun_skips_done_frames(tmp_path: Path, small_sintel_dir):
    frames = small_sintel_dir(2)
    cfg = load_config(overrides={"fill.method": "opencv-telea", "qa.enabled": False})
    run(frames, tmp_path / "o", cfg)
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "o").rglob("*.png")}
    again = run(frames, tmp_path / "o", cfg)
    assert again.segment.skipped == 2 and again.segment.done == 0
    assert again.fill.skipped == 2 and again.fill.done == 0
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "o").rglob("*.png")} == before


def test_changed_config_is_refused_then_redone_with_force(tmp_path: Path, small_sintel_dir):
    frames = small_sintel_dir(2)
    out = tmp_path / "o"
    run(frames, out, load_config(overrides={"fill.method": "opencv-telea", "masks.dilate": 5, "qa.enabled": False}))
    m5 = (out / "masks" / "frame_0016.png").read_bytes()
    changed = load_config(overrides={"fill.method": "opencv-telea", "masks.dilate": 15, "qa.enabled": False})
    with pytest.raises(OutputError, match=r"different configuration \(changed: masks\.dilate\)"):
        run(frames, out, changed)
    assert (out / "masks" / "frame_0016.png").read_bytes() == m5  # nothing was touched
    other_fill = load_config(overrides={"fill.method": "opencv-ns", "masks.dilate": 5, "qa.enabled": False})
    with pytest.raises(OutputError, match=r"fill outputs .*fill\.method"):
        run(frames, out, other_fill)
    redone = run(frames, out, changed, force=True)
    assert redone.segment.done == 2 and redone.fill.done == 2
    m15 = (out / "masks" / "frame_0016.png").read_bytes()
    assert m15 != m5
    from cleanplate.io.outputs import read_mask

    assert read_mask(out / "masks" / "frame_0016.png").sum() > 0
    hashes = {json.loads(line)["stage_hash"] for line in (out / ".cleanplate" / "segment.jsonl").read_text().splitlines()}
    assert hashes == {changed.stage_hash("segment")}
