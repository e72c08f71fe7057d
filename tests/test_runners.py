"""--runner ray gives what --runner local gives: masks, plates, metadata, failures, resume after SIGKILL.

A local Ray cluster (2 CPUs) is started once for the module and shut down after it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cleanplate import load_config
from cleanplate.errors import BackendUnavailableError
from cleanplate.io.outputs import TMP_SUFFIX
from cleanplate.pipeline import inpaint, run, segment
from conftest import SHARED

TENNIS = SHARED / "data" / "davis_tennis" / "frames"
BASE = {"fill.method": "opencv-telea", "output.plate_format": "png"}


@pytest.fixture(scope="module")
def ray_cluster():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def _cfg(runner: str, **over: object):
    return load_config(overrides={**BASE, "run.runner": runner, **over})


def _outputs(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes()
            for d in ("masks", "backgrounds", "instances", "thumbs", "sources") if (out / d).is_dir()
            for p in sorted((out / d).iterdir())}


def _frames(meta: dict) -> dict[str, dict]:
    """The metadata's frame records without what differs from run to run (timings)."""
    out = {}
    for fid, r in meta["frames"].items():
        rec = {k: v for k, v in r.items() if k != "timings"}
        if isinstance(rec.get("extra"), dict):
            rec["extra"] = {k: v for k, v in rec["extra"].items() if k != "temporal_timings"}
        out[fid] = rec
    return out


def _sintel_with_a_bad_frame(tmp_path: Path, sintel_frames: list[Path]) -> Path:
    d = tmp_path / "sintel"
    d.mkdir()
    for p in sintel_frames[:4]:
        shutil.copy(p, d / p.name)
    (d / "frame_0017b.png").write_bytes(b"")  # a zero-byte frame between two good ones
    return d


def _assert_same_run(a: Path, b: Path) -> None:
    fa, fb = _outputs(a), _outputs(b)
    assert sorted(fa) == sorted(fb)
    assert fa == fb, [k for k in fa if fa[k] != fb.get(k)]
    for name in ("instances_metadata.json", "inpainting_metadata.json"):
        ma, mb = json.loads((a / name).read_text()), json.loads((b / name).read_text())
        assert _frames(ma) == _frames(mb), name
        for rec in ma["frames"].values():
            assert isinstance(rec["shot_id"], str) and rec["shot_id"], (name, rec["frame_id"])


def test_ray_equals_local_on_sintel_with_a_bad_frame(tmp_path: Path, sintel_frames: list[Path], ray_cluster):
    frames = _sintel_with_a_bad_frame(tmp_path, sintel_frames)
    local = run(frames, tmp_path / "local", _cfg("local"))
    ray = run(frames, tmp_path / "ray", _cfg("ray"))
    _assert_same_run(tmp_path / "local", tmp_path / "ray")
    assert ray.failed_frames == local.failed_frames == {"frame_0017b": "empty file (0 bytes)"}
    fill = json.loads((tmp_path / "ray" / "inpainting_metadata.json").read_text())["frames"]["frame_0017b"]
    assert fill["status"] == "failed" and fill["error"] == "segmentation failed: empty file (0 bytes)"
    assert len(list((tmp_path / "ray" / "masks").glob("*.png"))) == 4
    plate = np.asarray(Image.open(tmp_path / "ray" / "backgrounds" / "frame_0016.png"))
    assert plate.shape == (436, 1024, 3)
    for name in ("segment", "fill"):
        lines = (tmp_path / "ray" / ".cleanplate" / f"{name}.jsonl").read_text().splitlines()
        assert [json.loads(x)["frame_id"] for x in lines] == [
            "frame_0016", "frame_0017", "frame_0017b", "frame_0018", "frame_0019"]
    runj = json.loads((tmp_path / "ray" / "run.json").read_text())
    assert runj["config"]["run"]["runner"] == "ray"
    assert {w["name"] for w in runj["segment"]["weights"]} == {"u2netp"}
    assert {w["name"] for w in runj["fill"]["weights"]} == {"u2netp"}  # the plate checks' model


