"""Every segmentation / fill flag of `run`, `segment` and `inpaint` reaches the config it names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import cleanplate.pipeline as pipeline
from cleanplate._cli.main import app

SAM2_FLAGS = [
    ("--model-type", "sam2_hiera_small", "segment.sam2.model_type", "sam2_hiera_small"),
    ("--sam2-checkpoint", "/ck", "segment.sam2.checkpoint", "/ck"),
    ("--points-per-side", "16", "segment.sam2.points_per_side", 16),
    ("--points-per-batch", "32", "segment.sam2.points_per_batch", 32),
    ("--pred-iou-thresh", "0.7", "segment.sam2.pred_iou_thresh", 0.7),
    ("--stability-score-thresh", "0.8", "segment.sam2.stability_score_thresh", 0.8),
    ("--stability-score-offset", "0.5", "segment.sam2.stability_score_offset", 0.5),
    ("--mask-threshold", "0.1", "segment.sam2.mask_threshold", 0.1),
    ("--box-nms-thresh", "0.6", "segment.sam2.box_nms_thresh", 0.6),
    ("--crop-n-layers", "1", "segment.sam2.crop_n_layers", 1),
    ("--crop-nms-thresh", "0.5", "segment.sam2.crop_nms_thresh", 0.5),
    ("--crop-overlap-ratio", "0.25", "segment.sam2.crop_overlap_ratio", 0.25),
    ("--crop-n-points-downscale-factor", "2", "segment.sam2.crop_n_points_downscale_factor", 2),
    ("--min-mask-region-area", "4096", "segment.sam2.min_mask_region_area", 4096),
    ("--no-multimask-output", None, "segment.sam2.multimask_output", False),
    ("--cache-clear-interval", "10", "segment.sam2.cache_clear_interval", 10),
    ("--select", "salient", "segment.select", "salient"),
    ("--select-k", "2", "segment.select_k", 2),
    ("--salient-overlap", "0.4", "segment.salient_overlap", 0.4),
    ("--prompts", "salient-boxes", "segment.prompts", "salient-boxes"),
    ("--backend", "sam2", "segment.backend", "sam2"),
    ("--min-instance-size", "900", "segment.min_instance_size", 900),
    ("--mask-dilate", "12", "masks.dilate", 12),
]


def _get(cfg: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        cfg = getattr(cfg, part)
    return cfg


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def fake(*args: Any, **kwargs: Any) -> Any:
        seen["config"] = args[2]
        raise SystemExit(0)

    for name in ("run", "segment", "inpaint"):
        monkeypatch.setattr(pipeline, name, fake)
    return seen


@pytest.mark.parametrize("command", ["run", "segment"])
@pytest.mark.parametrize("flag,value,key,expected", SAM2_FLAGS)
def test_segmentation_flags(captured: dict[str, Any], tmp_path: Path, command: str, flag: str,
                            value: str | None, key: str, expected: Any):
    head = ["run", str(tmp_path), "-o", str(tmp_path / "o")] if command == "run" else \
        ["segment", "--input-dir", str(tmp_path), "--output-dir", str(tmp_path / "o")]
    result = CliRunner().invoke(app, [*head, flag, *([value] if value is not None else [])])
    assert result.exit_code == 0, result.output
    assert _get(captured["config"], key) == expected


@pytest.mark.parametrize("flag,value,key,expected", [
    ("--method", "opencv-ns", "fill.method", "opencv-ns"),
    ("--batch-size", "4", "fill.batch_size", 4),
    ("--mask-dilate", "7", "fill.mask_dilate", 7),
    ("--lama-format", "onnx", "fill.lama.format", "onnx"),
    ("--strategy", "resize", "fill.lama.strategy", "resize"),
    ("--checkpoint", "/x.pt", "fill.lama.checkpoint", "/x.pt"),
    ("--plate-format", "png", "output.plate_format", "png"),
    ("--device", "cpu", "run.device", "cpu"),
])
def test_inpaint_flags(captured: dict[str, Any], tmp_path: Path, flag: str, value: str, key: str, expected: Any):
    result = CliRunner().invoke(app, ["inpaint", "--sam2-dir", str(tmp_path), "--output-dir", str(tmp_path / "p"),
                                      flag, value])
    assert result.exit_code == 0, result.output
    assert _get(captured["config"], key) == expected


@pytest.mark.parametrize("command", ["run", "segment", "inpaint"])
def test_runner_flags(captured: dict[str, Any], tmp_path: Path, command: str):
    head = {"run": ["run", str(tmp_path), "-o", str(tmp_path / "o")],
            "segment": ["segment", "--input-dir", str(tmp_path), "--output-dir", str(tmp_path / "o")],
            "inpaint": ["inpaint", "--sam2-dir", str(tmp_path), "--output-dir", str(tmp_path / "p")]}[command]
    result = CliRunner().invoke(app, [*head, "--runner", "ray", "--ray-address", "ray://head:10001"])
    assert result.exit_code == 0, result.output
    assert captured["config"].run.runner == "ray" and captured["config"].run.ray_address == "ray://head:10001"
    bad = CliRunner().invoke(app, [*head, "--runner", "spark"])
    assert bad.exit_code == 2 and "run.runner" in bad.output
