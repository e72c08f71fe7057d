"""Frame input: every kind of bad or unusual file is handled or recorded, never a crash."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cleanplate.errors import FrameError, InputError
from cleanplate.io.frames import load_image, open_source


def _rgb(w: int = 64, h: int = 48, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def make_bad_inputs(d: Path, real_frame: Path) -> dict[str, str | None]:
    """Write one file per case; returns frame id -> expected failure substring (None = must load)."""
    d.mkdir(parents=True, exist_ok=True)
    small = Image.open(real_frame).convert("RGB").resize((256, 109))
    cases: dict[str, str | None] = {}
    small.save(d / "a_good.png")
    cases["a_good"] = None
    (d / "b_zero.png").write_bytes(b"")
    cases["b_zero"] = "empty file"
    small.save(d / "full.jpg", quality=90)
    data = (d / "full.jpg").read_bytes()
    (d / "full.jpg").unlink()
    (d / "c_truncated.jpg").write_bytes(data[: len(data) // 2])
    cases["c_truncated"] = "truncated"
    (d / "d_text.jpg").write_text("this is not an image\n")
    cases["d_text"] = "not an image"
    small.convert("CMYK").save(d / "e_cmyk.jpg", quality=95)
    cases["e_cmyk"] = None
    arr16 = (np.linspace(0, 65535, 256 * 109).reshape(109, 256)).astype(np.uint16)
    Image.fromarray(arr16).save(d / "f_16bit.png")
    cases["f_16bit"] = None
    small.convert("L").save(d / "g_gray.png")
    cases["g_gray"] = None
    small.convert("P", palette=Image.ADAPTIVE, colors=32).save(d / "h_palette.png")
    cases["h_palette"] = None
    rgba = small.convert("RGBA")
    rgba.putalpha(128)
    rgba.save(d / "i_rgba.png")
    cases["i_rgba"] = None
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise when displayed
    small.save(d / "j_exif.jpg", exif=exif, quality=95)
    cases["j_exif"] = None
    Image.new("RGB", (5000, 20), (10, 20, 30)).save(d / "k_huge.png")
    cases["k_huge"] = "larger than max_side"
    return cases


def test_each_bad_input_loads_or_fails_with_one_line(tmp_path: Path, sintel_frames: list[Path]):
    d = tmp_path / "bad"
    cases = make_bad_inputs(d, sintel_frames[0])
    for path in sorted(d.iterdir()):
        expected = cases[path.stem]
        if expected is None:
            arr = load_image(path, max_side=4096)
            assert arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3
        else:
            with pytest.raises(FrameError) as exc:
                load_image(path, max_side=4096)
            assert expected in str(exc.value) and "\n" not in str(exc.value)


def test_conversions_are_right(tmp_path: Path, sintel_frames: list[Path]):
    d = tmp_path / "bad"
    make_bad_inputs(d, sintel_frames[0])
    good = load_image(d / "a_good.png")
    # RGBA: the colour channels are kept as they are (alpha dropped)
    assert (load_image(d / "i_rgba.png") == good).all()
    # 16-bit: scaled to 8 bits, not clipped (0 -> 0, 65535 -> 255, a ramp stays a ramp)
    ramp = load_image(d / "f_16bit.png")[..., 0]
    assert ramp.min() == 0 and ramp.max() == 255 and np.all(np.diff(ramp.ravel().astype(int)) >= 0)
    # grayscale -> 3 equal channels
    g = load_image(d / "g_gray.png")
    assert (g[..., 0] == g[..., 1]).all() and (g[..., 1] == g[..., 2]).all()
    # EXIF orientation 6: the decoded frame is upright, i.e. rotated (w and h swapped)
    assert load_image(d / "j_exif.jpg").shape == (256, 109, 3)
    # CMYK: close to the RGB original
    assert np.abs(load_image(d / "e_cmyk.jpg").astype(int) - good.astype(int)).mean() < 12


def test_bad_frames_are_recorded_and_the_batch_goes_on(tmp_path: Path, sintel_frames: list[Path]):
    from cleanplate import load_config
    from cleanplate.pipeline import run

    d = tmp_path / "bad"
    cases = make_bad_inputs(d, sintel_frames[0])
    cfg = load_config(overrides={"fill.method": "opencv-telea", "input.max_side": 4096, "qa.enabled": False})
    summary = run(d, tmp_path / "out", cfg)
    failing = {k for k, v in cases.items() if v is not None}
    assert set(summary.failed_frames) == failing
    meta = json.loads((tmp_path / "out" / "instances_metadata.json").read_text())
    for fid, expected in cases.items():
        rec = meta["frames"][fid]
        if expected is None:
            assert rec["status"] == "ok", (fid, rec["error"])
            assert (tmp_path / "out" / "backgrounds" / f"{fid}.jpg").is_file()
        else:
            assert rec["status"] == "failed" and expected in rec["error"]
    fill = json.loads((tmp_path / "out" / "inpainting_metadata.json").read_text())
    assert fill["frames"]["b_zero"]["error"].startswith("segmentation failed: empty file")
    assert summary.failed_fraction == pytest.approx(len(failing) / len(cases))


def test_folder_natural_sort_recursive_and_duplicate_stems(tmp_path: Path):
    d = tmp_path / "f"
    (d / "sub").mkdir(parents=True)
    for name in ["f10.png", "f2.png", "f1.png", "sub/f3.png", "x.jpg", "x.png", "notes.txt", ".hidden.png"]:
        p = d / name
        if p.suffix == ".txt":
            p.write_text("x")
        else:
            Image.fromarray(_rgb()).save(p)
    src = open_source(d)
    assert [r.frame_id for r, _ in src] == ["f1", "f2", "f10", "x_jpg", "x_png"]
    rec = open_source(d, recursive=True, limit=4)
    assert [r.frame_id for r, _ in rec] == ["f1", "f2", "f10", "sub__f3"]


def test_input_errors(tmp_path: Path):
    with pytest.raises(InputError, match="not found"):
        open_source(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no frames"):
        open_source(tmp_path / "empty")
    Image.fromarray(_rgb()).save(tmp_path / "one.png")
    with pytest.raises(InputError, match="single image"):
        open_source(tmp_path / "one.png")
    (tmp_path / "v.mp4").write_bytes(b"garbage")
    with pytest.raises(InputError, match="cannot open video"):
        open_source(tmp_path / "v.mp4")


def _write_video(path: Path, frames: list[np.ndarray], fps: int = 10) -> None:
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=fps)
        s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        s.options = {"qscale": "1"}
        for f in frames:
            for pkt in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)


def test_video_input_every_and_limit(tmp_path: Path, sintel_frames: list[Path]):
    frames = [np.asarray(Image.open(p).convert("RGB").resize((256, 112))) for p in sintel_frames[:6]]
    video = tmp_path / "clip.mp4"
    _write_video(video, frames)
    src = open_source(video, every=2)
    got = [(r.frame_id, loader()) for r, loader in src]
    assert [g[0] for g in got] == ["clip_000000", "clip_000002", "clip_000004"]
    def err(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.abs(a.astype(int) - b.astype(int)).mean())

    for k, (_, arr) in enumerate(got):  # lossy codec: each decoded frame is nearest to its own source
        assert arr.shape == (112, 256, 3) and arr.dtype == np.uint8
        errors = [err(arr, f) for f in frames]
        assert int(np.argmin(errors)) == 2 * k and errors[2 * k] < 12
    assert [r.frame_id for r, _ in open_source(video, limit=2)] == ["clip_000000", "clip_000001"]


def test_run_on_a_video(tmp_path: Path, sintel_frames: list[Path]):
    from cleanplate import load_config
    from cleanplate.pipeline import run

    frames = [np.asarray(Image.open(p).convert("RGB").resize((256, 112))) for p in sintel_frames[:3]]
    video = tmp_path / "clip.mp4"
    _write_video(video, frames)
    out = tmp_path / "out"
    summary = run(video, out, load_config(overrides={"fill.method": "opencv-telea", "qa.enabled": False}))
    assert summary.failed_frames == {}
    assert sorted(p.name for p in (out / "backgrounds").iterdir()) == [f"clip_00000{i}.jpg" for i in range(3)]
    assert json.loads((out / "run.json").read_text())["segment"]["input"]["kind"] == "video"


def test_duplicate_ids_found_in_one_pass_over_many_frames(tmp_path: Path):
    d = tmp_path / "many"
    (d / "a").mkdir(parents=True)
    names = [f"f{i}.png" for i in range(20000)] + ["x.jpg", "x.png", "a/b.png", "a__b.png"]
    for name in names:
        (d / name).write_bytes(b"")  # listing never decodes
    ids = [r.frame_id for r, _ in open_source(d, recursive=True)]
    assert len(ids) == len(set(ids)) == len(names)
    assert ids[2:5] == ["f0", "f1", "f2"] and ids[20001] == "f19999"  # natural sort kept
    assert "x_jpg" in ids and "x_png" in ids and "f7" in ids
    collided = [i for i in ids if i.startswith("a__b")]
    assert collided == ["a__b_png_0", "a__b_png_1"]
