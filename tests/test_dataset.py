"""From plates to a LoRA training set (issue #7): dedupe, organize, export-lora.

One real pipeline run (saliency + OpenCV Telea) on three real clips — Sintel (4 frames, scaled to
384 wide), DAVIS tennis and DAVIS bmx-trees (3 frames each, 432x240) — makes the output folder
every test copies. The CLIP path runs a tiny random-weight ``CLIPModel`` saved in the test.
"""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cleanplate.dataset import (
    CHARACTER_WORDS,
    dedupe,
    export_lora,
    load_labels,
    make_caption,
    organize,
)
from cleanplate.dataset.kohya import toml_str
from cleanplate.dataset.plates import character_words_in
from cleanplate.dataset.ranking import COMPLETE, STEP
from cleanplate.errors import ConfigError, InputError, OutputError, WeightsError
from cleanplate.io.frames import load_image
from cleanplate.io.outputs import read_image_rgb, read_mask
from conftest import SHARED, SINTEL

CLIPS = ("sintel", "tennis", "bmx")


def _clip(frame_id: str) -> str:
    return frame_id.split("_", 1)[0]


@pytest.fixture(scope="module")
def pipeline_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real output folder: 4 Sintel + 3 tennis + 3 bmx-trees frames through the pipeline."""
    from cleanplate.config import load_config
    from cleanplate.pipeline import run

    root = tmp_path_factory.mktemp("pipeline")
    frames = root / "frames"
    frames.mkdir()
    for p in sorted(SINTEL.glob("*.png"))[:4]:
        Image.open(p).convert("RGB").resize((384, 164), Image.LANCZOS).save(frames / f"sintel_{p.stem}.png")
    for clip, name in (("davis_tennis", "tennis"), ("davis_bmx-trees", "bmx")):
        for p in sorted((SHARED / "data" / clip / "frames").iterdir())[:3]:
            Image.open(p).convert("RGB").save(frames / f"{name}_{p.stem}.png")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLEANPLATE_HOME", str(root / "home"))
        mp.setenv("CLEANPLATE_OFFLINE", "1")
        summary = run(frames, root / "out", load_config(overrides={"fill.method": "opencv-telea", "qa.enabled": False}))
    assert summary.failed_fraction == 0
    return root / "out"


@pytest.fixture
def out(pipeline_out: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "out"
    shutil.copytree(pipeline_out, dst)
    return dst


def _edit_metadata(out: Path, frame_id: str, **fields: object) -> None:
    path = out / "inpainting_metadata.json"
    meta = json.loads(path.read_text())
    meta["frames"][frame_id].update(fields)
    path.write_text(json.dumps(meta))


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


# ------------------------------------------------------------------------------------ dedupe

def test_dedupe_collapses_a_shot_and_keeps_clips_apart(out: Path) -> None:
    r = dedupe(out)
    data = _json(r.path)
    assert r.path == out / "dataset" / "dedupe.json" and not r.skipped
    sintel = [g for g in data["groups"] if any(m.startswith("sintel") for m in g["members"])]
    assert len(sintel) == 1 and len(sintel[0]["members"]) == 4  # consecutive plates: one group
    for g in data["groups"]:
        assert len({_clip(m) for m in g["members"]}) == 1, g  # never across clips
        assert g["kept"] in g["members"]
    assert {_clip(k) for k in data["kept"]} == set(CLIPS)
    assert r.summary["kept"] == len(data["kept"]) == len(data["groups"])
    assert r.summary["kept"] + r.summary["dropped_duplicates"] == 10
    for fid in sintel[0]["members"]:
        if fid != sintel[0]["kept"]:
            assert data["dropped"][fid].startswith(f"near-duplicate of {sintel[0]['kept']}")
    # all pass and are complete: the kept plate is the most complete (in 5 % steps), then the sharpest
    # (5 % steps), then the one with the least invented area
    f = data["frames"]
    assert all(f[m]["completeness"] >= COMPLETE for m in sintel[0]["members"])
    top = max(f[m]["sharpness"] for m in sintel[0]["members"])
    best = min(sintel[0]["members"], key=lambda m: (-round(f[m]["completeness"] / STEP),
                                                    -round(20 * f[m]["sharpness"] / top), round(100 * f[m]["invented"])))
    assert sintel[0]["kept"] == best


def test_dedupe_prefers_a_plate_that_passes_the_checks(out: Path) -> None:
    first = _json(dedupe(out).path)
    kept = next(g["kept"] for g in first["groups"] if g["kept"].startswith("sintel"))
    _edit_metadata(out, kept, checks={"residue": 0.9, "flat": 0.1, "seam": 0.2, "flags": ["residue"]})
    r = dedupe(out)  # the metadata changed: redone
    assert not r.skipped
    data = _json(r.path)
    group = next(g for g in data["groups"] if kept in g["members"])
    assert group["kept"] != kept
    assert "passes the checks" in data["dropped"][kept]


def test_dedupe_rerun_is_skipped_and_a_new_threshold_redoes(out: Path) -> None:
    r1 = dedupe(out)
    mtime = r1.path.stat().st_mtime_ns
    r2 = dedupe(out)
    assert r2.skipped and r1.path.stat().st_mtime_ns == mtime
    r3 = dedupe(out, threshold=0)
    assert not r3.skipped and r3.path.stat().st_mtime_ns != mtime
    assert r3.summary["groups"] > r1.summary["groups"]
    assert _json(r3.path)["settings"]["threshold"] == 0
    assert dedupe(out, force=True).summary["groups"] == r1.summary["groups"]


def test_dedupe_leaves_out_failed_frames(out: Path) -> None:
    _edit_metadata(out, "tennis_00001", status="failed", error="boom")
    data = _json(dedupe(out).path)
    assert data["dropped"]["tennis_00001"] == "failed: boom"
    assert all("tennis_00001" not in g["members"] for g in data["groups"])
    assert data["summary"]["excluded"] == 1


def test_an_unreadable_plate_is_left_out_not_fatal(out: Path) -> None:
    (out / "backgrounds" / "bmx_00002.jpg").write_bytes(b"not a jpeg")
    assert _json(dedupe(out).path)["dropped"]["bmx_00002"].startswith("unreadable plate")
    r = organize(out, clusters=3, use_dedupe=False)
    assert "bmx_00002" in r.summary["unreadable"] and "bmx_00002" not in _json(r.path)["frames"]
    assert len(_json(r.path)["frames"]) == 9


def test_dedupe_needs_an_output_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="inpainting_metadata.json"):
        dedupe(tmp_path)
    with pytest.raises(ConfigError):
        dedupe(tmp_path, threshold=65)


def test_embeddings_asked_for_but_absent_is_a_weights_error(out: Path) -> None:
    with pytest.raises(WeightsError, match="clip-vit-b-32"):
        dedupe(out, embeddings=True)
    assert "not available" in dedupe(out).summary["embeddings"]  # auto: falls back, says why


# ------------------------------------------------------------------------------------ organize

def test_organize_puts_the_three_clips_in_three_clusters(out: Path) -> None:
    r = organize(out, clusters=3, use_dedupe=False)
    data = _json(r.path)
    assert r.summary["clusters"] == 3 and r.summary["features"] == "colour/texture histograms"
    clusters = {c["label"]: c["frames"] for c in data["clusters"]}
    assert sorted(clusters) == ["cluster_0", "cluster_1", "cluster_2"]
    assert sorted(_clip(fs[0]) for fs in clusters.values()) == sorted(CLIPS)
    for label, fids in clusters.items():
        assert len({_clip(f) for f in fids}) == 1, (label, fids)
        folder = out / "dataset" / "clusters" / label
        links = sorted(folder.iterdir())
        assert [p.stem for p in links] == sorted(fids)
        assert all(p.is_symlink() and p.resolve() == (out / "backgrounds" / p.name).resolve() for p in links)
        sheet = np.asarray(Image.open(out / "dataset" / "clusters" / f"{label}.jpg"))
        assert sheet.ndim == 3 and sheet.shape[1] >= 256
    assert organize(out, clusters=3, use_dedupe=False).skipped
    # without --clusters the silhouette score finds the three clips too
    auto = organize(out, use_dedupe=False)
    assert not auto.skipped and auto.summary["clusters"] == 3
    assert not (out / "dataset" / "clusters" / "cluster_3").exists()


def test_organize_uses_dedupe_and_copies(out: Path) -> None:
    kept = _json(dedupe(out).path)["kept"]
    r = organize(out, clusters=2, copy=True)
    data = _json(r.path)
    assert sorted(data["frames"]) == sorted(kept)
    files = [p for c in data["clusters"] for p in (out / c["folder"]).iterdir()]
    assert len(files) == len(kept) and not any(p.is_symlink() for p in files)


def _tiny_clip(folder: Path) -> Path:
    """A random-weight CLIP (transformers) with a byte-level tokenizer, saved as a model folder."""
    torch = pytest.importorskip("torch")
    tr = pytest.importorskip("transformers")
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:] + [256 + n for n in range(256 - len(bs))]
    chars = sorted(chr(c) for c in cs)
    vocab = {c: i for i, c in enumerate(chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"])}
    folder.mkdir()
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tr.CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt")).save_pretrained(folder)
    tr.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    eos = vocab["<|endoftext|>"]
    cfg = tr.CLIPConfig(
        text_config={"vocab_size": len(vocab), "hidden_size": 32, "intermediate_size": 37, "num_attention_heads": 4,
                     "num_hidden_layers": 2, "max_position_embeddings": 77, "bos_token_id": vocab["<|startoftext|>"],
                     "eos_token_id": eos, "pad_token_id": eos},
        vision_config={"image_size": 32, "patch_size": 8, "hidden_size": 32, "intermediate_size": 37,
                       "num_attention_heads": 4, "num_hidden_layers": 2},
        projection_dim=16)
    torch.manual_seed(0)
    tr.CLIPModel(cfg).save_pretrained(folder)
    return folder


def _clip_scene(ckpt: Path, rgb: np.ndarray, labels: list[str]) -> tuple[str, float]:
    """CLIP zero-shot by hand: softmax over 100 x the cosine of the image and each label's prompt."""
    import torch
    import transformers as tr

    from cleanplate.dataset.organize import PROMPT

    model, proc = tr.CLIPModel.from_pretrained(ckpt).eval(), tr.CLIPProcessor.from_pretrained(ckpt)

    def unit(feats) -> torch.Tensor:
        feats = feats if isinstance(feats, torch.Tensor) else feats.pooler_output
        return (feats / feats.norm(dim=-1, keepdim=True)).double()

    with torch.inference_mode():
        img = unit(model.get_image_features(pixel_values=proc(images=[rgb], return_tensors="pt")["pixel_values"]))
        txt = proc(text=[PROMPT.format(label=lb) for lb in labels], return_tensors="pt", padding=True)
        txt = unit(model.get_text_features(input_ids=txt["input_ids"], attention_mask=txt["attention_mask"]))
    probs = torch.softmax(100.0 * img @ txt.T, dim=1)[0]
    j = int(probs.argmax())
    return labels[j], float(probs[j])


