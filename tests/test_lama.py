"""LaMa backend: both formats x every strategy, with small models built here (no download).

The models follow big-lama's contract (``model(image, mask)``, RGB in [0, 1], mask in {0, 1}) and
the ONNX export's (inputs ``image``/``mask``, output ``output`` in [0, 255], fixed 512x512):

* ``invert`` fills the hole with the inverted image (255 - x): exact, position-dependent, so it
  shows where each output pixel came from (padding, letterbox, alignment);
* ``mean`` fills the hole with the mean colour of the unmasked pixels (mid-grey when there are
  none): a plausible fill whose value is known after any scaling.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import textwrap
import warnings
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from cleanplate.config import Config, FillConfig, LamaConfig, MaskConfig, RunConfig
from cleanplate.errors import BackendUnavailableError, ConfigError, WeightsError
from cleanplate.masks import composite, feather_alpha

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

from cleanplate.fill import create_inpainter  # noqa: E402
from cleanplate.fill.lama import LamaInpainter  # noqa: E402

STRATEGIES = ["original", "crop", "resize"]
FORMATS = ["torchscript", "onnx"]


# --- models ------------------------------------------------------------------------------------

def _onnx_model(kind: str, path: Path, *, batch: int | str = "b", size: int | str = 512,
                input_names: tuple[str, str] = ("image", "mask")) -> Path:
    """ONNX LaMa stand-in: ``kind`` invert | mean, output scaled to [0, 255]."""
    img, msk = input_names
    dims = [batch, 3, size, size]
    nodes = [
        helper.make_node("Constant", [], ["one"], value=helper.make_tensor("c1", TensorProto.FLOAT, [], [1.0])),
        helper.make_node("Constant", [], ["s255"], value=helper.make_tensor("c2", TensorProto.FLOAT, [], [255.0])),
        helper.make_node("Sub", ["one", msk], ["keep"]),
        helper.make_node("Mul", [img, "keep"], ["kept"]),
    ]
    if kind == "invert":
        nodes += [
            helper.make_node("Sub", ["one", img], ["inv"]),
            helper.make_node("Mul", ["inv", msk], ["hole"]),
        ]
    else:
        nodes += [
            helper.make_node("Constant", [], ["axes"], value=helper.make_tensor("c3", TensorProto.INT64, [2], [2, 3])),
            helper.make_node("Constant", [], ["half"], value=helper.make_tensor("c4", TensorProto.FLOAT, [], [0.5])),
            helper.make_node("ReduceSum", ["kept", "axes"], ["num"], keepdims=1),
            helper.make_node("ReduceSum", ["keep", "axes"], ["den"], keepdims=1),
            helper.make_node("Max", ["den", "one"], ["den1"]),
            helper.make_node("Div", ["num", "den1"], ["avg"]),
            helper.make_node("Greater", ["den", "half"], ["any"]),
            helper.make_node("Where", ["any", "avg", "half"], ["colour"]),
            helper.make_node("Mul", ["colour", msk], ["hole"]),
        ]
    nodes += [
        helper.make_node("Add", ["kept", "hole"], ["filled"]),
        helper.make_node("Mul", ["filled", "s255"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes, f"lama-{kind}",
        [helper.make_tensor_value_info(img, TensorProto.FLOAT, dims),
         helper.make_tensor_value_info(msk, TensorProto.FLOAT, [batch, 1, size, size])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, dims)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _torchscript_model(kind: str, path: Path) -> Path:
    torch = pytest.importorskip("torch")

    class Invert(torch.nn.Module):
        def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            return image * (1 - mask) + (1 - image) * mask

    class Mean(torch.nn.Module):
        def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            keep = 1 - mask
            den = keep.sum(dim=(2, 3), keepdim=True)
            avg = (image * keep).sum(dim=(2, 3), keepdim=True) / den.clamp(min=1.0)
            colour = torch.where(den > 0.5, avg, torch.full_like(avg, 0.5))
            return image * keep + colour * mask

    with warnings.catch_warnings():  # torch 2.9+ calls TorchScript deprecated; big-lama.pt is TorchScript
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(Invert() if kind == "invert" else Mean()), str(path))
    return path


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    """(format, kind) -> model file; TorchScript ones only when torch is installed."""
    root = tmp_path_factory.mktemp("lama-models")
    out = {("onnx", k): _onnx_model(k, root / f"{k}.onnx") for k in ("invert", "mean")}
    try:
        import torch  # noqa: F401
    except ImportError:
        return out
    for k in ("invert", "mean"):
        out[("torchscript", k)] = _torchscript_model(k, root / f"{k}.pt")
    return out


def _model(models: dict[tuple[str, str], Path], fmt: str, kind: str) -> Path:
    if (fmt, kind) not in models:
        pytest.skip("torch is not installed")
    return models[(fmt, kind)]


def _config(checkpoint: Path, fmt: str = "auto", strategy: str = "crop", *, feather: int = 0,
            batch_size: int = 1, working_size: int = 512, crop_margin: int = 128) -> Config:
    lama = LamaConfig(format=fmt, checkpoint=str(checkpoint), strategy=strategy,
                      working_size=working_size, crop_margin=crop_margin)
    return Config(
        fill=FillConfig(method="lama", batch_size=batch_size, lama=lama),
        masks=MaskConfig(feather=feather),
        run=RunConfig(threads=2),
    )


def _inpainter(models, fmt: str, kind: str, strategy: str = "crop", **kw) -> LamaInpainter:
    return LamaInpainter(_config(_model(models, fmt, kind), fmt, strategy, **kw), "cpu")


# --- frames ------------------------------------------------------------------------------------

def _noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _ellipse(h: int, w: int, cy: float = 0.5, cx: float = 0.5, ry: float = 0.3, rx: float = 0.15) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    cv2.ellipse(m, (int(cx * w), int(cy * h)), (max(1, int(rx * w)), max(1, int(ry * h))), 0, 0, 360, 1, -1)
    return m.astype(bool)


def _character_frame(h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat scenery with a striped 'character'; the mask is exactly the character."""
    bg = np.array([40, 120, 200], np.uint8)
    image = np.empty((h, w, 3), np.uint8)
    image[:] = bg
    mask = _ellipse(h, w, 0.55, 0.4, 0.3, 0.12)
    stripes = np.where((np.arange(w) // 3) % 2 == 0, 250, 5).astype(np.uint8)
    image[mask] = np.stack([stripes] * 3, axis=-1)[None].repeat(h, 0)[mask]
    return image, mask, bg


SIZES = [(77, 101), (436, 1024)]


# --- behaviour ---------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("hw", SIZES, ids=lambda s: f"{s[1]}x{s[0]}")
def test_unmasked_pixels_kept_masked_pixels_filled(models, fmt, strategy, hw):
    h, w = hw
    image, mask = _noise(h, w), _ellipse(h, w)
    res = _inpainter(models, fmt, "invert", strategy).fill([image], [mask])[0]
    assert res.plate.shape == image.shape and res.plate.dtype == np.uint8
    np.testing.assert_array_equal(res.plate[~mask], image[~mask])
    # inverting noise moves a pixel by |255 - 2x|, 127 on average; scaling blurs it somewhat
    assert np.abs(res.plate[mask].astype(int) - image[mask]).mean() > 60
    assert res.extra["format"] == fmt and res.extra["strategy"] == strategy and res.extra["windows"] == 1


@pytest.mark.parametrize(
    ("fmt", "strategy", "hw"),
    [("torchscript", "original", (77, 101)), ("torchscript", "original", (436, 1024)),
     ("torchscript", "crop", (77, 101)), ("torchscript", "resize", (300, 200)),
     ("onnx", "original", (256, 512)), ("onnx", "resize", (512, 320)), ("onnx", "crop", (400, 512))],
)
def test_fill_is_the_model_output_where_nothing_is_scaled(models, fmt, strategy, hw):
    """No scaling happens here (the window already fits), so padding, letterboxing and the ONNX
    0..255 output must be undone exactly: each masked pixel is the model's value for that pixel."""
    h, w = hw
    image, mask = _noise(h, w, 1), _ellipse(h, w)
    res = _inpainter(models, fmt, "invert", strategy, crop_margin=1000).fill([image], [mask])[0]
    np.testing.assert_array_equal(res.plate[mask], 255 - image[mask])
    np.testing.assert_array_equal(res.plate[~mask], image[~mask])
    ih, iw = res.extra["model_inputs"][0]
    assert (ih, iw) == ((512, 512) if fmt == "onnx" else (-(-h // 8) * 8, -(-w // 8) * 8))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("hw", SIZES, ids=lambda s: f"{s[1]}x{s[0]}")
def test_fill_is_plausible_after_scaling(models, fmt, strategy, hw):
    """The mean-colour model must see only scenery as context (a scaled mask covers every pixel a
    character pixel was blended into) and its fill must come back at the right place and scale."""
    image, mask, bg = _character_frame(*hw)
    res = _inpainter(models, fmt, "mean", strategy, working_size=256).fill([image], [mask])[0]
    assert np.abs(res.plate.astype(int) - bg).max() <= 1
    np.testing.assert_array_equal(res.plate[~mask], image[~mask])
    (size,) = res.extra["model_inputs"]
    if fmt == "onnx":
        assert size == [512, 512]
    elif strategy == "original":
        assert size == [-(-hw[0] // 8) * 8, -(-hw[1] // 8) * 8]
    else:  # scaled down to working_size when larger, never up
        assert max(size) == (256 if hw == (436, 1024) else 104)
        if strategy == "resize":
            assert size == ([112, 256] if hw == (436, 1024) else [80, 104])


@pytest.mark.parametrize(("fmt", "hw"), [("torchscript", (77, 101)), ("onnx", (256, 512))])
def test_seam_is_feathered_once_inside_the_mask(models, fmt, hw):
    from cleanplate.records import FrameRecord
    from cleanplate.stages.fill import FillStage

    h, w = hw
    image, mask = _noise(h, w, 2), _ellipse(h, w)
    fill = 255 - image
    cfg = _config(_model(models, fmt, "invert"), fmt, "original", feather=4)
    lama = LamaInpainter(cfg, "cpu")
    raw = lama.fill([image], [mask])[0].plate
    hard = _inpainter(models, fmt, "invert", "original", feather=0).fill([image], [mask])[0].plate
    # the inpainter pastes with a hard edge whatever masks.feather says: the fill stage blends, once
    np.testing.assert_array_equal(raw, hard)
    np.testing.assert_array_equal(hard[mask], fill[mask])
    rec = FrameRecord("f", 0, "", image=image, mask=mask)
    FillStage(cfg, "cpu", inpainter=lama)([rec])
    feathered = rec.plate
    assert feathered is not None
    np.testing.assert_array_equal(feathered, composite(image, fill, mask, 4))
    twice = composite(image, composite(image, fill, mask, 4), mask, 4)
    assert not np.array_equal(feathered, twice)
    alpha = feather_alpha(mask, 4)
    band = mask & (alpha < 1)
    inner = alpha == 1
    assert band.sum() > 50 and inner.sum() > 50
    np.testing.assert_array_equal(feathered[inner], fill[inner])
    np.testing.assert_array_equal(feathered[~mask], image[~mask])
    lo, hi = np.minimum(image, fill).astype(int), np.maximum(image, fill).astype(int)
    far = band[..., None] & (hi - lo >= 16)  # where original and fill differ clearly
    f = feathered.astype(int)
    assert far.sum() > 50
    assert ((f > lo) & (f < hi))[far].mean() > 0.95


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_mixed_batch_equals_single_frames(models, fmt, strategy):
    frames = [_noise(77, 101, 3), _noise(436, 1024, 4), _noise(48, 64, 5), _noise(56, 40, 6)]
    masks = [_ellipse(77, 101), _ellipse(436, 1024, 0.4, 0.7), np.zeros((48, 64), bool), np.ones((56, 40), bool)]
    batched = _inpainter(models, fmt, "mean", strategy, batch_size=3).fill(frames, masks)
    single = _inpainter(models, fmt, "mean", strategy, batch_size=1)
    assert len(batched) == 4
    for frame, mask, res in zip(frames, masks, batched, strict=True):
        assert res.plate.shape == frame.shape
        np.testing.assert_array_equal(res.plate, single.fill([frame], [mask])[0].plate)
        np.testing.assert_array_equal(res.plate[~mask], frame[~mask])
    np.testing.assert_array_equal(batched[2].plate, frames[2])
    assert batched[2].extra["windows"] == 0
    assert (batched[3].plate == 128).all()  # full mask: no context, the model's mid-grey everywhere


class _Spy:
    """Wraps a loaded model and records the batch shape of each call."""

    def __init__(self, model):
        self.model, self.calls = model, []

    def __getattr__(self, name):
        return getattr(self.model, name)

    def __call__(self, image, mask):
        self.calls.append(image.shape)
        return self.model(image, mask)


@pytest.mark.parametrize("fmt", FORMATS)
def test_empty_masks_do_not_run_the_model(models, fmt):
    inp = _inpainter(models, fmt, "invert")
    inp._model = spy = _Spy(inp._model)
    frames = [_noise(30, 40, 7), _noise(50, 20, 8)]
    out = inp.fill(frames, [np.zeros((30, 40), bool), np.zeros((50, 20), np.uint8)])
    assert spy.calls == []
    for frame, res in zip(frames, out, strict=True):
        np.testing.assert_array_equal(res.plate, frame)
        assert res.plate is not frame


def test_same_shaped_windows_are_batched(models):
    # two equal blobs far apart in frame A, one of the same size in frame B, one other in frame C
    def blob(mask, y, x):
        mask[y:y + 20, x:x + 30] = True

    a, b, c = np.zeros((200, 700), bool), np.zeros((200, 300), bool), np.zeros((100, 100), bool)
    blob(a, 90, 100), blob(a, 90, 550), blob(b, 90, 130), blob(c, 40, 30)
    frames = [_noise(*m.shape, i) for i, m in enumerate((a, b, c))]
    inp = _inpainter(models, "torchscript", "invert", "crop", batch_size=2, crop_margin=40)
    inp._model = spy = _Spy(inp._model)
    out = inp.fill(frames, [a, b, c])
    assert sorted(spy.calls) == sorted([(2, 3, 104, 112), (1, 3, 104, 112), (1, 3, 104, 104)])
    assert [r.extra["windows"] for r in out] == [2, 1, 1]
    for frame, mask, res in zip(frames, (a, b, c), out, strict=True):
        np.testing.assert_array_equal(res.plate[mask], 255 - frame[mask])
        np.testing.assert_array_equal(res.plate[~mask], frame[~mask])


@pytest.mark.parametrize("fmt", FORMATS)
def test_crop_merges_overlapping_windows(models, fmt):
    h, w = 300, 800
    image = _noise(h, w, 9)
    near = _ellipse(h, w, 0.5, 0.2, 0.2, 0.04) | _ellipse(h, w, 0.5, 0.32, 0.2, 0.04)
    far = _ellipse(h, w, 0.5, 0.1, 0.2, 0.04) | _ellipse(h, w, 0.5, 0.9, 0.2, 0.04)
    inp = _inpainter(models, fmt, "invert", "crop", crop_margin=48)
    res_near, res_far = inp.fill([image, image], [near, far])
    assert res_near.extra["windows"] == 1 and res_far.extra["windows"] == 2
    for mask, res in ((near, res_near), (far, res_far)):
        np.testing.assert_array_equal(res.plate[~mask], image[~mask])
        if fmt == "torchscript":  # windows fit working_size: no scaling, exact
            np.testing.assert_array_equal(res.plate[mask], 255 - image[mask])
        else:
            assert np.abs(res.plate[mask].astype(int) - image[mask]).mean() > 60


def test_onnx_with_a_fixed_batch_of_one_and_free_size(models, tmp_path):
    frames = [_noise(77, 101, 10), _noise(77, 101, 11)]
    masks = [_ellipse(77, 101), _ellipse(77, 101, 0.3)]
    one = _onnx_model("invert", tmp_path / "b1.onnx", batch=1)
    out = LamaInpainter(_config(one, "onnx", "crop", batch_size=4), "cpu").fill(frames, masks)
    for frame, mask, res in zip(frames, masks, out, strict=True):
        np.testing.assert_array_equal(res.plate[~mask], frame[~mask])
    free = _onnx_model("invert", tmp_path / "free.onnx", size="s")
    res = LamaInpainter(_config(free, "onnx", "original"), "cpu").fill(frames[:1], masks[:1])[0]
    assert res.extra["model_inputs"] == [[80, 104]]  # padded to multiples of 8, not 512
    np.testing.assert_array_equal(res.plate[masks[0]], 255 - frames[0][masks[0]])


# --- weights and errors ------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_weights_used_is_the_loaded_file(models, fmt):
    path = _model(models, fmt, "mean")
    inp = LamaInpainter(_config(path), "cpu")
    (use,) = inp.weights_used()
    assert Path(use.path) == path.resolve() and use.source == "checkpoint"
    assert use.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert inp.fill([_noise(20, 20)], [np.ones((20, 20), bool)])[0].extra["format"] == fmt


def test_registered_weights_are_found_in_cleanplate_weights(models, tmp_path, monkeypatch):
    folder = tmp_path / "w"
    folder.mkdir()
    (folder / "lama_fp32.onnx").write_bytes(models[("onnx", "invert")].read_bytes())
    (folder / "big-lama.pt").write_bytes(b"PK\x03\x04 truncated download")
    monkeypatch.setenv("CLEANPLATE_WEIGHTS", str(folder))
    monkeypatch.setenv("CLEANPLATE_OFFLINE", "1")
    cfg = Config(fill=FillConfig(method="lama", lama=LamaConfig(model="lama-onnx")))
    # found in $CLEANPLATE_WEIGHTS and checked against the registry: a stand-in model is refused
    with pytest.raises(WeightsError, match=re.escape(f"{folder / 'lama_fp32.onnx'} is corrupt (size")):
        LamaInpainter(cfg, "cpu")
    with pytest.raises(WeightsError, match="corrupt.*size"):
        LamaInpainter(Config(fill=FillConfig(method="lama")), "cpu")


def _one_line_error(cfg: Config, exc_type=WeightsError) -> str:
    with pytest.raises(exc_type) as info:
        LamaInpainter(cfg, "cpu")
    msg = str(info.value)
    assert msg and "\n" not in msg
    return msg


@pytest.mark.parametrize("fmt", ["auto", "torchscript", "onnx"])
def test_a_file_that_is_no_model_is_refused(tmp_path, fmt):
    if fmt == "torchscript":
        pytest.importorskip("torch")
    bad = tmp_path / "notes.pt"
    bad.write_bytes(b"this is not a model\n" * 50)
    msg = _one_line_error(_config(bad, fmt))
    assert str(bad) in msg and "not a" in msg


def test_a_zip_that_is_not_torchscript_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    state = tmp_path / "state_dict.pt"
    torch.save({"weight": torch.zeros(3)}, str(state))
    msg = _one_line_error(_config(state))
    assert "is not a TorchScript LaMa model" in msg and "state dict" in msg
    training = tmp_path / "big-lama.zip"  # what advimman/lama publishes: config + Lightning checkpoint
    with zipfile.ZipFile(training, "w") as zf:
        zf.writestr("big-lama/config.yaml", "generator: {}\n")
        zf.writestr("big-lama/models/best.ckpt", b"\0" * 64)
    msg = _one_line_error(_config(training))
    assert "training checkpoints" in msg and "cleanplate weights download big-lama" in msg


def test_format_and_file_must_agree(models):
    pytest.importorskip("torch")
    msg = _one_line_error(_config(models[("onnx", "mean")], "torchscript"))
    assert "not a TorchScript LaMa model" in msg and "looks like ONNX" in msg
    msg = _one_line_error(_config(models[("torchscript", "mean")], "onnx"))
    assert "not an ONNX LaMa model" in msg and "torchscript" in msg


def test_a_model_with_other_inputs_is_refused(tmp_path):
    other = _onnx_model("invert", tmp_path / "other.onnx", input_names=("input", "mask"))
    msg = _one_line_error(_config(other))
    assert "expected 'image' and 'mask'" in msg


def test_torchscript_with_the_wrong_signature_is_refused(tmp_path):
    torch = pytest.importorskip("torch")

    class OneInput(torch.nn.Module):
        def forward(self, image: torch.Tensor) -> torch.Tensor:
            return image

    path = tmp_path / "one.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(OneInput()), str(path))
    msg = _one_line_error(_config(path))
    assert "is not a LaMa model" in msg


def test_format_contradicting_registered_weights_is_a_config_error(monkeypatch):
    monkeypatch.setenv("CLEANPLATE_OFFLINE", "1")
    cfg = Config(fill=FillConfig(method="lama", lama=LamaConfig(format="onnx", model="big-lama")))
    msg = _one_line_error(cfg, ConfigError)
    assert "lama-onnx" in msg


def test_missing_checkpoint(tmp_path):
    msg = _one_line_error(_config(tmp_path / "nope.pt"))
    assert "not found" in msg


def test_without_torch_torchscript_says_how_to_install_and_onnx_still_works(models, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    path = _model(models, "torchscript", "mean")
    msg = _one_line_error(_config(path, "torchscript"), BackendUnavailableError)
    assert "pip install 'cleanplate[lama]'" in msg
    image, mask = _noise(40, 60), _ellipse(40, 60)
    res = LamaInpainter(_config(models[("onnx", "invert")]), "cpu").fill([image], [mask])[0]
    np.testing.assert_array_equal(res.plate[~mask], image[~mask])


def test_importing_the_backend_does_not_import_torch():
    code = textwrap.dedent("""
        import sys
        import cleanplate.fill.lama
        assert "lama" in cleanplate.fill.base.INPAINTERS
        print("torch" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_crop_windows_never_overlap_and_hold_every_masked_pixel():
    from cleanplate.fill.lama_strategies import plan_regions

    rng = np.random.default_rng(12)
    for _ in range(20):
        mask = np.zeros((120, 160), bool)
        for _ in range(rng.integers(1, 8)):
            y, x, hh, ww = rng.integers(0, 110), rng.integers(0, 150), rng.integers(1, 10), rng.integers(1, 10)
            mask[y:y + hh, x:x + ww] = True
        margin = int(rng.integers(0, 20))
        regions = plan_regions(mask, "crop", margin)
        count = np.zeros(mask.shape, int)
        for r in regions:
            count[r.window] += 1
        assert count.max() == 1  # pairwise disjoint
        assert (count[mask] == 1).all()  # every masked pixel in exactly one window
        n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
        for x, y, bw, bh in stats[1:n, :4].tolist():  # each region's box + margin inside one window
            y0, y1, x0, x1 = max(0, y - margin), min(120, y + bh + margin), max(0, x - margin), min(160, x + bw + margin)
            assert any(r.y0 <= y0 and y1 <= r.y1 and r.x0 <= x0 and x1 <= r.x1 for r in regions)
    # a region found after two others, whose window bridges theirs: all three merge
    mask = np.zeros((40, 40), bool)
    mask[0:5, 0:5] = mask[0:5, 30:35] = mask[8:10, 3:33] = True
    assert [(r.y0, r.y1, r.x0, r.x1) for r in plan_regions(mask, "crop", 2)] == [(0, 12, 0, 37)]
    assert len(plan_regions(mask, "crop", 0)) == 3
    assert plan_regions(np.zeros((5, 5), bool), "crop", 3) == []


def test_auto_takes_lama_when_its_weights_are_on_disk(models):
    """``fill.method: auto`` with a LaMa file on disk uses it (and records it), without downloading."""
    from cleanplate.fill.auto import AutoInpainter

    cfg = _config(_model(models, "onnx", "invert"))
    cfg = cfg.model_copy(update={"fill": cfg.fill.model_copy(update={"method": "auto"})})
    inp = create_inpainter(cfg, "cpu")
    assert isinstance(inp, AutoInpainter) and inp.chosen == "lama" and inp.why is None
    img = np.full((64, 96, 3), 40, np.uint8)
    mask = np.zeros((64, 96), bool)
    mask[20:40, 30:60] = True
    res = inp.fill([img], [mask])[0]
    assert res.extra["auto_method"] == "lama" and "auto_why" not in res.extra
    assert np.array_equal(res.plate[~mask], img[~mask])
    assert res.plate[mask].mean() > 150  # the invert model's fill: 255 - 40
