"""Film scale: slim manifest, metadata streamed once per stage, a kill during the metadata write."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cleanplate import load_config
from cleanplate.io.manifest import KEPT, OFFSET, Manifest
from cleanplate.io.metadata import MetadataWriter, summarize
from cleanplate.io.outputs import TMP_SUFFIX, Layout
from cleanplate.pipeline import inpaint

CFG = {"fill.method": "opencv-telea", "qa.enabled": False, "output.plate_format": "png"}


def _tiny_inputs(root: Path, n: int, start: int = 0, broken: tuple[int, ...] = ()) -> tuple[Path, Path]:
    """``n`` 64x36 frames in root/frames and their masks in root/seg/masks (a 12x10 hole each)."""
    frames, masks = root / "frames", root / "seg" / "masks"
    frames.mkdir(parents=True, exist_ok=True)
    masks.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(start)
    for i in range(start, start + n):
        name = f"f_{i:05d}.png"
        if i in broken:
            (frames / name).write_bytes(b"")  # a zero-byte frame: recorded as failed
        else:
            Image.fromarray(rng.integers(0, 256, (36, 64, 3), dtype=np.uint8)).save(frames / name)
        m = np.zeros((36, 64), np.uint8)
        m[10:20, 20 + i % 30: 32 + i % 30] = 255
        Image.fromarray(m).save(masks / name)
    return frames, root / "seg"


def test_manifest_keeps_only_what_resume_needs_and_reads_full_records_back(tmp_path: Path):
    path = tmp_path / "fill.jsonl"
    with Manifest(path) as m:
        for i in range(5):
            m.append({"frame_id": f"a{i}", "status": "ok", "stage_hash": "h1", "outputs": [f"b/{i}.png"],
                      "error": None, "extra": {"big": list(range(50))}, "timings": {"fill": 0.1 * i}})
        m.append({"frame_id": "a2", "status": "failed", "stage_hash": "h2", "outputs": [], "error": "boom"})
    m = Manifest(path)
    assert set(m.records["a0"]) == {*KEPT, OFFSET}  # the big fields stay in the file
    assert m.records["a2"]["status"] == "failed" and m.records["a2"]["error"] == "boom"
    assert m.hashes() == {"h1", "h2"}
    assert m.read("a3")["extra"]["big"][-1] == 49 and m.read("a3")["timings"]["fill"] == pytest.approx(0.3)
    assert m.read("a2")["error"] == "boom"  # the last record of a frame wins
    assert [r["frame_id"] for r in m.iter_records(["a4", "zz", "a0"])] == ["a4", "a0"]
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "1.png").write_bytes(b"x")
    assert m.is_done("a1", "h1", tmp_path) and not m.is_done("a0", "h1", tmp_path)
    assert not m.is_done("a1", "h2", tmp_path)
    m.close()


def test_manifest_append_after_a_torn_line_starts_a_new_line(tmp_path: Path):
    path = tmp_path / "segment.jsonl"
    path.write_text('{"frame_id":"a","status":"ok","stage_hash":"h","outputs":[]}\n{"frame_id":"b","sta')
    m = Manifest(path)
    assert set(m.records) == {"a"}
    m.append({"frame_id": "b", "status": "ok", "stage_hash": "h", "outputs": [], "n": 7})
    assert m.read("b")["n"] == 7
    m.close()
    again = Manifest(path)  # the record after the torn line survives a reload
    assert set(again.records) == {"a", "b"} and again.read("b")["n"] == 7
    again.close()


def test_streamed_metadata_is_the_json_the_old_writer_made(tmp_path: Path):
    layout = Layout(tmp_path)
    layout.prepare()
    cfg = load_config(overrides=CFG)
    recs = [{"frame_id": f"f{i}", "status": "ok" if i != 2 else "failed", "error": None if i != 2 else "bad \"x\"\n",
             "stage_hash": "h", "outputs": [], "coverage": 0.25 * i, "timings": {"fill": 0.5, "decode": 0.01},
             "extra": {"nested": {"k": [1, 2]}}, "checks": None} for i in range(4)]
    with Manifest(layout.state / "fill.jsonl") as m:
        w = MetadataWriter(layout, "fill", cfg, m)
        for r in recs:
            m.append(r)
            w.add(r)
        order = ["f3", "f0", "f1", "f2", "missing"]
        summary = w.finish(order, seconds=2.0)
    expected = {"summary": summarize("fill", [recs[3], recs[0], recs[1], recs[2]], cfg, 2.0),
                "frames": {r["frame_id"]: r for r in (recs[3], recs[0], recs[1], recs[2])}}
    text = layout.inpainting_metadata.read_text()
    assert text == json.dumps(expected, indent=2) + "\n"  # byte for byte the format readers know
    assert list(json.loads(text)["frames"]) == ["f3", "f0", "f1", "f2"]
    assert summary == expected["summary"]
    assert summary["frames"] == 4 and summary["frames_ok"] == 3 and summary["frames_failed"] == 1
    assert summary["mean_mask_coverage"] == pytest.approx((0 + 0.25 + 0.75) / 3)
    assert summary["images_per_s"] == 1.5  # 3 frames filled in 2 s
    assert w.failures == {"f2": "bad \"x\"\n"}
    assert not list(tmp_path.rglob(f"*{TMP_SUFFIX}"))
    with Manifest(layout.state / "segment.jsonl") as empty:
        MetadataWriter(layout, "segment", cfg, empty).finish([])
    meta = json.loads(layout.instances_metadata.read_text())
    assert meta["frames"] == {} and meta["summary"]["frames"] == 0


def test_progress_summary_is_rewritten_on_a_time_schedule(tmp_path: Path):
    layout = Layout(tmp_path)
    layout.prepare()
    now = [0.0]
    with Manifest(layout.state / "segment.jsonl") as m:
        w = MetadataWriter(layout, "segment", load_config(overrides=CFG), m, every_s=10.0, clock=lambda: now[0])
        written = []
        for i in range(100):
            rec = {"frame_id": f"f{i}", "status": "ok", "stage_hash": "h", "outputs": [], "n_instances": 2,
                   "n_characters": 1, "coverage": 0.1, "coverage_raw": 0.05, "timings": {"segment": 0.2}}
            m.append(rec)
            w.add(rec)
            now[0] += 1.0
            written.append(w.maybe_flush())
        w.skip(5)
        assert sum(written) == 10  # 100 frames in 100 s: every 10 s, not every N frames
        progress = json.loads(w.summary_path.read_text())
        assert progress["finished"] is False and progress["committed"] == 100
        assert progress["summary"]["characters_total"] == 100
        assert not layout.instances_metadata.exists()  # the full file is written once, at the end
        final = w.finish([f"f{i}" for i in range(100)])
    assert final["frames"] == 100 and final["instances_total"] == 200 and final["characters_per_frame"] == 1.0
    progress = json.loads(w.summary_path.read_text())
    assert progress["finished"] is True and progress["skipped"] == 5 and progress["summary"] == final


_DIE = """
import os, signal, sys
from cleanplate import load_config
from cleanplate.io import metadata
from cleanplate.pipeline import inpaint