def test_clip_path_with_a_tiny_random_model(out: Path, tmp_path: Path) -> None:
    ckpt = _tiny_clip(tmp_path / "tinyclip")
    labels_file = tmp_path / "labels.yaml"
    labels_file.write_text("labels: [beach, town square, forest, crowd, night]\n")
    labels, dropped = load_labels(labels_file)
    assert labels == ["beach", "town square", "forest", "night"] and dropped == ["crowd"]

    r = organize(out, clusters=3, labels_file=labels_file, checkpoint=ckpt, device="cpu", use_dedupe=False)
    data = _json(r.path)
    assert r.summary["features"] == "CLIP embeddings" and r.summary["dropped_labels"] == ["crowd"]
    slugs = {lb.replace(" ", "_") for lb in labels}
    assert sorted(data["frames"]) == sorted(p.stem for p in (out / "backgrounds").glob("*.jpg"))
    for fid, f in data["frames"].items():  # the zero-shot label, computed here from the model itself
        scene, score = _clip_scene(ckpt, read_image_rgb(out / "backgrounds" / f"{fid}.jpg"), labels)
        assert (f["scene"], f["scene_score"]) == (scene, pytest.approx(score, abs=2e-4)), fid
    for c in data["clusters"]:
        assert c["label"].rsplit("_", 1)[0] in slugs or c["label"] in slugs
        assert (out / c["folder"]).is_dir() and (out / c["contact_sheet"]).is_file()
    assert (out / "dataset" / "cache" / "clip.npz").is_file()

    d = dedupe(out, embeddings=True, checkpoint=ckpt, device="cpu")
    assert d.summary["embeddings"].startswith("CLIP") and _json(d.path)["settings"]["embeddings"].startswith("clip:")
    ds = export_lora(out, tmp_path / "ds", use_dedupe=False)  # captions take the zero-shot scene
    for txt in (tmp_path / "ds" / "img" / "10_background").glob("*.txt"):
        assert any(lb in txt.read_text() for lb in labels)
    assert ds.summary["organize_used"]


