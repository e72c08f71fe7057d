"""LaMa inpainting (Big LaMa and its anime fine-tune) as TorchScript or ONNX.

Formats (``fill.lama.format``; ``auto`` tells them apart by the file: a zip archive is TorchScript,
anything else is tried as ONNX):

* TorchScript (``big-lama.pt``, IOPaint's export; needs ``pip install 'cleanplate[lama]'``): called
  as ``model(image, mask)`` with ``image`` Bx3xHxW float RGB in [0, 1] and ``mask`` Bx1xHxW in {0, 1},
  H and W multiples of 8; returns Bx3xHxW in [0, 1]. Any size. On CUDA it runs under autocast
  (fp16, else bf16) when a probe at load time shows the model gives the fp32 result that way.
* ONNX (``lama_fp32.onnx``, Carve/LaMa-ONNX; onnxruntime, CUDA provider when available): inputs
  ``image`` and ``mask`` as above, output ``output`` in [0, 255]. Carve's export takes 512x512 only,
  so every window is scaled to fit 512x512 (letterboxed with mirrored padding). An ONNX export with
  free height and width is padded to a multiple of 8 like TorchScript.

Strategies (``fill.lama.strategy``) are described in :mod:`cleanplate.fill.lama_strategies`. Model
inputs of the same shape (from any frame of a ``fill`` call) are batched ``fill.batch_size`` at a
time. Plates keep every unmasked pixel of the input byte for byte; the fill is pasted with a hard
edge (the pipeline blends it over ``masks.feather`` px, once, for every method).
"""

from __future__ import annotations

import contextlib
import os
import warnings
import zipfile
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from cleanplate import weights
from cleanplate.config import Config, LamaConfig
from cleanplate.devices import onnx_session, to_device
from cleanplate.errors import BackendUnavailableError, ConfigError, FrameError, WeightsError
from cleanplate.fill.base import INPAINTERS
from cleanplate.fill.lama_strategies import ModelInput, Region, content_size, plan_regions, prepare, restore
from cleanplate.masks import composite
from cleanplate.records import FillResult
from cleanplate.weights import WeightsSpec, WeightsUse

# --- weights -----------------------------------------------------------------------------------
# URLs and MD5s as pinned by IOPaint (iopaint/model/lama.py); the SHA-256s are the ones published
# for those same files by several projects that pin them.
_IOPAINT = "https://github.com/Sanster/models/releases/download/"
weights.register(WeightsSpec(
    name="big-lama", filename="big-lama.pt", urls=(_IOPAINT + "add_big_lama/big-lama.pt",), kind="inpaint",
    sha256="344c77bbcb158f17dd143070d1e789f38a66c04202311ae3a258ef66667a9ea9",
    md5="e3aa4aaa15225a33ec84f9f4bc47e500", size=205669692,
    license="Apache-2.0",
    description="Big LaMa (advimman/lama) as TorchScript, IOPaint's export: any frame size, needs torch",
))
weights.register(WeightsSpec(
    name="anime-lama", filename="anime-manga-big-lama.pt",
    urls=(_IOPAINT + "AnimeMangaInpainting/anime-manga-big-lama.pt",), kind="inpaint",
    sha256="479d3afdcb7ed2fd944ed4ebcc39ca45b33491f0f2e43eb1000bd623cfb41823",
    md5="29f284f36a0a510bcacf39ecf4c4d54f", size=205717870,
    license="unspecified (IOPaint release; LaMa code is Apache-2.0)",
    description="Big LaMa fine-tuned on anime and manga (IOPaint), TorchScript, needs torch",
))
weights.register(WeightsSpec(
    name="lama-onnx", filename="lama_fp32.onnx",
    urls=("https://huggingface.co/Carve/LaMa-ONNX/resolve/main/lama_fp32.onnx",), kind="inpaint",
    # Not read from the hub here (offline): the sha256 and size that many independent projects pin
    # for this exact file; a file that differs is refused.
    sha256="1faef5301d78db7dda502fe59966957ec4b79dd64e16f03ed96913c7a4eb68d6", size=208044816,
    license="Apache-2.0",
    description="Big LaMa as ONNX (Carve/LaMa-ONNX), fixed 512x512, runs on onnxruntime without torch",
))

_FORMATS = {"big-lama": "torchscript", "anime-lama": "torchscript", "lama-onnx": "onnx"}
"""File format of each registered LaMa weights file."""

_INSTALL_TORCH = "pip install 'cleanplate[lama]'"


