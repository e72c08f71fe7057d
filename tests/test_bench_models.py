"""benchmarks/bench_models.py runs on the CPU with tiny models of each architecture and prints
seconds per frame and frames/s for every model; the big-LaMa generator it times has the published size."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
MODELS = ("saliency", "sam2-amg", "sam2-boxes", "sam3", "lama")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(BENCH / "bench_models.py"), *args], capture_output=True, text=True,
                          timeout=600)


def test_bench_models_prints_figures_for_every_model():
    proc = _run("--device", "cpu", "--size", "256x256", "--tiny", "--batch", "2", "--repeat", "1",
                "--points-per-side", "4", "--threads", "2")
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in MODELS:
        m = re.search(rf"^{name}: ([0-9.]+) s/frame, ([0-9.]+) frames/s \(batch 2", proc.stdout, re.M)
        assert m, f"no figures for {name} in:\n{proc.stdout}"
        secs, fps = float(m.group(1)), float(m.group(2))
        # both figures are printed rounded (4 and 2 decimals): allow for that rounding, not more
        assert secs > 0 and fps > 0
        assert abs(fps * secs - 1) <= 0.00005 / secs + 0.005 / fps + 0.01, (secs, fps)
        assert re.search(rf"^\| {name} \| [0-9.]+ \| [0-9.]+ \|", proc.stdout, re.M)
    assert "(cpu, 256x256, batch 2" in proc.stdout


def test_bench_models_rejects_unknown_models_and_missing_cuda():
    proc = _run("--device", "cpu", "--models", "sam9")
    assert proc.returncode == 2 and "unknown model(s) sam9" in proc.stderr
    if not torch.cuda.is_available():
        proc = _run("--device", "cuda", "--models", "lama")
        assert proc.returncode == 2 and "no CUDA GPU" in proc.stderr


def test_big_lama_generator_has_the_published_size_and_shapes():
    sys.path.insert(0, str(BENCH))
    try:
        from lama_ffc import ffc_resnet
    finally:
        sys.path.remove(str(BENCH))
    big = ffc_resnet()
    assert 50e6 < sum(p.numel() for p in big.parameters()) < 52e6  # big-LaMa: 51 M
    assert len(big.blocks) == 18
    torch.manual_seed(0)
    tiny = ffc_resnet(tiny=True).eval()
    logits: list[torch.Tensor] = []
    tiny.head[1].register_forward_hook(lambda _m, _i, out: logits.append(out))
    x = torch.rand(2, 4, 40, 256)
    changed = x.clone()
    changed[:, :, :8, :8] = 1 - changed[:, :, :8, :8]  # the top-left corner only
    with torch.inference_mode():
        y = tiny(x)
        tiny(changed)  # its logits: logits[1]
    assert y.shape == (2, 3, 40, 256)
    assert torch.equal(y, torch.sigmoid(logits[0]))  # the head ends in the published sigmoid
    # the spectral branch sees the whole frame: the corner reaches the far right, 150+ px beyond the
    # local convolutions' reach (about 60 px), where a purely local network would give the same logits
    assert float((logits[1] - logits[0])[..., 160:].abs().max()) > 0