# ------------------------------------------------------------------------------------ export

def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix in (".jpg", ".png"))


def test_export_is_a_valid_kohya_dataset(out: Path, tmp_path: Path) -> None:
    kept = _json(dedupe(out).path)["kept"]
    organize(out, clusters=3)
    ds = tmp_path / "ds"
    r = export_lora(out, ds, trigger="mybg", repeats=3, resolution=512, min_bucket_reso=256,
                    max_bucket_reso=1024, bucket_steps=64, caption="{trigger}, {scene}, 1girl, scenery, a man walking")
    cfg = tomllib.loads((ds / "dataset_config.toml").read_text())
    assert cfg["general"]["caption_extension"] == ".txt"
    (dset,) = cfg["datasets"]
    assert dset["resolution"] == 512 and dset["enable_bucket"] is True
    assert (dset["min_bucket_reso"], dset["max_bucket_reso"], dset["bucket_reso_steps"]) == (256, 1024, 64)
    (sub,) = dset["subsets"]
    img_dir = Path(sub["image_dir"])
    assert img_dir.is_dir() and img_dir == ds.resolve() / "img" / "3_background"
    assert sub["num_repeats"] == 3 and sub["caption_extension"] == ".txt"
    images = _images(img_dir)
    assert sorted(p.stem for p in images) == sorted(kept) and r.summary["exported"] == len(kept)
    for p in images:
        assert p.read_bytes() == (out / "backgrounds" / p.name).read_bytes()  # the plate, untouched
        caption = p.with_suffix(".txt").read_text().strip()
        assert caption.startswith("mybg, ") and "scenery" in caption
        assert not character_words_in(caption), caption
    assert any("1girl" in w and "a man walking" in w for w in r.warnings)
    meta = [json.loads(line) for line in (img_dir / "metadata.jsonl").read_text().splitlines()]
    assert sorted(m["file_name"] for m in meta) == sorted(p.name for p in images)
    cmd = (ds / "train_command.sh").read_text()
    assert "train_network.py" in cmd and "--dataset_config=" in cmd and "--masked_loss" not in cmd
    readme = (ds / "README.md").read_text()
    assert "train_text_to_image_lora.py" in readme and "--caption_column=text" in readme
    assert _json(out / "dataset" / "export.json")["summary"]["near_duplicates"] == 10 - len(kept)