def test_ray_equals_local_on_a_davis_clip_and_the_stage_commands(tmp_path: Path, ray_cluster):
    frames = tmp_path / "tennis"
    frames.mkdir()
    for p in sorted(TENNIS.glob("*.png"))[:16]:
        shutil.copy(p, frames / p.name)
    # the temporal fill takes shot windows (of 6 frames here): several windows, one Ray chunk each
    over = {"qa.enabled": False, "shots.max_frames": 6, "fill.method": "temporal+opencv-telea"}
    run(frames, tmp_path / "local", _cfg("local", **over))
    run(frames, tmp_path / "ray", _cfg("ray", **over, **{"run.ray_chunk_frames": 6}))
    _assert_same_run(tmp_path / "local", tmp_path / "ray")
    fill = json.loads((tmp_path / "ray" / "inpainting_metadata.json").read_text())["frames"]
    assert sum(r["extra"]["temporal_fraction"] > 0 for r in fill.values()) >= 8  # neighbours lent pixels
    # segment + inpaint under ray (disk hand-over) give the same masks and plates as run
    cfg = _cfg("ray", **over)
    segment(frames, tmp_path / "seg", cfg)
    inpaint(tmp_path / "seg", tmp_path / "seg", cfg)
    run_files, staged = _outputs(tmp_path / "local"), _outputs(tmp_path / "seg")
    assert {k: v for k, v in staged.items() if k.startswith(("masks/", "backgrounds/"))} == \
        {k: v for k, v in run_files.items() if k.startswith(("masks/", "backgrounds/"))}


def _cli(frames: Path, out: Path, address: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "cleanplate._cli.main", "run", str(frames), "-o", str(out), "--method",
           "opencv-telea", "--plate-format", "png", "--runner", "ray", "--ray-address", address,
           "--set", "qa.enabled=false", "--set", "run.ray_chunk_frames=2",  # 2 Ray datasets, 4-frame windows
           "--no-report", "--quiet"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.is_file() else 0


def test_sigkill_under_ray_then_rerun_equals_uninterrupted(tmp_path: Path, small_sintel_dir, ray_cluster):
    frames = small_sintel_dir(8)
    ref = tmp_path / "ref"
    run(frames, ref, _cfg("local", **{"qa.enabled": False}))
    out = tmp_path / "out"
    proc = _cli(frames, out, ray_cluster)
    manifest = out / ".cleanplate" / "segment.jsonl"
    deadline = time.time() + 240
    while _lines(manifest) < 2 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed: " + proc.stderr.read().decode()[-2000:]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = _lines(manifest)
    assert 0 < killed_at < 8  # killed mid-run

    rerun = _cli(frames, out, ray_cluster)
    assert rerun.wait(timeout=300) == 0, rerun.stderr.read().decode()[-3000:]
    assert _outputs(out) == _outputs(ref)
    assert not list(out.rglob(f"*{TMP_SUFFIX}")), "temp files left behind"
    for name in ("segment", "fill"):  # every manifest line is whole JSON; every frame ends ok
        recs = [json.loads(line) for line in (out / ".cleanplate" / f"{name}.jsonl").read_text().splitlines()]
        assert {r["frame_id"] for r in recs} == {p.stem for p in frames.iterdir()}
        assert all(r["status"] == "ok" for r in recs)
    for name in ("instances_metadata.json", "inpainting_metadata.json"):
        assert json.loads((out / name).read_text())["summary"]["frames_ok"] == 8
    seg = json.loads((out / "run.json").read_text())["segment"]
    assert seg["skipped"] >= 1 and seg["done"] + seg["skipped"] == 8


def test_missing_ray_is_one_line_with_the_install_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                          small_sintel_dir):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails as if not installed
    with pytest.raises(BackendUnavailableError, match=r"pip install 'cleanplate\[ray\]'"):
        run(small_sintel_dir(1), tmp_path / "out", _cfg("ray"))
    assert not (tmp_path / "out").exists()  # nothing written
