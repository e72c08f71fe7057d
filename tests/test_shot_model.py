"""The shot model (issue 25): one registration per frame, read by every stage that needs the shot;
its settings in the resume hash; progress as it happens; a shot-level failure stays per frame."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cleanplate.pipeline
from cleanplate import load_config
from cleanplate.errors import OutputError
from cleanplate.motion.shot_model import Link, ShotModel
from cleanplate.records import FrameRecord, Instance, SegmentResult
from cleanplate.segment.base import SHOT_SEGMENTERS
from cleanplate.stages.segment import CharactersStage
from cleanplate.stages.shots import ShotModelStage
from conftest import SHARED

DAVIS = SHARED / "data"


def _tennis(tmp_path: Path, n: int) -> Path:
    frames = tmp_path / "tennis"
    frames.mkdir()
    for p in sorted((DAVIS / "davis_tennis" / "frames").glob("*.png"))[:n]:
        shutil.copy(p, frames / p.name)
    return frames


# ----------------------------------------------------------------------------------- the model

def test_model_chains_links_and_maps_any_frame_onto_any_other():
    """Three links of a pure pan (+4 px, +4 px, a failed one): frames 0-2 are one run whose
    matrices compose; frame 3 starts a new run and maps onto nothing before it."""
    shift = np.array([[1.0, 0, 4], [0, 1, 0], [0, 0, 1]])
    links = [None, Link("homography", shift, 0.5, "", "a"), Link("homography", shift, 0.5, "", "b"),
             Link("rejected", reason="12 matches", previous="c")]
    small = [np.zeros((50, 100, 3), np.uint8)] * 4
    m = ShotModel.from_links(["a", "b", "c", "d"], links, small, (100, 200))
    assert m.run == [0, 0, 0, 1] and m.kinds == ["start", "homography", "homography", "start"]
    assert m.reasons[3] == "12 matches"
    np.testing.assert_allclose(m.matrix(2, 0), [[1, 0, 8], [0, 1, 0], [0, 0, 1]], atol=1e-9)
    np.testing.assert_allclose(m.matrix(0, 2), [[1, 0, -8], [0, 1, 0], [0, 0, 1]], atol=1e-9)
    np.testing.assert_allclose(m.matrix(2, 0, scale=0.5), [[1, 0, 4], [0, 1, 0], [0, 0, 1]], atol=1e-9)
    assert m.matrix(3, 0) is None and not m.registration(3, 1).ok
    reg = m.registration(2, 0)  # 8 px exactly: a whole-pixel shift, copied without resampling
    assert reg.kind == "shift" and reg.shift == (8, 0)
    sub = m.subset(["a", "c"])
    np.testing.assert_allclose(sub.matrix(1, 0), m.matrix(2, 0))
    assert sub.kinds == ["start", "start"] and sub.run == [0, 0]


def test_background_estimate_and_who_saw_each_pixel():
    """A static camera, a square that moves: the estimate shows the set everywhere some frame saw
    it, and ``seen`` counts the frames that showed scenery there (masks given)."""
    rng = np.random.default_rng(3)
    bg = (rng.integers(0, 256, (60, 80, 3))).astype(np.uint8)
    frames, masks = [], []
    for i in range(5):
        im, mk = bg.copy(), np.zeros((60, 80), bool)
        mk[20:40, 10 + 12 * i:30 + 12 * i] = True
        im[mk] = 255
        frames.append(im)
        masks.append(mk)
    model = ShotModel.build(frames)
    assert model.kinds[1:] == ["identity"] * 4  # the same view: identity, no keypoints needed
    est = model.background(masks)
    assert est.image.shape == bg.shape and est.offset == (0, 0)
    seen = est.seen > 0
    assert np.array_equal(est.image[seen], bg[seen])
    always = np.logical_and.reduce(masks)  # covered in every frame: nobody saw it
    assert np.array_equal(~seen, always)
    assert int(est.seen[0, 0]) == 5


# ----------------------------------------------------------------------------------- one registration

def test_a_run_registers_each_frame_once_and_every_shot_stage_reads_the_model(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch,
                                                                             registrations: list[int]):
    read: list[str] = []
    real_reg = ShotModel.registration
    real_scaled = ShotModel.scaled

    def reg_spy(self, src, dst, size=None, coarse=False):
        read.append("checks" if coarse else "fill")
        return real_reg(self, src, dst, size, coarse)

    def scaled_spy(self, src, dst, size, coarse=False):
        read.append("characters")
        return real_scaled(self, src, dst, size, coarse)

    monkeypatch.setattr(ShotModel, "registration", reg_spy)
    monkeypatch.setattr(ShotModel, "scaled", scaled_spy)
    frames = _tennis(tmp_path, 6)
    cfg = load_config(overrides={"fill.method": "temporal+opencv-telea"})
    summary = cleanplate.pipeline.run(frames, tmp_path / "out", cfg)
    assert summary.failed_frames == {}
    assert len(registrations) == 5  # one link per frame after the first, nothing else registers
    assert {"characters", "fill", "checks"} <= set(read)  # the background model, the fill, the checks
    fill = json.loads((tmp_path / "out" / "inpainting_metadata.json").read_text())["frames"]
    seg = json.loads((tmp_path / "out" / "instances_metadata.json").read_text())["frames"]
    assert all(r["extra"]["neighbours_used"] >= 1 for r in fill.values())  # the fill warped neighbours
    assert all(r["checks"]["detail"].get("shot_neighbours", 0) >= 2 for r in fill.values())  # checks: the shot
    assert all(r["extra"]["shot_registered"] for r in seg.values())  # the characters stage: registered


def test_a_window_without_a_shot_model_falls_back_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def broken(*args, **kwargs):
        raise ValueError("no model today")

    monkeypatch.setattr(ShotModel, "from_links", broken)
    frames = _tennis(tmp_path, 4)
    cfg = load_config(overrides={"fill.method": "temporal+opencv-telea", "qa.enabled": False})
    summary = cleanplate.pipeline.run(frames, tmp_path / "out", cfg)
    assert summary.failed_frames == {}
    seg = json.loads((tmp_path / "out" / "instances_metadata.json").read_text())["frames"]
    fill = json.loads((tmp_path / "out" / "inpainting_metadata.json").read_text())["frames"]
    for fid in seg:
        assert "no model today" in seg[fid]["extra"]["shot_fallback"]
        assert "no model today" in fill[fid]["extra"]["shot_fallback"]
        assert seg[fid]["n_characters"] >= 1  # the per-frame detection stands


# ----------------------------------------------------------------------------------- resume hash

@pytest.mark.parametrize("key,value", [("shots.scene_threshold", 40.0), ("shots.shot_pattern", ""),
                                       ("shots.max_frames", 30)])
def test_a_changed_shot_setting_is_refused_with_its_key_then_redone_with_force(tmp_path: Path, small_sintel_dir,
                                                                             key: str, value: object):
    frames = small_sintel_dir(2)
    out = tmp_path / "o"
    base = {"fill.method": "opencv-telea", "qa.enabled": False}
    cleanplate.pipeline.run(frames, out, load_config(overrides=base))
    mask = (out / "masks" / "frame_0016.png").read_bytes()
    changed = load_config(overrides={**base, key: value})
    with pytest.raises(OutputError, match=rf"changed: {key.replace('.', chr(92) + '.')}"):
        cleanplate.pipeline.run(frames, out, changed)
    assert (out / "masks" / "frame_0016.png").read_bytes() == mask
    redone = cleanplate.pipeline.run(frames, out, changed, force=True)
    assert redone.segment.done == 2 and redone.fill.done == 2


# ----------------------------------------------------------------------------------- failures per frame

class _FailsOnDark:
    """A shot segmenter for the test: raises whenever a frame of the call is all black."""

    name = "test-fails-on-dark"
    calls = 0

    def __init__(self, config, device) -> None:
        pass

    def segment_shot(self, images, results, shot=None):
        type(self).calls += 1
        if any(int(im.max()) == 0 for im in images):
            raise RuntimeError("cannot track through a black frame")
        for res in results:
            for inst in res.instances:
                inst.reason = "seen by the shot"
        return results

    def weights_used(self):
        return []


def test_one_bad_frame_of_a_shot_level_stage_fails_alone(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(SHOT_SEGMENTERS._items, "test-fails-on-dark", _FailsOnDark)
    cfg = load_config(overrides={"segment.shot.method": "test-fails-on-dark"})
    recs = []
    for i in range(8):
        image = np.full((40, 60, 3), 100, np.uint8) if i != 5 else np.zeros((40, 60, 3), np.uint8)
        mask = np.zeros((40, 60), bool)
        mask[10:20, 10:20] = True
        rec = FrameRecord(f"f{i}", i, "", image=image, shot_id="shot0000")
        rec.segment = SegmentResult([Instance(mask, (10, 10, 10, 10), 100, 1.0)])
        rec.link = Link("identity", np.eye(3), 0.0, "", f"f{i - 1}") if i else None
        rec.small = image
        recs.append(rec)
    recs = ShotModelStage(cfg)(recs)
    out = CharactersStage(cfg, "cpu")(recs)
    assert [r.failed for r in out] == [i == 5 for i in range(8)]
    assert out[5].failed_stage == "characters" and "black frame" in (out[5].error or "")
    assert all(r.segment.instances[0].reason == "seen by the shot" for r in out if not r.failed)


# ----------------------------------------------------------------------------------- progress

def test_progress_events_arrive_while_a_one_shot_run_works(tmp_path: Path):
    """--log-json: the first committed frame is read from the pipe while the run still works, the
    events carry timestamps in order, and the plates are committed one by one (spread in time)."""
    frames = _tennis(tmp_path, 8)
    cmd = [sys.executable, "-m", "cleanplate._cli.main", "--log-json", "run", str(frames), "-o",
           str(tmp_path / "out"), "--method", "patchmatch"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    events, running_at_first_commit = [], None
    assert proc.stdout is not None
    for line in proc.stdout:
        ev = json.loads(line)
        events.append(ev)
        if ev.get("kind") == "frame" and running_at_first_commit is None:
            running_at_first_commit = proc.poll() is None
    assert proc.wait(timeout=600) == 0, proc.stderr.read() if proc.stderr else ""
    assert running_at_first_commit is True
    timed = [e for e in events if "kind" in e]
    assert all(isinstance(e["time"], float) and e["time"] > 1.7e9 for e in timed)
    work = [e for e in timed if e["kind"] == "work" and e["stage"] == "segment" and e["step"] == "detect"]
    assert len(work) == 8  # the window's detection advances frame by frame
    seg_done = max(e["time"] for e in timed if e["kind"] == "frame" and e["stage"] == "segment")
    fills = [e["time"] for e in timed if e["kind"] == "frame" and e["stage"] == "fill"]
    assert len(fills) == 8 and min(fills) < max(fills)
    assert work[0]["time"] < work[-1]["time"] <= seg_done <= fills[-1]