def test_export_leaves_out_flagged_frames_unless_asked(out: Path, tmp_path: Path) -> None:
    _edit_metadata(out, "bmx_00001", checks={"residue": 0.1, "flat": 0.9, "seam": 0.5, "flags": ["flat"]})
    _edit_metadata(out, "tennis_00002", status="failed", error="boom")
    r = export_lora(out, tmp_path / "a", use_dedupe=False)
    names = [p.stem for p in _images(tmp_path / "a" / "img" / "10_background")]
    assert "bmx_00001" not in names and "tennis_00002" not in names and len(names) == 8
    assert r.summary["flagged"] == 1 and r.summary["failed"] == 1
    assert _json(r.path)["excluded"]["bmx_00001"] == "flagged by the checks: flat"
    r2 = export_lora(out, tmp_path / "b", use_dedupe=False, include_flagged=True)
    names = [p.stem for p in _images(tmp_path / "b" / "img" / "10_background")]
    assert "bmx_00001" in names and "tennis_00002" not in names and r2.summary["exported"] == 9


@pytest.mark.parametrize("form", ["conditioning", "alpha"])
def test_masked_loss_export_lines_up_with_the_frames(out: Path, tmp_path: Path, form: str) -> None:
    ds = tmp_path / "ds"
    r = export_lora(out, ds, use_dedupe=False, masked_loss=True, mask_form=form)
    meta = _json(out / "inpainting_metadata.json")["frames"]
    sub = tomllib.loads((ds / "dataset_config.toml").read_text())["datasets"][0]["subsets"][0]
    images = _images(Path(sub["image_dir"]))
    assert len(images) == 10 == r.summary["exported"]
    for img in images:
        assert img.suffix == ".png"
        original = load_image(Path(meta[img.stem]["source"]))  # the frame with its character, not the plate
        keep = ~read_mask(out / "masks" / f"{img.stem}.png")  # True where nothing was removed
        assert keep.any() and not keep.all()
        arr = np.asarray(Image.open(img))
        if form == "conditioning":
            mask = np.asarray(Image.open(Path(sub["conditioning_data_dir"]) / img.name))
            assert mask.shape == original.shape[:2] and np.array_equal(arr, original)
        else:
            assert sub["alpha_mask"] is True and "conditioning_data_dir" not in sub
            assert arr.shape == (*original.shape[:2], 4) and np.array_equal(arr[..., :3], original)
            mask = arr[..., 3]
        assert set(np.unique(mask)) <= {0, 255}
        assert np.array_equal(mask == 255, keep)  # white exactly where the removal mask is 0
    if form == "conditioning":
        masks = sorted(p.name for p in Path(sub["conditioning_data_dir"]).iterdir())
        assert masks == [p.name for p in images]  # same names, nothing extra
        assert "--masked_loss" in (ds / "train_command.sh").read_text()