real, seen = metadata._dumps, [0]

def dumps(obj, indent):  # SIGKILL this process in the middle of writing the metadata file
    if indent == "    ":
        seen[0] += 1
        if seen[0] == {kill_at}:
            os.kill(os.getpid(), signal.SIGKILL)
    return real(obj, indent)

metadata._dumps = dumps
inpaint(sys.argv[1], sys.argv[2], load_config(overrides={cfg!r}), frames=sys.argv[3])
"""


def _die_during_metadata(seg: Path, out: Path, frames: Path, kill_at: int) -> None:
    script = textwrap.dedent(_DIE).format(kill_at=kill_at, cfg=CFG)
    proc = subprocess.run([sys.executable, "-c", script, str(seg), str(out), str(frames)],
                          capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()


def test_sigkill_during_the_metadata_write_then_rerun_leaves_complete_metadata(tmp_path: Path):
    cfg = load_config(overrides=CFG)
    frames, seg = _tiny_inputs(tmp_path, 6, broken=(4,))
    out = tmp_path / "out"
    _die_during_metadata(seg, out, frames, kill_at=3)  # first run: killed while writing frame 3 of 6
    meta_path = out / "inpainting_metadata.json"
    assert not meta_path.exists()  # no half file where readers look
    assert list(out.rglob(f"*{TMP_SUFFIX}")), "the kill should have left the temp files"
    rerun = inpaint(seg, out, cfg, frames=frames)
    assert (rerun.fill.skipped, rerun.fill.done, rerun.fill.failed) == (5, 0, 1)  # all committed before the kill
    meta = json.loads(meta_path.read_text())
    assert list(meta["frames"]) == [f"f_{i:05d}" for i in range(6)]
    assert meta["summary"]["frames"] == 6 and meta["summary"]["frames_ok"] == 5
    assert meta["frames"]["f_00004"]["status"] == "failed" and "empty file" in meta["frames"]["f_00004"]["error"]
    assert meta["frames"]["f_00001"]["outputs"] == ["backgrounds/f_00001.png", "masks/f_00001.png"]
    assert not list(out.rglob(f"*{TMP_SUFFIX}"))
    before = meta_path.read_bytes()

    _tiny_inputs(tmp_path, 4, start=6)  # the film grows; a later run is killed mid-write again
    _die_during_metadata(seg, out, frames, kill_at=8)
    assert meta_path.read_bytes() == before  # the old file is whole and readable meanwhile
    again = inpaint(seg, out, cfg, frames=frames)
    assert (again.fill.skipped, again.fill.done) == (9, 0)
    meta = json.loads(meta_path.read_text())
    assert len(meta["frames"]) == 10 and meta["summary"]["frames_ok"] == 9
    ref = inpaint(seg, tmp_path / "ref", cfg, frames=frames)  # uninterrupted, for comparison
    ref_meta = json.loads((tmp_path / "ref" / "inpainting_metadata.json").read_text())
    assert {k: v["status"] for k, v in meta["frames"].items()} == {k: v["status"] for k, v in ref_meta["frames"].items()}
    assert ref.fill.done == 9 and ref.fill.failed == 1
    for fid in ref_meta["frames"]:
        if fid != "f_00004":
            assert (out / "backgrounds" / f"{fid}.png").read_bytes() == (tmp_path / "ref" / "backgrounds" / f"{fid}.png").read_bytes()


def test_sklearn_clustering_finds_blobs_and_its_silhouette_is_the_definition():
    from cleanplate.dataset.cluster import choose_k, kmeans, silhouette

    rng = np.random.default_rng(1)
    centres = rng.normal(0, 10, (4, 32))
    x = np.concatenate([c + rng.normal(0, 0.5, (60, 32)) for c in centres])
    truth = np.repeat(np.arange(4), 60)
    lab, inertia = kmeans(x, 4, seed=0)
    assert all(len(set(lab[truth == t])) == 1 for t in range(4)) and len(set(lab)) == 4
    assert np.array_equal(lab, kmeans(x, 4, seed=0)[0]) and inertia > 0  # deterministic for a seed
    assert choose_k(x, seed=0)[0] == 4
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))  # the silhouette by its definition, all points
    a = np.array([d[i, lab == lab[i]].sum() / ((lab == lab[i]).sum() - 1) for i in range(len(x))])
    b = np.array([min(d[i, lab == o].mean() for o in set(lab.tolist()) if o != lab[i]) for i in range(len(x))])
    assert silhouette(x, lab) == pytest.approx(float(np.mean((b - a) / np.maximum(a, b))), rel=1e-9)
    assert silhouette(x, np.zeros(len(x), int)) == -1.0
    sampled = silhouette(x, lab, max_n=100, seed=3)  # a sample of 100 points: close to the full score
    assert sampled == pytest.approx(silhouette(x, lab), abs=0.05)


def test_amg_masks_to_boxes_is_torchvisions_with_sams_convention():
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    from cleanplate.segment.amg import masks_to_boxes

    rng = np.random.default_rng(0)
    masks = np.zeros((6, 40, 50), bool)
    masks[0, 5:9, 10:30] = True
    masks[1, 39, 49] = True  # one pixel in the last corner
    masks[2] = rng.random((40, 50)) > 0.97  # scattered
    masks[4, :, 7] = True  # one full column
    # masks[3] and masks[5] stay empty
    want = np.zeros((6, 4), np.float32)
    for i, m in enumerate(masks):
        ys, xs = np.nonzero(m)
        if len(ys):
            want[i] = [xs.min(), ys.min(), xs.max(), ys.max()]  # max coordinates inclusive
    got = masks_to_boxes(torch.from_numpy(masks))
    assert got.dtype == torch.float32 and np.array_equal(got.numpy(), want)
    assert want[0].tolist() == [10, 5, 29, 8] and want[3].tolist() == [0, 0, 0, 0]
    assert masks_to_boxes(torch.zeros((0, 40, 50), dtype=torch.bool)).shape == (0, 4)


def test_an_idle_rerun_keeps_the_metadata_file_and_a_changed_one_rewrites_it(tmp_path: Path):
    cfg = load_config(overrides=CFG)
    frames, seg = _tiny_inputs(tmp_path, 5)
    out = tmp_path / "out"
    first = inpaint(seg, out, cfg, frames=frames)
    meta = out / "inpainting_metadata.json"
    st, text = meta.stat(), meta.read_text()
    again = inpaint(seg, out, cfg, frames=frames)
    assert again.fill.skipped == 5 and again.fill.stats == first.fill.stats
    assert (meta.stat().st_ino, meta.stat().st_mtime_ns) == (st.st_ino, st.st_mtime_ns)  # not rewritten
    meta.unlink()  # gone: written again from the manifest, the same but for this run's speed
    inpaint(seg, out, cfg, frames=frames)
    old, new = json.loads(text), json.loads(meta.read_text())
    assert old["summary"].pop("images_per_s") > 0 and new["summary"].pop("images_per_s") is None  # none filled
    assert new == old
    limited = inpaint(seg, out, load_config(overrides={**CFG, "input.limit": 3}), frames=frames)
    assert limited.fill.stats["frames"] == 3 and list(json.loads(meta.read_text())["frames"]) == list(old["frames"])[:3]
    inpaint(seg, out, cfg, frames=frames)
    assert json.loads(meta.read_text())["frames"] == old["frames"]


def test_streamed_frames_reader_is_json_loads_and_refuses_a_torn_file(tmp_path: Path):
    from cleanplate.dataset.plates import dumps_lean, iter_frames

    data = {"summary": {"frames": 3, "x": [1, {"y": None}]},
            "frames": {f"f{i}": {"index": i, "s": "é \" }", "l": [1.5, True, {}], "e": {}} for i in range(40)},
            "after": 1}
    path = tmp_path / "m.json"
    for text in (json.dumps(data), json.dumps(data, indent=2), dumps_lean(data)):
        path.write_text(text)
        assert dict(iter_frames(path)) == data["frames"]
    assert dumps_lean(data) == json.dumps(data, indent=2)
    path.write_text(json.dumps(data)[:-200])  # cut inside the frames
    with pytest.raises(ValueError):
        list(iter_frames(path))
    path.write_text(json.dumps({"summary": {}}))
    with pytest.raises(KeyError):
        list(iter_frames(path))


def test_synthetic_plate_folder_dedupes_to_its_shot_variants(tmp_path: Path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from bench_scale import synthetic

    from cleanplate.dataset import dedupe, load_plates

    out = synthetic(tmp_path, 200, shot_len=40, patterns=2)  # 5 shots over 2 scenes, 4 variants each
    plates = load_plates(out)
    assert len(plates) == 200 and all(p.usable for p in plates)
    r = dedupe(out, embeddings=False)
    assert r.summary["usable"] == 200 and 2 <= r.summary["groups"] <= 8, r.summary  # shots 0, 2, 4 share a scene
    data = json.loads((out / "dataset" / "dedupe.json").read_text())
    assert sorted(data["kept"] + list(data["dropped"])) == sorted(p.frame_id for p in plates)