class _Model(Protocol):
    """A loaded LaMa: ``model(image Bx3xHxW, mask Bx1xHxW) -> Bx3xHxW`` float32 RGB in [0, 1]."""

    format: str
    fixed: tuple[int, int] | None  # the one input size (h, w) it takes, or None for any multiple of 8
    max_batch: int | None
    precision: str
    device: str

    def __call__(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray: ...


def _one_line(exc: BaseException) -> str:
    """First non-empty line of an exception's message, shortened: for one-line errors."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _is_zip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == b"PK\x03\x04"


def _not_torchscript(path: Path) -> str | None:
    """Why a zip archive is not a TorchScript export (None when it holds TorchScript code)."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except zipfile.BadZipFile as exc:
        return f"a broken zip archive ({_one_line(exc)})"
    if any("/code/" in n or n.startswith("code/") for n in names):
        return None
    if any(n.endswith(".ckpt") for n in names):
        return "a zip of training checkpoints (as the original big-lama.zip is), not the TorchScript export"
    if any(n.endswith("data.pkl") for n in names):
        return "a PyTorch checkpoint saved with torch.save (a state dict), not a TorchScript export"
    return "a zip archive without TorchScript code"


def _looks_like_onnx(path: Path) -> bool:
    """ONNX files are protobuf ModelProtos and start with field 1 (ir_version, a varint): byte 0x08."""
    with open(path, "rb") as fh:
        return fh.read(1) == b"\x08"


# --- TorchScript -------------------------------------------------------------------------------

class _TorchScriptModel:
    format = "torchscript"
    fixed = None
    max_batch = None

    def __init__(self, path: Path, device: str, threads: int | None, precision: str = "auto",
                 optimize: bool = False) -> None:
        try:
            import torch
        except ImportError:
            raise BackendUnavailableError(
                f"LaMa TorchScript weights need PyTorch: {_INSTALL_TORCH} "
                "(or set fill.lama.model: lama-onnx, which runs on onnxruntime)"
            ) from None
        self._torch = torch
        self.device = device
        if device == "cpu":  # run.threads, else torch's default (physical cores) within the CPUs we may use
            torch.set_num_threads(threads or min(torch.get_num_threads(), _usable_cpus()))
        if not _is_zip(path):
            hint = "it looks like ONNX: set fill.lama.format: onnx or auto" if _looks_like_onnx(path) else \
                "not a zip archive"
            raise WeightsError(f"{path} is not a TorchScript LaMa model ({hint})")
        problem = _not_torchscript(path)
        if problem is not None:
            raise WeightsError(
                f"{path} is not a TorchScript LaMa model: it is {problem}; "
                "use big-lama.pt (`cleanplate weights download big-lama`)"
            )
        try:
            with warnings.catch_warnings():  # torch 2.9+ flags TorchScript as deprecated; LaMa ships only as it
                warnings.simplefilter("ignore", FutureWarning)
                model = torch.jit.load(str(path), map_location="cpu")
        except Exception as exc:  # torch raises RuntimeError, pickle errors, ... for non-TorchScript zips
            raise WeightsError(f"{path} is not a TorchScript LaMa model: {_one_line(exc)}") from None
        self._model = model.eval().to(device)
        self._optimize = False
        self._amp: Any = None
        reference = self._probe(path)
        self.precision = self._pick_precision(reference, precision)
        if optimize:  # fill.lama.compile: frozen graph, fused for inference, the profiling optimiser on
            with warnings.catch_warnings():  # deprecated with TorchScript itself; LaMa ships only as it
                warnings.simplefilter("ignore", FutureWarning)
                self._model = torch.jit.optimize_for_inference(torch.jit.freeze(self._model))
            self._optimize = True

    def _run(self, image: np.ndarray, mask: np.ndarray) -> Any:
        """The model's raw output (whatever it returns) for numpy inputs.

        TorchScript's profiling optimiser is off: its first calls on each new input shape are slow
        (seconds for big-lama, as reported in enesmsahin/simple-lama-inpainting#22), crops come in
        many shapes, and with the benchmark's conv stand-in on CPU the optimised graph ran about 2x
        slower than the plain interpreter.
        """
        torch = self._torch
        amp = torch.autocast("cuda", dtype=self._amp) if self._amp is not None else contextlib.nullcontext()
        with torch.inference_mode(), torch.jit.optimized_execution(self._optimize), amp:
            return self._model(to_device(torch.from_numpy(image), self.device),
                               to_device(torch.from_numpy(mask), self.device))

    def __call__(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        out = self._run(image, mask)
        return np.clip(out.float().cpu().numpy(), 0.0, 1.0)

    def _probe(self, path: Path) -> np.ndarray:
        """Run the model once on a small frame (64x72, not a power of two) to check it is a LaMa."""
        image, mask = _probe_input()
        try:
            out = self._run(image, mask)
        except Exception as exc:
            raise WeightsError(
                f"{path} loaded as TorchScript but is not a LaMa model (model(image, mask) failed: {_one_line(exc)})"
            ) from None
        if not isinstance(out, self._torch.Tensor) or tuple(out.shape) != (1, 3, 64, 72):
            got = tuple(out.shape) if isinstance(out, self._torch.Tensor) else type(out).__name__
            raise WeightsError(f"{path} is not a LaMa model: model(image, mask) gave {got}, expected (1, 3, 64, 72)")
        return out.float().cpu().numpy()

    def _pick_precision(self, reference: np.ndarray, precision: str = "auto") -> str:
        """On CUDA, keep autocast (fp16, then bf16; only the one ``run.precision`` names, if it names
        one) only if the model runs under it and gives the fp32 result."""
        torch = self._torch
        if self.device != "cuda" or precision == "fp32":
            return "fp32"
        candidates = [(torch.float16, "fp16")]
        if torch.cuda.is_bf16_supported():
            candidates.append((torch.bfloat16, "bf16"))
        if precision != "auto":
            candidates = [c for c in candidates if c[1] == precision]
        image, mask = _probe_input()
        for dtype, label in candidates:
            self._amp = dtype
            try:
                out = self._run(image, mask).float().cpu().numpy()
            except RuntimeError:  # e.g. half-precision FFT on sizes that are not powers of two
                continue
            if np.isfinite(out).all() and float(np.abs(out - reference).max()) < 0.05:
                return label
        self._amp = None
        return "fp32"


def _probe_input() -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:64, 0:72].astype(np.float32)
    image = np.stack([yy / 63.0, xx / 71.0, 0.5 * np.ones_like(yy)])[None]
    mask = np.zeros((1, 1, 64, 72), dtype=np.float32)
    mask[..., 20:44, 24:48] = 1.0
    return np.ascontiguousarray(image), mask


# --- ONNX --------------------------------------------------------------------------------------

class _OnnxModel:
    format = "onnx"

    def __init__(self, path: Path, device: str, threads: int | None, *, auto: bool) -> None:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            raise BackendUnavailableError("LaMa ONNX weights need onnxruntime: pip install onnxruntime") from None
        what = "a TorchScript or ONNX LaMa model" if auto else "an ONNX LaMa model"
        if not auto and _is_zip(path):
            raise WeightsError(
                f"{path} is not an ONNX LaMa model (it is a zip archive, as TorchScript files are: "
                "set fill.lama.format: torchscript or auto)"
            )
        self._session = onnx_session(str(path), device, threads, what=what)
        inputs = {i.name: i for i in self._session.get_inputs()}
        if not {"image", "mask"} <= set(inputs):
            raise WeightsError(
                f"{path} is an ONNX model but not a LaMa one: inputs {sorted(inputs)}, expected 'image' and 'mask'"
            )
        shape = inputs["image"].shape
        if len(shape) != 4 or (isinstance(shape[1], int) and shape[1] != 3):
            raise WeightsError(f"{path} is not a LaMa model: input 'image' has shape {shape}, expected [b, 3, h, w]")
        h, w = shape[2], shape[3]
        self.fixed = (h, w) if isinstance(h, int) and isinstance(w, int) else None
        self.max_batch = shape[0] if isinstance(shape[0], int) else None
        self._dtypes = {n: np.float16 if inputs[n].type == "tensor(float16)" else np.float32 for n in ("image", "mask")}
        outputs = [o.name for o in self._session.get_outputs()]
        self._output = "output" if "output" in outputs else outputs[0]
        self.precision = "fp16" if self._dtypes["image"] == np.float16 else "fp32"
        self.device = "cuda" if self._session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"

    def __call__(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feeds = {"image": image.astype(self._dtypes["image"]), "mask": mask.astype(self._dtypes["mask"])}
        out = self._session.run([self._output], feeds)[0]
        return np.clip(out.astype(np.float32) / 255.0, 0.0, 1.0)


# --- loading -----------------------------------------------------------------------------------

def load_model(lama: LamaConfig, device: str, threads: int | None,
               precision: str = "auto") -> tuple[_Model, WeightsUse]:
    """Find the weights (registry name or ``lama.checkpoint``) and load them in the right format.

    Raises :class:`ConfigError` when ``lama.format`` contradicts the registered weights,
    :class:`WeightsError` when the file is missing or not a usable LaMa model,
    :class:`BackendUnavailableError` when a TorchScript model is asked for and torch is missing.
    """
    fmt = lama.format
    if lama.checkpoint is None and fmt != "auto" and _FORMATS.get(lama.model, fmt) != fmt:
        fits = sorted(name for name, f in _FORMATS.items() if f == fmt)
        raise ConfigError(
            f"fill.lama.format is '{fmt}' but weights '{lama.model}' are {_FORMATS[lama.model]}: "
            f"set fill.lama.model to {' or '.join(fits)}, or fill.lama.checkpoint to your own file"
        )
    use = weights.resolve(lama.model, lama.checkpoint)
    path = Path(use.path)
    if not path.is_file():
        raise WeightsError(f"{path} is not a file: fill.lama.checkpoint must name a TorchScript or ONNX LaMa file")
    if fmt == "auto":
        fmt = _FORMATS.get(lama.model, "onnx") if lama.checkpoint is None else None
        fmt = fmt or ("torchscript" if _is_zip(path) else "onnx")
        auto = True
    else:
        auto = False
    model: _Model
    if fmt == "torchscript":
        model = _TorchScriptModel(path, device, threads, precision, lama.compile)
    else:
        model = _OnnxModel(path, device, threads, auto=auto)
    return model, use


# --- the inpainter -----------------------------------------------------------------------------

@INPAINTERS.register("lama")
class LamaInpainter:
    """LaMa inpainting; the model is loaded once, here. See the module docstring."""

    name: str
    frame_threads = False  # batched through one model (GPU or ONNX/torch threads): frames go in batches

    def __init__(self, config: Config, device: str) -> None:
        self._lama = config.fill.lama
        self._batch_size = config.fill.batch_size
        self._model, self._weights = load_model(self._lama, device, config.run.threads, config.run.precision)

    def weights_used(self) -> list[WeightsUse]:
        return [self._weights]

    def fill(self, images: list[np.ndarray], masks: list[np.ndarray]) -> list[FillResult]:
        """Inpaint HxWx3 uint8 RGB frames where their HxW bool masks are set; frames may differ in size.

        Each plate equals its frame outside the mask; an empty mask gives the frame back without
        running the model. ``extra`` holds format, strategy, weights (registry name, or the file name
        of a ``checkpoint``), precision, device, the number of windows and the model input sizes (h, w).
        """
        jobs: list[tuple[int, Region, ModelInput]] = []  # (frame, region, model input)
        bool_masks = []
        for i, (image, mask) in enumerate(zip(images, masks, strict=True)):
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise FrameError(f"frame {i}: expected an HxWx3 uint8 RGB image, got {image.shape} {image.dtype}")
            if mask.shape != image.shape[:2]:
                raise FrameError(f"frame {i}: mask shape {mask.shape} != image size {image.shape[:2]}")
            m = mask.astype(bool)
            bool_masks.append(m)
            for region in plan_regions(m, self._lama.strategy, self._lama.crop_margin):
                size = content_size(region.shape, long_side=self._long_side(), fixed=self._model.fixed)
                jobs.append((i, region, prepare(image[region.window], m[region.window], size, self._model.fixed)))

        outputs = self._run_batched([job[2] for job in jobs])
        fills = [image.copy() for image in images]
        sizes: list[list[list[int]]] = [[] for _ in images]
        for (i, region, inp), out in zip(jobs, outputs, strict=True):
            patch = restore(out, inp.content, region.shape)
            paste = bool_masks[i][region.window]
            fills[i][region.window][paste] = patch[paste]
            sizes[i].append(list(inp.image.shape[1:]))
        use = self._weights
        weights_name = Path(use.path).name if use.source == "checkpoint" else use.name
        results = []
        for i, image in enumerate(images):
            extra: dict[str, object] = {
                "format": self._model.format,
                "strategy": self._lama.strategy,
                "weights": weights_name,
                "precision": self._model.precision,
                "device": self._model.device,
                "windows": len(sizes[i]),
                "model_inputs": sizes[i],
            }
            plate = composite(image, fills[i], bool_masks[i]) if sizes[i] else image.copy()
            results.append(FillResult(plate=plate, extra=extra))
        return results

    def _long_side(self) -> int | None:
        return None if self._lama.strategy == "original" else self._lama.working_size

    def _run_batched(self, inputs: list[ModelInput]) -> list[np.ndarray]:
        """Run the model on inputs grouped by shape, ``batch_size`` (at most the model's batch) at a time."""
        step = min(self._batch_size, self._model.max_batch or self._batch_size)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for k, inp in enumerate(inputs):
            by_shape.setdefault(inp.image.shape, []).append(k)
        outputs: list[np.ndarray] = [np.empty(0)] * len(inputs)
        for indices in by_shape.values():
            for start in range(0, len(indices), step):
                chunk = indices[start:start + step]
                image = np.stack([inputs[k].image for k in chunk])
                mask = np.stack([inputs[k].mask for k in chunk])
                out = self._model(image, mask)
                if out.shape != image.shape:
                    raise WeightsError(
                        f"LaMa weights '{self._weights.name}' gave an output of shape {out.shape} "
                        f"for an input of shape {image.shape}"
                    )
                for k, o in zip(chunk, out, strict=True):
                    outputs[k] = o
        return outputs