def test_export_rerun_is_skipped_and_a_change_redoes(out: Path, tmp_path: Path) -> None:
    ds = tmp_path / "ds"
    r1 = export_lora(out, ds, use_dedupe=False)
    mtime = r1.path.stat().st_mtime_ns
    assert export_lora(out, ds, use_dedupe=False).skipped and r1.path.stat().st_mtime_ns == mtime
    r3 = export_lora(out, ds, use_dedupe=False, repeats=5)
    assert not r3.skipped
    assert (ds / "img" / "5_background").is_dir() and not (ds / "img" / "10_background").exists()
    dedupe(out)  # dedupe.json appears: the export follows it
    r4 = export_lora(out, ds, repeats=5)
    assert not r4.skipped and r4.summary["exported"] < 10
    assert len(_images(ds / "img" / "5_background")) == r4.summary["exported"]


def test_export_refuses_a_foreign_folder_and_bad_settings(out: Path, tmp_path: Path) -> None:
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(OutputError, match="not empty"):
        export_lora(out, foreign)
    with pytest.raises(ConfigError, match="character"):
        export_lora(out, tmp_path / "x", trigger="girl")
    with pytest.raises(ConfigError, match="divisible"):
        export_lora(out, tmp_path / "x", min_bucket_reso=200)
    with pytest.raises(ConfigError, match="placeholder"):
        export_lora(out, tmp_path / "x", caption="{trigger}, {place}")
    assert not (tmp_path / "x").exists()


def test_captions_and_toml_strings() -> None:
    text, removed = make_caption("{trigger}, {scene}, two people talking, Girl, {concept}", "bg", "harbour", "plates")
    assert text == "bg, harbour, plates" and removed == ["two people talking", "Girl"]
    assert {"girl", "boy", "man", "woman", "person", "character", "people"} <= CHARACTER_WORDS
    weird = 'C:\\films\\"quoted"\tname\x01é'
    assert tomllib.loads(f"p = {toml_str(weird)}")["p"] == weird


# ------------------------------------------------------------------------------------ CLI

def test_cli_dataset_commands(out: Path, tmp_path: Path) -> None:
    from cleanplate._cli.main import app

    def invoke(*args: object):
        return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})

    r = invoke("dedupe", out, "--threshold", "10")
    assert r.exit_code == 0, r.output
    assert "dedupe: kept" in r.stdout
    r = invoke("dedupe", out, "--threshold", "10")
    assert r.exit_code == 0 and "unchanged" in r.stdout
    r = invoke("organize", out, "--clusters", "2", "--no-embeddings")
    assert r.exit_code == 0 and "2 clusters" in r.stdout, r.output
    r = invoke("--log-json", "export-lora", out, "-o", tmp_path / "ds", "--repeats", "2", "--masked-loss")
    assert r.exit_code == 0, r.output
    last = json.loads(r.stdout.strip().splitlines()[-1])
    assert last["step"] == "export" and last["summary"]["masked_loss"] == "conditioning"
    assert (tmp_path / "ds" / "mask" / "2_background").is_dir()
    assert invoke("export-lora", out, "-o", tmp_path / "y", "--trigger", "boy").exit_code == 2
    assert invoke("dedupe", tmp_path / "nowhere").exit_code == 3


