"""The stages on real footage: shots, windows, masks, the in-memory hand-over of run, thumbnails,
the checks reusing the segment stage's saliency, and the library call with its report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cleanplate
from cleanplate import load_config
from cleanplate.io.outputs import read_image_rgb
from cleanplate.records import FrameRecord
from cleanplate.stages.shots import ShotStage, shot_windows
from conftest import SHARED, decoded

DAVIS = SHARED / "data"


def _rec(i: int, path: Path | None) -> FrameRecord:
    rec = FrameRecord(f"f{i:03d}", i, str(path))
    if path is None:
        rec.error, rec.failed_stage = "empty file (0 bytes)", "decode"
    else:
        rec.image = np.asarray(Image.open(path).convert("RGB"))
    return rec


def test_shots_stage_cuts_between_two_davis_clips_and_labels_failed_frames():
    tennis = sorted((DAVIS / "davis_tennis" / "frames").glob("*.png"))[:5]
    bmx = sorted((DAVIS / "davis_bmx-trees" / "frames").glob("*.jpg"))[:4]
    paths: list[Path | None] = [None, *tennis[:3], None, *tennis[3:], *bmx, None]
    recs = list(ShotStage(load_config())(_rec(i, p) for i, p in enumerate(paths)))
    assert [r.frame_id for r in recs] == [f"f{i:03d}" for i in range(len(paths))]  # order kept
    shots = [r.shot_id for r in recs]
    assert shots == ["shot0000"] * 7 + ["shot0001"] * 5  # the cut is where the clip changes
    decoded = [r for r in recs if r.image is not None]
    assert all("shots" in r.timings for r in decoded) and sum(r.timings["shots"] for r in decoded) > 0
    assert not any("shots" in r.timings for r in recs if r.image is None)  # nothing to label in a failed frame
    windows = list(shot_windows(recs, max_frames=3))
    # never across a cut; a shot longer than 3 frames hands on half a window at a time, so its last
    # window is never a lone frame (cut at 3, the first shot would end in ["f006"])
    assert [[r.frame_id for r in w] for w in windows] == [
        ["f000", "f001"], ["f002", "f003"], ["f004", "f005", "f006"], ["f007", "f008"], ["f009", "f010", "f011"]]
    sizes = [len(w) for w in shot_windows((_rec(i, None) for i in range(130)), max_frames=120)]
    assert sizes == [60, 70]


def test_run_decodes_once_keeps_masks_in_memory_and_writes_thumbnails(tmp_path: Path, sintel_dir,
                                                                      monkeypatch: pytest.MonkeyPatch):
    import cleanplate.io.frames as frames_mod
    import cleanplate.stages.decode as decode_mod

    frames = sintel_dir(3)
    calls: list[str] = []
    real = frames_mod.load_image

    def counting(path: Path, max_side: int = 8192) -> np.ndarray:
        calls.append(path.name)
        return real(path, max_side)

    def no_read(*_: object) -> np.ndarray:
        raise AssertionError("run read a mask back from disk")

    monkeypatch.setattr(frames_mod, "load_image", counting)
    monkeypatch.setattr(decode_mod, "read_mask", no_read)
    cfg = load_config(overrides={"fill.method": "opencv-telea", "masks.dilate_relative": True, "qa.enabled": False})
    summary = cleanplate.pipeline.run(frames, tmp_path / "out", cfg)
    assert summary.failed_frames == {}
    assert sorted(calls) == sorted(p.name for p in frames.iterdir())  # each frame decoded exactly once
    meta = json.loads((tmp_path / "out" / "instances_metadata.json").read_text())
    for fid, rec in meta["frames"].items():
        assert rec["dilate_px"] == 8  # 20 px at 1080 lines is 8 px at 436
        assert f"thumbs/{fid}.jpg" in rec["outputs"]
        thumb = read_image_rgb(tmp_path / "out" / "thumbs" / f"{fid}.jpg")
        assert thumb.shape == (136, 320, 3)  # longer side 320, aspect kept
        small = np.asarray(Image.fromarray(decoded(frames / f"{fid}.png")).resize((320, 136), Image.BOX))
        assert np.abs(thumb.astype(int) - small.astype(int)).mean() < 6  # the frame itself, JPEG quality 85
    timings = meta["frames"]["frame_0016"]["timings"]
    assert {"decode", "shots", "segment", "masks", "write"} <= set(timings)
    fill = json.loads((tmp_path / "out" / "inpainting_metadata.json").read_text())["frames"]["frame_0016"]
    assert "decode" not in fill["timings"] and fill["shot_id"] == "shot0000"


def test_checks_reuse_the_segment_saliency(tmp_path: Path, small_sintel_dir, monkeypatch: pytest.MonkeyPatch):
    from cleanplate.segment.saliency import SaliencyPredictor

    frames = small_sintel_dir(2)
    shapes: list[tuple[int, ...]] = []
    real = SaliencyPredictor._preprocess  # once per image the model sees, batched or not

    def spy(self: SaliencyPredictor, image: np.ndarray) -> np.ndarray:
        shapes.append(image.shape)
        return real(self, image)

    monkeypatch.setattr(SaliencyPredictor, "_preprocess", spy)
    summary = cleanplate.pipeline.run(frames, tmp_path / "out", load_config(overrides={"fill.method": "opencv-telea"}))
    assert summary.failed_frames == {}
    # per frame: the segmenter on the frame, the checks on the plate only (the frame's map is reused)
    assert len(shapes) == 2 * 2
    fill = json.loads((tmp_path / "out" / "inpainting_metadata.json").read_text())
    assert all("residue" in r["checks"] for r in fill["frames"].values())


def test_library_run_writes_what_the_cli_writes_report_included(tmp_path: Path, small_sintel_dir):
    from typer.testing import CliRunner

    from cleanplate._cli.main import app

    frames = small_sintel_dir(2)
    cfg = load_config(overrides={"fill.method": "opencv-telea", "output.plate_format": "png"})
    summary = cleanplate.run(frames, tmp_path / "lib", cfg)
    assert summary.extra["report"] == str(tmp_path / "lib" / "report.html")
    result = CliRunner().invoke(app, ["--quiet", "run", str(frames), "-o", str(tmp_path / "cli"), "--method",
                                      "opencv-telea", "--plate-format", "png"])
    assert result.exit_code == 0, result.output

    def files(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
                if p.is_file() and ".cleanplate" not in p.parts and p.suffix not in (".json", ".html")}

    lib, cli = files(tmp_path / "lib"), files(tmp_path / "cli")
    assert lib.keys() == cli.keys() and lib == cli
    assert (tmp_path / "cli" / "report.html").is_file() and (tmp_path / "lib" / "report.html").is_file()
    assert "frame_0016" in (tmp_path / "lib" / "report.html").read_text()


def test_shot_ids_reach_both_metadata_files_and_the_temporal_fill(tmp_path: Path):
    frames = tmp_path / "two"
    frames.mkdir()
    for k, p in enumerate(sorted((DAVIS / "davis_tennis" / "frames").glob("*.png"))[:3]):
        shutil.copy(p, frames / f"a{k}.png")
    for k, p in enumerate(sorted((DAVIS / "davis_bmx-trees" / "frames").glob("*.jpg"))[:3]):
        Image.open(p).convert("RGB").resize((432, 240)).save(frames / f"b{k}.png")
    cfg = load_config(overrides={"fill.method": "temporal+opencv-telea", "qa.enabled": False})
    cleanplate.pipeline.run(frames, tmp_path / "out", cfg)
    seg = json.loads((tmp_path / "out" / "instances_metadata.json").read_text())["frames"]
    fill = json.loads((tmp_path / "out" / "inpainting_metadata.json").read_text())["frames"]
    expected = {"a0": "shot0000", "a1": "shot0000", "a2": "shot0000", "b0": "shot0001", "b1": "shot0001",
                "b2": "shot0001"}
    assert {k: r["shot_id"] for k, r in seg.items()} == expected
    assert {k: r["shot_id"] for k, r in fill.items()} == expected
    for fid, r in fill.items():  # the temporal fill took the shots from the records: no borrowing across the cut
        assert r["extra"]["shot_id"] == expected[fid]
        assert all(expected[n] == expected[fid] for n in r["extra"]["neighbour_ids"])


class _KeepEveryOther:
    """A shot segmenter for the test: sees each window whole, keeps characters in even frames only."""

    name = "test-every-other"
    windows: list[int] = []

    def __init__(self, config, device) -> None:
        pass

    def segment_shot(self, images, results, shot=None):
        type(self).windows.append(len(images))
        out = []
        for k, res in enumerate(results):
            for inst in res.instances:
                inst.character = inst.character and k % 2 == 0
                inst.reason = "shot: odd frame" if k % 2 else inst.reason
            out.append(res)
        return out

    def weights_used(self):
        return []


def test_characters_stage_gets_shot_windows_and_its_results_make_the_masks(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch):
    from cleanplate.io.outputs import read_mask
    from cleanplate.segment.base import SHOT_SEGMENTERS

    monkeypatch.setitem(SHOT_SEGMENTERS._items, "test-every-other", _KeepEveryOther)
    _KeepEveryOther.windows = []
    frames = tmp_path / "tennis"
    frames.mkdir()
    for p in sorted((DAVIS / "davis_tennis" / "frames").glob("*.png"))[:5]:
        shutil.copy(p, frames / p.name)
    cfg = load_config(overrides={"segment.shot.method": "test-every-other", "shots.max_frames": 3,
                                 "fill.method": "opencv-telea", "qa.enabled": False})
    cleanplate.pipeline.run(frames, tmp_path / "out", cfg)
    assert _KeepEveryOther.windows == [2, 3]  # one shot, windows of at most max_frames (none under half of it)
    seg = json.loads((tmp_path / "out" / "instances_metadata.json").read_text())["frames"]
    for k, fid in enumerate(["00000", "00001", "00002", "00003", "00004"]):
        mask = read_mask(tmp_path / "out" / "masks" / f"{fid}.png")
        kept = (k if k < 2 else k - 2) % 2 == 0  # position in its window
        assert bool(mask.any()) == kept, fid
        assert seg[fid]["n_characters"] == (1 if kept else 0)


def test_segment_stage_hands_the_segmenter_batches_and_a_bad_frame_fails_alone(monkeypatch: pytest.MonkeyPatch):
    """segment.batch_size 8: the saliency segmenter gets the window's frames in one segment_batch call,
    with the same instances as frame by frame; a frame the model cannot take (a 2-D array) makes
    that call fail, and the retry frame by frame fails only that frame."""
    from cleanplate.segment.saliency import SaliencySegmenter
    from cleanplate.stages.segment import SegmentStage

    tennis = sorted((DAVIS / "davis_tennis" / "frames").glob("*.png"))[:4]
    calls: list[int] = []
    real = SaliencySegmenter.segment_batch

    def counting(self: SaliencySegmenter, images: list[np.ndarray]):
        calls.append(len(images))
        return real(self, images)

    monkeypatch.setattr(SaliencySegmenter, "segment_batch", counting)

    def run(batch: int, bad: bool) -> list[FrameRecord]:
        cfg = load_config(overrides={"segment.batch_size": batch, "segment.shot.method": "none"})
        recs = [_rec(i, p) for i, p in enumerate(tennis)]
        if bad:
            recs[2].image = np.zeros((240, 432), np.uint8)  # not HxWx3: the model call raises
        return SegmentStage(cfg, "cpu")(recs)

    one = run(1, bad=False)
    assert calls == []
    many = run(8, bad=False)
    assert calls == [4]
    for a, b in zip(one, many, strict=True):
        assert a.segment is not None and b.segment is not None and not b.failed
        assert len(a.segment.instances) == len(b.segment.instances) >= 1
        for ia, ib in zip(a.segment.instances, b.segment.instances, strict=True):
            assert np.array_equal(ia.mask, ib.mask)
        assert b.timings["segment"] > 0
    calls.clear()
    mixed = run(8, bad=True)
    assert calls == [4]  # one batch call, which failed; then frame by frame
    assert [r.failed for r in mixed] == [False, False, True, False]
    assert mixed[2].failed_stage == "segment"
    assert all(np.array_equal(a.segment.instances[0].mask, b.segment.instances[0].mask)  # type: ignore[union-attr]
               for a, b in zip(one, mixed, strict=True) if not b.failed)
