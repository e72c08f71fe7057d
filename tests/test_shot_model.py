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
from conftest import SHARED, SINTEL, decoded

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
    # one link per frame after the first (5), and, the temporal fill reading the model, each frame
    # registered directly onto the frames 2 to shots.direct_links (4) before it: 4 + 3 + 2 = 9 pairs;
    # nothing else registers (the fill, the characters stage and the checks read the model)
    assert len(registrations) == 5 + 9
    assert {"characters", "fill", "checks"} <= set(read)  # the background model, the fill, the checks
    fill = json.loads((tmp_path / "out" / "inpainting_metadata.json").read_text())["frames"]
    seg = json.loads((tmp_path / "out" / "instances_metadata.json").read_text())["frames"]
    assert all(r["extra"]["neighbours_used"] >= 1 for r in fill.values())  # the fill warped neighbours
    assert all(r["checks"]["detail"].get("shot_neighbours", 0) >= 2 for r in fill.values())  # checks: the shot
    assert all(r["extra"]["shot_registered"] for r in seg.values())  # the characters stage: registered


def test_direct_links_register_neighbours_a_few_frames_apart_closer_than_the_chain():
    """Sintel's market pan (10 real frames, 1024x436): every pair 3 or 4 frames apart, registered
    directly, matches the frame it is warped onto better than chained through the links between
    (median |difference| of the pixels both show, 0-255 levels, the girl included in both)."""
    from cleanplate.motion.registration import warp_into

    images = [decoded(p) for p in sorted(SINTEL.glob("*.png"))[:10]]
    model = ShotModel.build(images, direct=True)
    chain = ShotModel.build(images)  # direct links off: the chain alone
    assert not chain.direct and model.kinds == chain.kinds
    h, w = images[0].shape[:2]

    def difference(src: int, dst: int, m: ShotModel) -> float:
        reg = m.registration(src, dst, (w, h))
        px, valid = warp_into(images[src], np.ones((h, w), bool), reg, (0, 0, w, h))
        assert valid.mean() > 0.5
        return float(np.median(np.abs(px.astype(np.int16) - images[dst]).mean(-1)[valid]))

    pairs = [(i, i - d) for d in (3, 4) for i in range(d, 10)]
    assert set(pairs) <= set(model.direct)  # a direct link for each, both ways read off one
    direct = [difference(i, j, model) for i, j in pairs]
    chained = [difference(i, j, chain) for i, j in pairs]
    assert all(a < b for a, b in zip(direct, chained, strict=True)), list(zip(pairs, direct, chained, strict=True))
    assert np.mean(chained) - np.mean(direct) > 2.0  # measured 9.56 -> 6.44 levels
    # the other way round (earlier frame onto the later one) reads the inverse of the same link
    there = model.registration(2, 6).matrix @ model.registration(6, 2).matrix
    np.testing.assert_allclose(there / there[2, 2], np.eye(3), atol=1e-9)
    # the characters stage and the checks keep reading the chained keypoint fits
    np.testing.assert_array_equal(model.registration(6, 2, coarse=True).matrix,
                                  chain.registration(6, 2, coarse=True).matrix)
    np.testing.assert_array_equal(model.matrix(6, 2), chain.matrix(6, 2))


def test_direct_links_survive_segment_then_inpaint(tmp_path: Path, small_sintel_dir, registrations: list[int]):
    """``segment`` (its config's fill temporal) stores each frame's direct links with its record;
    ``inpaint`` reads them back and registers nothing, and its plates are the bytes ``run`` makes.
    A segment-only run whose fill is not temporal stores none (nothing reads them)."""
    frames = small_sintel_dir(6)
    cfg = load_config(overrides={"fill.method": "temporal+opencv-telea", "output.plate_format": "png",
                                 "qa.enabled": False})
    cleanplate.pipeline.segment(frames, tmp_path / "seg", cfg)
    assert len(registrations) == 5 + 9
    recs = [json.loads(line) for line in (tmp_path / "seg" / ".cleanplate" / "segment.jsonl").read_text().splitlines()]
    ids = [r["frame_id"] for r in recs]
    for k, r in enumerate(recs):
        stored = [Link.from_record(d) for d in r.get("direct_links", [])]
        assert [lk.previous for lk in stored if lk is not None] == [ids[k - d] for d in range(2, min(k, 4) + 1)]
        assert all(lk is not None and lk.ok and lk.model for lk in stored)
    del registrations[:]
    cleanplate.pipeline.inpaint(tmp_path / "seg", tmp_path / "plates", cfg)
    assert registrations == []  # the chain and the direct links read back from the records
    cleanplate.pipeline.run(frames, tmp_path / "run", cfg)
    for fid in ids:
        assert (tmp_path / "plates" / "backgrounds" / f"{fid}.png").read_bytes() == \
            (tmp_path / "run" / "backgrounds" / f"{fid}.png").read_bytes()
    # an old record (no direct links) still loads: inpaint registers the missing pairs itself
    old = tmp_path / "old"
    shutil.copytree(tmp_path / "seg", old)
    manifest = old / ".cleanplate" / "segment.jsonl"
    manifest.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "direct_links"}) + "\n"
                                for r in recs))
    del registrations[:]
    cleanplate.pipeline.inpaint(old, tmp_path / "old-plates", cfg)
    assert len(registrations) == 9
    # nothing reads them in a segment-only run with another fill: none registered, none stored
    del registrations[:]
    plain = cfg.model_copy(update={"fill": cfg.fill.model_copy(update={"method": "opencv-telea"})})
    cleanplate.pipeline.segment(frames, tmp_path / "seg2", plain)
    assert len(registrations) == 5
    lines = (tmp_path / "seg2" / ".cleanplate" / "segment.jsonl").read_text().splitlines()
    assert len(lines) == 6 and not any("direct_links" in json.loads(line) for line in lines)


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