# ---------------------------------------------------------------- ranking, completeness (issue 12)

def test_dedupe_never_keeps_the_plate_whose_mask_missed_part_of_the_character(out: Path, tmp_path: Path) -> None:
    """Sintel frame 24's case: the least invented plate is the one whose mask missed the apple and hand."""
    first = _json(dedupe(out).path)
    group = next(g for g in first["groups"] if g["kept"].startswith("sintel"))
    assert len(group["members"]) == 4
    victim = next(m for m in group["members"] if m != group["kept"])
    cov = {m: _json(out / "inpainting_metadata.json")["frames"][m]["coverage"] for m in group["members"]}
    _edit_metadata(out, victim, coverage=0.4 * min(cov.values()))  # least invented by far, mask 40 % of the others'
    data = _json(dedupe(out).path)
    group = next(g for g in data["groups"] if victim in g["members"])
    assert group["kept"] != victim
    assert data["frames"][victim]["completeness"] < COMPLETE and "coverage" in data["frames"][victim]["incomplete"]
    assert "mask is more complete" in data["dropped"][victim]
    # export leaves it out as flagged (even without dedupe's kept list), unless --include-flagged
    r = export_lora(out, tmp_path / "a", use_dedupe=False)
    assert r.summary["flagged"] == 1
    assert _json(r.path)["excluded"][victim].startswith("flagged by the checks: mask looks incomplete")
    r2 = export_lora(out, tmp_path / "b", use_dedupe=False, include_flagged=True)
    assert victim in [p.stem for p in _images(tmp_path / "b" / "img" / "10_background")] and r2.summary["flagged"] == 0


def test_a_plate_above_the_training_sets_residue_bar_stays_out(out: Path, tmp_path: Path) -> None:
    """The checks flag at 0.3 (20 % of a character still showing); the training set's bar is lower
    (0.08): a plate that passed the checks but may show a tenth of a character is not the one dedupe
    keeps, and export leaves it out unless the bar is raised."""
    first = _json(dedupe(out).path)
    kept = next(g["kept"] for g in first["groups"] if g["kept"].startswith("sintel"))
    checks = {"residue": 0.15, "flat": 0.1, "seam": 0.2, "flags": [], "detail": {"shot_neighbours": 3}}
    _edit_metadata(out, kept, checks=checks)
    data = _json(dedupe(out).path)
    group = next(g for g in data["groups"] if kept in g["members"])
    assert group["kept"] != kept
    assert "under the training set's residue bar (residue 0.150 here)" in data["dropped"][kept]
    r = export_lora(out, tmp_path / "a", use_dedupe=False)
    assert _json(r.path)["excluded"][kept] == ("flagged by the checks: residue 0.150 above the training set's bar "
                                               "0.08 (may show part of a character)")
    r = export_lora(out, tmp_path / "b", use_dedupe=False, max_residue=0.2)
    assert kept in [p.stem for p in _images(tmp_path / "b" / "img" / "10_background")]
    # a frame checked alone has the frame-only score, on another scale: only its flag counts
    _edit_metadata(out, kept, checks={**checks, "detail": {}})
    r = export_lora(out, tmp_path / "c", use_dedupe=False)
    assert kept in [p.stem for p in _images(tmp_path / "c" / "img" / "10_background")]
    with pytest.raises(ConfigError, match="--max-residue"):
        export_lora(out, tmp_path / "d", max_residue=2.0)


