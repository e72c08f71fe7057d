"""Shared fixtures: the real footage and model in ../shared, small frame folders, log hygiene."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CLEANPLATE_SHARED", REPO.parent / "shared"))
SINTEL = SHARED / "data" / "sintel_market"
CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium")
                 if p and Path(p).is_file()), None)
CHROMIUM_INSTALL = "apt-get install chromium (Debian/Ubuntu), or put a chromium binary on PATH"


def need_chromium() -> str:
    """The Chromium binary for the browser tests: skipped without one, but failed in CI (``$CI`` set)."""
    if CHROMIUM is None:
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail(f"chromium is required in CI ($CI is set): {CHROMIUM_INSTALL}")
        pytest.skip(f"chromium not installed: {CHROMIUM_INSTALL}")
    return CHROMIUM


def pytest_configure(config: pytest.Config) -> None:
    if not SINTEL.is_dir():
        raise pytest.UsageError(f"real footage not found at {SINTEL} (set CLEANPLATE_SHARED)")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets an empty weights cache and is offline: no test may reach a model hub."""
    monkeypatch.setenv("CLEANPLATE_HOME", str(tmp_path_factory.mktemp("cphome")))
    monkeypatch.setenv("CLEANPLATE_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("CLEANPLATE_WEIGHTS", raising=False)


@pytest.fixture(autouse=True)
def _fail_on_error_logs(caplog: pytest.LogCaptureFixture):
    """A test whose code logs an ERROR fails (per-frame failures are WARNINGs)."""
    caplog.set_level(logging.WARNING, logger="cleanplate")
    yield
    errors = [r for r in caplog.get_records("call") if r.levelno >= logging.ERROR and r.name.startswith("cleanplate")]
    if errors:
        pytest.fail("ERROR logged: " + "; ".join(r.getMessage() for r in errors))


@pytest.fixture(scope="session")
def sintel_frames() -> list[Path]:
    return sorted(SINTEL.glob("*.png"))


@pytest.fixture
def sintel_dir(tmp_path: Path, sintel_frames: list[Path]):
    """A factory: a folder with the first ``n`` real Sintel frames (full size, 1024x436)."""

    def make(n: int = 3, name: str = "frames") -> Path:
        d = tmp_path / name
        d.mkdir(exist_ok=True)
        for p in sintel_frames[:n]:
            shutil.copy(p, d / p.name)
        return d

    return make


@pytest.fixture
def small_sintel_dir(tmp_path: Path, sintel_frames: list[Path]):
    """A factory: real Sintel frames scaled to 384x164, for fast pipeline tests."""

    def make(n: int = 3, name: str = "small") -> Path:
        d = tmp_path / name
        d.mkdir(exist_ok=True)
        for p in sintel_frames[:n]:
            Image.open(p).convert("RGB").resize((384, 164), Image.LANCZOS).save(d / p.name)
        return d

    return make


def tiny_sam2_vision(side: int, fpn_hidden: int):
    """transformers' ``Sam2VisionConfig`` of a tiny Hiera image encoder (random-weight test models of
    the real SAM2 architecture) for ``side`` x ``side`` input, with ``fpn_hidden`` channels out."""
    from transformers.models.sam2.configuration_sam2 import Sam2HieraDetConfig, Sam2VisionConfig

    s = side
    backbone = Sam2HieraDetConfig(
        hidden_size=16, num_attention_heads=1, image_size=[s, s], blocks_per_stage=[1, 1, 2, 1],
        embed_dim_per_stage=[16, 32, 64, 128], num_attention_heads_per_stage=[1, 1, 2, 2],
        window_size_per_stage=[8, 4, 8, 4], global_attention_blocks=[3],
        window_positional_embedding_background_size=[4, 4])
    return Sam2VisionConfig(backbone_config=backbone, backbone_channel_list=[128, 64, 32, 16],
                            backbone_feature_sizes=[[s // 4] * 2, [s // 8] * 2, [s // 16] * 2],
                            fpn_hidden_size=fpn_hidden)


def decoded(path: Path) -> np.ndarray:
    """The frame as cleanplate decodes it (HxWx3 uint8 RGB)."""
    from cleanplate.io.frames import load_image

    return load_image(path)


@pytest.fixture
def registrations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the frame registrations made while the test runs (one entry per
    :meth:`~cleanplate.motion.registration.Registrar.register` call)."""
    from cleanplate.motion.registration import Registrar

    calls: list[int] = []
    real = Registrar.register

    def counted(self, target, source):
        calls.append(1)
        return real(self, target, source)

    monkeypatch.setattr(Registrar, "register", counted)
    return calls
