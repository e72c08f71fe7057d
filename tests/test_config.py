from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cleanplate.config import available_profiles, load_config
from cleanplate.errors import ConfigError


def test_profiles_shipped():
    assert {"default", "luca"} <= set(available_profiles())


def test_luca_profile_has_the_tuned_values():
    cfg = load_config(profile="luca")
    s = cfg.segment.sam2
    assert (s.points_per_side, s.pred_iou_thresh, s.stability_score_thresh) == (32, 0.70, 0.80)
    assert (s.crop_n_layers, s.crop_n_points_downscale_factor, s.points_per_batch) == (0, 2, 192)
    assert s.min_mask_region_area == 4096
    assert cfg.masks.dilate == 20
    assert cfg.fill.method == "temporal+lama" and cfg.fill.batch_size == 8
    assert cfg.segment.select == "salient"


def test_precedence_cli_over_file_over_profile(tmp_path: Path):
    f = tmp_path / "c.yaml"
    f.write_text("profile: luca\nmasks:\n  dilate: 12\nfill:\n  batch_size: 2\n")
    cfg = load_config(config_file=f, overrides={"fill.batch_size": 4, "fill.method": None})
    assert cfg.profile == "luca"
    assert cfg.masks.dilate == 12  # file beats profile
    assert cfg.fill.batch_size == 4  # CLI beats file
    assert cfg.fill.method == "temporal+lama"  # None override falls through to the profile
    assert load_config(profile="default", config_file=f).profile == "default"  # explicit profile wins


def test_unknown_key_is_named(tmp_path: Path):
    f = tmp_path / "c.yaml"
    f.write_text("segment:\n  sam2:\n    points_per_sid: 16\n")
    with pytest.raises(ConfigError, match=r"unknown key 'segment\.sam2\.points_per_sid'"):
        load_config(config_file=f)


def test_invalid_yaml_names_the_line(tmp_path: Path):
    f = tmp_path / "c.yaml"
    f.write_text("masks:\n  dilate: 3\n fill: [\n")
    with pytest.raises(ConfigError, match=r"invalid YAML .*line 3"):
        load_config(config_file=f)


def test_bad_value_and_unknown_profile():
    with pytest.raises(ConfigError, match=r"'masks\.dilate'"):
        load_config(overrides={"masks.dilate": -1})
    with pytest.raises(ConfigError, match="unknown profile 'nope'.*default"):
        load_config(profile="nope")


def test_yaml_roundtrip_and_stage_hash():
    cfg = load_config(profile="luca")
    again = load_config(overrides={k: v for k, v in _flat(yaml.safe_load(cfg.to_yaml())).items() if k != "profile"},
                        profile="luca")
    assert again == cfg
    # the fill hash ignores the batch size and the segment settings; the segment hash ignores the fill method
    base = load_config()
    assert base.stage_hash("fill") == load_config(overrides={"fill.batch_size": 7}).stage_hash("fill")
    assert base.stage_hash("segment") == load_config(overrides={"fill.method": "opencv-ns"}).stage_hash("segment")
    assert base.stage_hash("fill") != load_config(overrides={"fill.method": "opencv-ns"}).stage_hash("fill")
    assert base.stage_hash("segment") != load_config(overrides={"masks.dilate": 5}).stage_hash("segment")


def _flat(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