def test_completeness_from_tracks_and_shot_ids(tmp_path: Path) -> None:
    from cleanplate.dataset.plates import Plate
    from cleanplate.dataset.ranking import completeness

    frames = {}
    plates = []
    for k in range(7):
        fid = f"f{k}"
        tracks = [1, 2] if k != 3 else [1]  # track 2 seen before and after frame 3, missing there
        frames[fid] = {"instances": [{"character": True, "track_id": t} for t in tracks], "shot_id": 0}
        plates.append(Plate(fid, k, "ok", tmp_path / f"{fid}.jpg", None, None, coverage=0.1))
    plates.append(Plate("g0", 7, "ok", tmp_path / "g0.jpg", None, None, coverage=0.001, shot_id=5))  # alone in its shot
    (tmp_path / "instances_metadata.json").write_text(json.dumps({"frames": frames}))
    comp = completeness(tmp_path, plates)
    assert comp["f3"][0] == 0.5 and "track(s) 2" in comp["f3"][1]
    assert all(comp[f"f{k}"][0] == 1.0 for k in range(7) if k != 3)
    assert comp["g0"] == (1.0, "no shot neighbours to compare with")  # another shot: not compared


def test_export_leaves_out_a_plate_whose_checks_failed(out: Path, tmp_path: Path) -> None:
    _edit_metadata(out, "bmx_00001", checks={"error": "saliency model failed", "flags": []})
    r = export_lora(out, tmp_path / "a", use_dedupe=False)
    assert "failed" in _json(r.path)["excluded"]["bmx_00001"] and r.summary["flagged"] == 1


def _brute_groups(codes: np.ndarray, threshold: float) -> list[list[int]]:
    from cleanplate.dataset.features import hash_distances

    seeds: list[int] = []
    groups: list[list[int]] = []
    for i in range(len(codes)):
        if seeds:
            d = hash_distances(codes[i], codes[np.asarray(seeds)])
            if (d <= threshold).any():
                groups[int(np.argmin(np.where(d <= threshold, d, np.inf)))].append(i)
                continue
        seeds.append(i)
        groups.append([i])
    return groups


def _clustered_codes(rng: np.random.Generator, n_scenes: int, per: int, flips: int) -> np.ndarray:
    base = rng.integers(0, 2**63, size=(n_scenes, 2), dtype=np.int64).astype(np.uint64)
    rows = []
    for _ in range(n_scenes * per):
        code = base[rng.integers(n_scenes)].copy()  # scenes come back out of order (a film's repeated shots)
        for _flip in range(flips):
            col, bit = rng.integers(2), rng.integers(64)
            code[col] ^= np.uint64(1) << np.uint64(bit)
        rows.append(code)
    return np.array(rows, dtype=np.uint64)


def test_hash_index_groups_like_the_all_pairs_search() -> None:
    from cleanplate.dataset.dedupe import _group

    rng = np.random.default_rng(0)
    codes = _clustered_codes(rng, n_scenes=400, per=5, flips=3)  # within 6 bits of a scene: the index is exact
    got, _ = _group(codes, None, 10.0, 0.95)
    assert got == _brute_groups(codes, 10.0)
    assert 300 < len(got) <= 400


def test_dedupe_keeps_10000_distinct_plates_apart() -> None:
    """Grouping through the index (no all-pairs) still separates every distinct plate; its cost per
    plate is measured by benchmarks/bench_scale.py, not timed here (the test below bounds the
    candidates each query looks at)."""
    from cleanplate.dataset.dedupe import _group

    rng = np.random.default_rng(1)
    for n in (1_000, 10_000):
        codes = rng.integers(0, 2**63, size=(n, 2), dtype=np.int64).astype(np.uint64)  # all distinct: n groups
        groups, _ = _group(codes, None, 10.0, 0.95)
        assert len(groups) == n


def test_hash_index_candidates_are_the_chunk_neighbours_and_stay_few_at_20000_seeds() -> None:
    from cleanplate.dataset.ranking import RECENT, HashIndex

    rng = np.random.default_rng(2)
    codes = rng.integers(0, 2**63, size=(20_000, 2), dtype=np.int64).astype(np.uint64)
    index = HashIndex()
    for a, b in codes:
        index.add((int(a), int(b)))
    chunks = np.stack([(codes[:, c] >> np.uint64(16 * i)) & np.uint64(0xFFFF) for c in (0, 1) for i in range(4)], 1)
    total = 0
    for q in rng.integers(0, 20_000, size=200):
        query = codes[q].copy()
        query[0] ^= np.uint64(1) << np.uint64(rng.integers(64))  # one bit off a seed
        cand = index.candidates((int(query[0]), int(query[1])))
        total += len(cand)
        qc = np.array([(int(query[c]) >> (16 * i)) & 0xFFFF for c in (0, 1) for i in range(4)], np.uint64)
        near = (np.bitwise_count(chunks ^ qc[None, :]) <= 1).any(axis=1)  # some chunk within one bit
        expected = set(np.flatnonzero(near).tolist()) | set(range(20_000 - RECENT, 20_000))
        assert set(cand.tolist()) == expected
        assert q in expected
    assert total / 200 < RECENT + 200, total / 200  # all pairs would be 20 000 per query


