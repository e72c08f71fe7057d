"""End to end on real footage with the real u2netp model: layout, masks, plates, metadata."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cleanplate import load_config
from cleanplate import masks as M
from cleanplate.io.outputs import read_mask
from cleanplate.pipeline import inpaint, run, segment
from conftest import SHARED, decoded

BMX = SHARED / "data" / "davis_bmx-trees"

# Hand-checked on frame_0016 (1024x436): points on the girl and points of the set around her.
ON_CHARACTER = {"hair": (440, 150), "neck": (400, 300), "chest": (390, 410), "forearm": (700, 330),
                "hand with apple": (900, 280)}
SCENERY = {"crates left": (130, 330), "wall top left": (100, 40), "roof top right": (900, 20),
           "window right": (950, 120), "wall lower right": (1000, 330), "beam left": (230, 120)}


def test_run_on_the_sample_writes_the_layout_and_masks_the_character(tmp_path: Path, sintel_dir):
    frames = sintel_dir(3)
    out = tmp_path / "out"
    # the points were hand-checked against the old absolute 20 px band: at 1024x436 the relative
    # default is 8 px, which leaves the forearm point (more than 8 px outside u2netp's mask) out
    summary = run(frames, out, load_config(overrides={"fill.method": "opencv-telea",
                                                      "masks.dilate_relative": False}))
    ids = ["frame_0016", "frame_0017", "frame_0018"]
    assert summary.failed_frames == {} and summary.frames_total == 3
    for fid in ids:
        for rel in (f"masks/{fid}.png", f"backgrounds/{fid}.jpg", f"instances/{fid}_0.png",
                    f"instances/{fid}_0_mask.png"):
            assert (out / rel).is_file(), rel
    for name in ("instances_metadata.json", "inpainting_metadata.json", "run.json"):
        assert (out / name).is_file()

    mask = read_mask(out / "masks" / "frame_0016.png")
    assert mask.shape == (436, 1024)
    for what, (x, y) in ON_CHARACTER.items():
        assert mask[y, x], f"character point '{what}' not masked"
    for what, (x, y) in SCENERY.items():
        assert not mask[y, x], f"scenery point '{what}' masked"
    cov = mask.mean()
    assert 0.15 < cov < 0.40  # the girl plus the 20 px band, not the set

    meta = json.loads((out / "instances_metadata.json").read_text())
    rec = meta["frames"]["frame_0016"]
    assert rec["status"] == "ok" and rec["n_characters"] >= 1 and rec["coverage"] == pytest.approx(cov, abs=1e-5)
    inst = rec["instances"][0]
    assert set(inst) >= {"bbox", "area", "score", "character", "reason"} and inst["character"] is True
    x, y, w, h = inst["bbox"]
    assert 280 < x < 340 and y < 100 and x + w > 930
    assert meta["summary"]["frames_ok"] == 3 and meta["summary"]["instances_per_frame"] >= 1

    cut = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(out / "instances" / "frame_0016_0.png"))
    assert cut.shape[2] == 4 and cut[..., 3].max() == 255 and cut[..., 3].min() == 0

    fill = json.loads((out / "inpainting_metadata.json").read_text())
    assert fill["summary"]["success_rate"] == 1.0 and fill["summary"]["method"] == "opencv-telea"

    runj = json.loads((out / "run.json").read_text())
    assert runj["config"]["fill"]["method"] == "opencv-telea"
    assert runj["versions"]["cleanplate"] and runj["versions"]["numpy"]
    (w,) = [w for w in runj["segment"]["weights"] if w["name"] == "u2netp"]
    assert w["sha256"] == "309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8"
    (qa,) = [w for w in runj["fill"]["weights"] if w["name"] == "u2netp"]  # the plate checks' saliency model
    assert qa["sha256"] == w["sha256"]
    assert [x["name"] for x in runj["weights"]] == ["u2netp"]  # listed once though both stages load it
    assert runj["segment"]["seconds_per_frame"]["segment"] > 0 and runj["fill"]["seconds_per_frame"]["fill"] > 0
    assert runj["summary"]["frames"] == 3


def test_default_configuration_masks_the_davis_rider_and_little_else(tmp_path: Path):
    """The default configuration end to end, against DAVIS's hand-drawn masks of the bmx-trees rider
    (rider and bike, 432x240): ``load_config()`` with nothing changed but the frame limit."""
    out = tmp_path / "out"
    summary = run(BMX / "frames", out, load_config(overrides={"input.limit": 8}))
    assert summary.failed_frames == {} and summary.frames_total == 8
    ids = sorted(p.stem for p in (out / "masks").glob("*.png"))
    assert ids == [f"{i:05d}" for i in range(8)]
    cfg = load_config()
    band = M.dilation_radius(cfg.masks.dilate, cfg.masks.dilate_relative, (240, 432)) + 8  # 4 px + 8 px slack
    missed = outside = truth_area = 0
    for fid in ids:
        mask = read_mask(out / "masks" / f"{fid}.png")
        truth = read_mask(BMX / "masks" / f"{fid}.png")
        assert mask.shape == truth.shape == (240, 432)
        recall = (mask & truth).sum() / truth.sum()
        assert recall >= 0.93, (fid, recall)  # the rider and the bike, wheels included
        extra = int((mask & ~M.dilate(truth, band)).sum())
        # frame 6 spills onto the mural's painted face (about 0.8 of the rider's area): a known
        # over-mask, hence the loose per-frame bound; the clip's total is held tight below
        assert extra < truth.sum(), (fid, extra, int(truth.sum()))
        missed += int((truth & ~mask).sum())
        outside += extra
        truth_area += int(truth.sum())
    assert missed < 0.03 * truth_area, (missed, truth_area)  # 0.018 measured
    assert outside < 0.3 * truth_area, (outside, truth_area)  # 0.25 measured: about 7300 px of scenery in 8 frames
    fill = json.loads((out / "inpainting_metadata.json").read_text())
    assert fill["summary"]["method"] == "temporal+auto" and fill["summary"]["success_rate"] == 1.0


@pytest.fixture(scope="module")
def small_segmented(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two real Sintel frames (384x164) segmented once: (frames folder, segment output) for the fills."""
    from PIL import Image

    from conftest import SINTEL

    root = tmp_path_factory.mktemp("segmented")
    frames = root / "frames"
    frames.mkdir()
    for p in sorted(SINTEL.glob("*.png"))[:2]:
        Image.open(p).convert("RGB").resize((384, 164), Image.LANCZOS).save(frames / p.name)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLEANPLATE_HOME", str(root / "home"))
        mp.setenv("CLEANPLATE_OFFLINE", "1")
        segment(frames, root / "seg", load_config(overrides={"qa.enabled": False}))
    return frames, root / "seg"