# ------------------------------------------------------------- one verdict: report == export (issue 25)

def _report_left_out(page: Path) -> dict[str, tuple[str, str]]:
    """``{frame: (shot cell, reason)}`` of the report's "Left out of the training set" list."""
    import html

    text = page.read_text()
    table = re.search(r'<table id="left-out-list">(.*?)</table>', text, re.S)
    rows = re.findall(r'<tr data-frame="([^"]+)"><td><code>[^<]*</code></td><td>([^<]*)</td>'
                      r'<td class="reason">([^<]*)</td></tr>', table.group(1) if table else "")
    return {html.unescape(f): (html.unescape(s), html.unescape(r)) for f, s, r in rows}


def _report_rows(out: Path) -> dict[str, list]:
    """The report table's data rows (report_files/data/page_*.js) by frame id."""
    rows = {}
    for page in sorted((out / "report_files" / "data").glob("page_*.js")):
        body = page.read_text()
        rows.update({r[0]: r for r in json.loads(body[body.index(",") + 1:body.rindex(")")])})
    return rows


def test_the_report_lists_every_plate_the_export_leaves_out_with_the_same_reason(out: Path, tmp_path: Path) -> None:
    """The real DAVIS tennis + bmx-trees (and Sintel) run: one plate flagged by a check, one failed, one above
    the residue bar, one whose mask lost most of the rider. The report, written before the export, lists
    exactly the plates ``export-lora`` then leaves out, each with the reason export.json gives, and its shot."""
    from cleanplate.report import write_report

    seg = _json(out / "instances_metadata.json")["frames"]
    shots = {fid: rec["shot_id"] for fid, rec in seg.items()}
    assert all(isinstance(s, str) and s for s in shots.values()), shots  # the shots stage names every frame's shot
    cov = _json(out / "inpainting_metadata.json")["frames"]["bmx_00002"]["coverage"]
    _edit_metadata(out, "bmx_00001", checks={"residue": 0.1, "flat": 0.9, "seam": 0.5, "flags": ["flat"]})
    _edit_metadata(out, "tennis_00002", status="failed", error="boom")
    _edit_metadata(out, "tennis_00001", checks={"residue": 0.15, "flat": 0.0, "seam": 0.5, "flags": [],
                                                "detail": {"shot_neighbours": 2}})
    _edit_metadata(out, "bmx_00002", coverage=cov / 4)  # a mask that missed three quarters of the rider
    dedupe(out)
    for settings in ({}, {"use_dedupe": False}):
        listed = _report_left_out(write_report(out))  # 1st: written before the export, with its defaults
        r = export_lora(out, tmp_path / f"set{len(settings)}", **settings)
        excluded = _json(r.path)["excluded"]
        if settings:  # 2nd: written after an export with other settings, the report follows them
            listed = _report_left_out(write_report(out))
        assert len(excluded) >= 4 and {f: why for f, (_s, why) in listed.items()} == excluded
        assert all(shot == shots[f] for f, (shot, _why) in listed.items())  # the shot id, not "—"
        assert f"Left out of the training set ({len(excluded)} of 10 plates)" in (out / "report.html").read_text()
    assert excluded == {
        "bmx_00001": "flagged by the checks: flat",
        "tennis_00002": "failed: boom",
        "tennis_00001": "flagged by the checks: residue 0.150 above the training set's bar 0.08 "
                        "(may show part of a character)",
        "bmx_00002": excluded["bmx_00002"],
    }, excluded
    assert excluded["bmx_00002"].startswith("flagged by the checks: mask looks incomplete (coverage")
    rows = _report_rows(out)  # the table: every frame's shot id and the same verdict
    assert {f: r[2] for f, r in rows.items()} == shots
    assert {f: r[13] for f, r in rows.items() if r[13]} == excluded