@pytest.mark.parametrize("method", ["opencv-telea", "opencv-ns", "patchmatch"])
@pytest.mark.parametrize("feather", [0, 6])
def test_unmasked_pixels_are_byte_identical(tmp_path: Path, small_segmented, method: str, feather: int):
    """Every fill method, with and without feathering, on the same masks (one segmentation, shared)."""
    frames, seg = small_segmented
    out = tmp_path / "out"
    cfg = load_config(overrides={"fill.method": method, "output.plate_format": "png", "masks.feather": feather,
                                 "qa.enabled": False})
    res = inpaint(seg, out, cfg)
    assert res.fill is not None and res.fill.done == 2 and not res.fill.failures
    for fid in ("frame_0016", "frame_0017"):  # the segmentation's masks, used as they are
        assert np.array_equal(read_mask(out / "masks" / f"{fid}.png"), read_mask(seg / "masks" / f"{fid}.png"))
    for src in sorted(frames.iterdir()):
        image = decoded(src)
        plate = decoded(out / "backgrounds" / f"{src.stem}.png")
        mask = read_mask(out / "masks" / f"{src.stem}.png")
        assert mask.any() and (~mask).any()
        assert plate.shape == image.shape
        assert np.array_equal(plate[~mask], image[~mask])
        assert not np.array_equal(plate[mask], image[mask])  # the character was actually filled


def test_stage_commands_and_foreign_mask_folder(tmp_path: Path, small_sintel_dir):
    frames = small_sintel_dir(2)
    cfg = load_config(overrides={"fill.method": "opencv-telea", "output.plate_format": "png", "qa.enabled": False})
    seg = segment(frames, tmp_path / "seg", cfg)
    assert seg.segment is not None and seg.segment.done == 2
    assert not (tmp_path / "seg" / "backgrounds").exists()
    # fill from the segment output into another folder: frames found through run.json
    filled = inpaint(tmp_path / "seg", tmp_path / "plates", cfg)
    assert filled.fill is not None and filled.fill.done == 2
    assert (tmp_path / "plates" / "backgrounds" / "frame_0016.png").is_file()
    # a foreign mask folder (e.g. the old workflow's): masks/<frame>.png + --input-dir, dilated by masks.dilate
    # (20 px of a 1080-line frame by default: 3 px at 164 lines; absolute 20 px with dilate_relative off)
    foreign = tmp_path / "foreign"
    (foreign / "masks").mkdir(parents=True)
    m = np.zeros((164, 384), np.uint8)
    m[60:80, 100:120] = 255
    from PIL import Image

    for src in frames.iterdir():
        Image.fromarray(m).save(foreign / "masks" / f"{src.stem}.png")
    res = inpaint(foreign, tmp_path / "p2", cfg, frames=frames)
    assert res.fill is not None and res.fill.done == 2
    used = read_mask(tmp_path / "p2" / "masks" / "frame_0016.png")
    assert np.array_equal(used, M.dilate(m > 0, 3))
    rec = json.loads((tmp_path / "p2" / "inpainting_metadata.json").read_text())["frames"]["frame_0016"]
    assert rec["extra_dilate"] == 20
    absolute = cfg.model_copy(update={"masks": cfg.masks.model_copy(update={"dilate_relative": False})})
    res = inpaint(foreign, tmp_path / "p3", absolute, frames=frames)
    used = read_mask(tmp_path / "p3" / "masks" / "frame_0016.png")
    assert used.sum() > 400 * 3  # 20x20 square grown by 20 px
    assert used[70, 110] and used[70, 135] and not used[70, 150]


def test_missing_fill_weights_fail_before_segmentation(tmp_path: Path, small_sintel_dir):
    from cleanplate.errors import WeightsError

    frames = small_sintel_dir(2)
    with pytest.raises(WeightsError, match="big-lama"):  # offline, empty cache (conftest)
        run(frames, tmp_path / "out", load_config(overrides={"fill.method": "lama"}))
    assert not (tmp_path / "out" / "masks").exists()  # no segmentation was done for nothing
