"""SAM2 segmenter on Hugging Face transformers' ``Sam2Model``, with character selection.

Two ways to prompt SAM2 (``segment.prompts``):

* ``grid`` — SAM2's automatic mask generator (:mod:`cleanplate.segment.amg`) with every
  ``segment.sam2`` knob; it segments everything, so ``segment.select`` decides which instances
  are characters (:mod:`cleanplate.segment.select`).
* ``salient-boxes`` — one box (+ a positive point at the saliency peak) per saliency component,
  a single decoder pass for all of them: one mask per character (MobileSAMv2-style), far fewer
  decoder calls than a grid.

Model, builder and predictor apart: :func:`load_sam2` builds the model from a folder (loaded once
per process and device), :class:`Sam2Predictor` wraps it (one image embedding per frame or crop,
prompt decoding, mask upsampling), :class:`Sam2Segmenter` is the registered backend. torch and
transformers are imported lazily; without them the backend raises
:class:`~cleanplate.errors.BackendUnavailableError` with the install line.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cleanplate.config import Config
from cleanplate.devices import autocast_dtype, to_device
from cleanplate.errors import BackendUnavailableError, ConfigError, FrameError, WeightsError
from cleanplate.masks import remove_small_regions
from cleanplate.records import Instance, SegmentResult, bbox_xywh
from cleanplate.segment.amg import BatchStats, MaskGenerator, run_batches, stability_score
from cleanplate.segment.base import SEGMENTERS
from cleanplate.segment.select import saliency_prompts, select_characters
from cleanplate.weights import WeightsSpec, WeightsUse, file_digest, register, resolve

if TYPE_CHECKING:
    import torch

INSTALL = "pip install 'cleanplate[sam2]'"

# --- weights ------------------------------------------------------------------------------------
_SIZES = {"tiny": "tiny", "small": "small", "base_plus": "base-plus", "large": "large"}
MODEL_TYPES: dict[str, str] = {}
"""``--model-type`` name (Meta's spelling) -> weights registry name."""

for _ver in ("sam2", "sam2.1"):
    for _mt, _size in _SIZES.items():
        _name = f"{_ver}-hiera-{_size}"
        MODEL_TYPES[f"{_ver}_hiera_{_mt}"] = _name
        register(WeightsSpec(
            name=_name, filename=_name, urls=(), kind="sam2", license="Apache-2.0",
            description=f"SAM {_ver[3:]} Hiera-{_size} (Meta), Hugging Face transformers format",
            hf_repo=f"facebook/{_name}", hf_files=("*.json", "*.safetensors"),
        ))


def weights_name(model_type: str) -> str:
    """Registry name for a ``model_type`` (``sam2.1_hiera_tiny`` or ``sam2.1-hiera-tiny``)."""
    if model_type in MODEL_TYPES:
        return MODEL_TYPES[model_type]
    if model_type in MODEL_TYPES.values():
        return model_type
    raise ConfigError(f"unknown SAM2 model type '{model_type}' (known: {', '.join(MODEL_TYPES)})")


# --- builder ------------------------------------------------------------------------------------
_LOADED: dict[tuple[str, str], tuple[Any, Any]] = {}


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


def load_sam2(path: str, device: str) -> tuple[Any, Any]:
    """(Sam2Model in eval mode on ``device``, Sam2ImageProcessor) from a transformers-format folder.

    Cached per process: a second segmenter for the same folder and device reuses the model.
    A folder without ``config.json``, unreadable weights or weights that leave parameters
    uninitialised are a :class:`WeightsError`.
    """
    key = (str(Path(path).resolve()), device)
    if key in _LOADED:
        return _LOADED[key]
    try:
        from transformers import Sam2ImageProcessor, Sam2Model
    except ImportError as exc:
        raise BackendUnavailableError(f"the sam2 backend needs torch and transformers>=4.56 ({exc}): {INSTALL}") from None
    folder = Path(path)
    if folder.is_file() and folder.suffix == ".safetensors":
        folder = folder.parent
    if folder.is_file() and folder.suffix in (".pt", ".pth"):
        raise WeightsError(f"{folder}: Meta's original .pt checkpoints are not supported; use the Hugging Face "
                           f"format (config.json + model.safetensors), e.g. facebook/sam2.1-hiera-tiny")
    if not (folder / "config.json").is_file():
        raise WeightsError(f"{folder} is not a SAM2 model folder (no config.json); expected the Hugging Face "
                           f"format (config.json + model.safetensors), e.g. facebook/sam2.1-hiera-tiny")
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # the CLI draws its own progress
    try:
        model, info = Sam2Model.from_pretrained(str(folder), output_loading_info=True)
    except Exception as exc:  # safetensors, json and transformers raise many types
        raise WeightsError(f"cannot load SAM2 weights from {folder}: {_one_line(exc)}") from None
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    missing = info.get("missing_keys") or []
    if missing:
        raise WeightsError(f"SAM2 weights in {folder} lack {len(missing)} tensors (e.g. {sorted(missing)[0]}); "
                           f"the checkpoint does not match its config.json")
    if (folder / "preprocessor_config.json").is_file():
        processor = Sam2ImageProcessor.from_pretrained(str(folder))
    else:
        side = int(model.config.prompt_encoder_config.image_size)
        processor = Sam2ImageProcessor(size={"height": side, "width": side})
    model = model.eval().to(device)
    _LOADED[key] = (model, processor)
    return model, processor


def oom_errors() -> tuple[type[BaseException], ...]:
    import torch

    return (getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError),)


def compile_encoder(model: Any) -> None:
    """``torch.compile`` the image encoder of a loaded model, once (``segment.sam2.compile``)."""
    if not getattr(model, "_cleanplate_compiled", False):
        model.vision_encoder.compile(dynamic=False)
        model._cleanplate_compiled = True


# --- predictor ----------------------------------------------------------------------------------

class Sam2Predictor:
    """A loaded SAM2 with pre/post-processing: ``set_image`` once, then ``decode`` many prompts.

    Coordinates in and out are pixels of the image given to ``set_image``. The model sees that
    image warped to its square input (``Sam2ImageProcessor``), so x is scaled by side/W and y by
    side/H (what ``Sam2Processor`` does).
    """

    def __init__(self, model: Any, processor: Any, device: str, precision: str = "auto") -> None:
        self.model, self.processor, self.device = model, processor, device
        self.side = int(model.config.prompt_encoder_config.image_size)
        self.oom_errors = oom_errors()
        self.dtype = autocast_dtype(device, precision)
        self._emb: list[torch.Tensor] | None = None
        self._hw = (0, 0)
        self.encoder_calls = 0
        self.encoder_seconds = 0.0

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        import torch

        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda" if self.device == "cuda" else "cpu", dtype=self.dtype)

    def set_image(self, image: np.ndarray) -> None:
        """Compute and keep the image embedding of an HxWx3 uint8 RGB image."""
        self._emb = None
        (emb,) = self.embed_batch([image])
        self.use_embedding(emb, (int(image.shape[0]), int(image.shape[1])))

    def embed_batch(self, images: list[np.ndarray]) -> list[list[torch.Tensor]]:
        """Image embeddings of HxWx3 uint8 RGB images, the encoder run once on the whole batch.

        On CUDA the batch goes host -> device from pinned memory without blocking the host. One
        embedding per image (a list of feature maps with batch dimension 1), for :meth:`use_embedding`.
        """
        import torch

        if not images:
            return []
        t0 = time.perf_counter()
        pixels = self.processor(images=list(images), return_tensors="pt")["pixel_values"]
        pixels = to_device(pixels, self.device)
        with torch.inference_mode(), self._autocast():
            emb = self.model.get_image_embeddings(pixels)
        self.sync()
        self.encoder_calls += 1
        self.encoder_seconds += time.perf_counter() - t0
        return [[e[i:i + 1] for e in emb] for i in range(len(images))]

    def use_embedding(self, emb: list[torch.Tensor], hw: tuple[int, int]) -> None:
        """Decode the next prompts against ``emb`` (from :meth:`embed_batch`) of an image of size ``hw``."""
        self._emb = emb
        self._hw = (int(hw[0]), int(hw[1]))

    def decode(self, points: np.ndarray | None, boxes: np.ndarray | None,
               multimask: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode B prompts: ``points`` (B,2) xy and/or ``boxes`` (B,4) XYXY, in image pixels.

        Returns low-resolution mask logits (B,C,h,w) float32 and predicted IoU (B,C), C = 3 with
        ``multimask`` else 1, on the device.
        """
        import torch

        if self._emb is None:
            raise RuntimeError("set_image must be called before decode")
        h, w = self._hw
        scale = np.array([self.side / w, self.side / h], dtype=np.float32)
        kwargs: dict[str, Any] = {}
        if points is not None:
            pts = torch.from_numpy((points.astype(np.float32) * scale)[None, :, None, :]).to(self.device)
            kwargs["input_points"] = pts
            kwargs["input_labels"] = torch.ones(pts.shape[:3], dtype=torch.long, device=self.device)
        if boxes is not None:
            b = boxes.astype(np.float32) * np.tile(scale, 2)
            kwargs["input_boxes"] = torch.from_numpy(b[None]).to(self.device)
        with torch.inference_mode(), self._autocast():
            out = self.model(image_embeddings=self._emb, multimask_output=multimask, **kwargs)
        return out.pred_masks[0].float(), out.iou_scores[0].float()

    def upsample(self, low_res: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        """(N,C,h,w) logits -> (N,C,H,W) logits at ``hw`` (bilinear, the processor's post-processing)."""
        import torch

        with torch.inference_mode():
            return self.processor.post_process_masks([low_res], [list(hw)], binarize=False)[0]

    def empty_cache(self) -> None:
        import torch

        if self.device == "cuda":
            torch.cuda.empty_cache()
        elif self.device == "mps" and hasattr(torch, "mps"):
            torch.mps.empty_cache()

    def sync(self) -> None:
        import torch

        if self.device == "cuda":
            torch.cuda.synchronize()


# --- the backend --------------------------------------------------------------------------------

def _check_frame(image: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise FrameError(f"sam2 expects an HxWx3 uint8 RGB frame, got {image.shape} {image.dtype}")


@SEGMENTERS.register("sam2")
class Sam2Segmenter:
    """SAM2 instances, then character selection; see the module docstring."""

    name = "sam2"

    def __init__(self, config: Config, device: str) -> None:
        try:
            import torch
            import torchvision  # noqa: F401  (NMS)
            import transformers  # noqa: F401
        except ImportError as exc:
            raise BackendUnavailableError(f"the sam2 backend needs torch, torchvision and transformers "
                                          f"({exc.name} is missing): {INSTALL}") from None
        self.cfg = config.segment
        self.p = config.segment.sam2
        self.device = device
        if config.run.threads:
            torch.set_num_threads(config.run.threads)
        self.weights = resolve(weights_name(self.p.model_type), self.p.checkpoint)
        model, processor = load_sam2(self.weights.path, device)
        if self.weights.sha256 is None:  # a checkpoint folder: record the digest of its weights file
            files = sorted(Path(self.weights.path).glob("*.safetensors")) if Path(self.weights.path).is_dir() else []
            if files:
                self.weights = replace(self.weights, sha256=file_digest(files[0]))
        if self.p.compile:
            compile_encoder(model)
        self.predictor = Sam2Predictor(model, processor, device, config.run.precision)
        self.generator = MaskGenerator(self.predictor, self.p)
        self.saliency = None
        if self.cfg.select == "salient" or self.cfg.prompts == "salient-boxes":
            from cleanplate.segment.saliency import SaliencyPredictor

            sc = self.cfg.saliency
            self.saliency = SaliencyPredictor(sc.model, device, input_size=sc.input_size,
                                              threads=config.run.threads)
        self.frames = 0

    def weights_used(self) -> list[WeightsUse]:
        return [self.weights] + ([self.saliency.weights] if self.saliency is not None else [])

    def segment(self, image: np.ndarray) -> SegmentResult:
        """Instances of one HxWx3 uint8 RGB frame, characters selected; facts in ``extra``."""
        _check_frame(image)
        return self._segment(image, None, None)

    def segment_batch(self, images: list[np.ndarray]) -> list[SegmentResult]:
        """:meth:`segment` of each frame; the image encoder (and the saliency model) run on the
        frames as batches of ``segment.sam2.encoder_batch``. A frame the batch cannot take (out of
        memory) makes the batch fall back to frame by frame."""
        for image in images:
            _check_frame(image)
        out: list[SegmentResult] = []
        step = self.p.encoder_batch
        for start in range(0, len(images), step):
            chunk = images[start:start + step]
            sals: list[Any] = (self.saliency.predict_batch(chunk) if self.saliency is not None
                               else [None] * len(chunk))
            embs: list[Any] = [None] * len(chunk)
            whole_frame = self.cfg.prompts == "salient-boxes" or self.p.crop_n_layers == 0
            if whole_frame and len(chunk) > 1:
                try:
                    embs = self.predictor.embed_batch(chunk)
                except self.predictor.oom_errors:
                    self.predictor.empty_cache()
            out.extend(self._segment(im, s, e) for im, s, e in zip(chunk, sals, embs, strict=True))
        return out

    def _segment(self, image: np.ndarray, sal: np.ndarray | None, emb: Any) -> SegmentResult:
        """One frame; ``sal`` and ``emb``: its saliency map and image embedding when already computed."""
        hw = (int(image.shape[0]), int(image.shape[1]))
        t0 = time.perf_counter()
        if sal is None and self.saliency is not None:
            sal = self.saliency.predict(image)
        t_sal = time.perf_counter()
        calls, enc_s = self.predictor.encoder_calls, self.predictor.encoder_seconds
        stats = BatchStats()
        try:
            if self.cfg.prompts == "grid":
                cands, stats = self.generator.generate(image, embedding=emb)
                instances = [Instance(mask=m, bbox=bbox_xywh(m), area=int(m.sum()), score=float(cands.iou[k]),
                                      predicted_iou=float(cands.iou[k]), stability_score=float(cands.stability[k]),
                                      point=(float(cands.points[k, 0]), float(cands.points[k, 1])))
                             for k, m in enumerate(r.decode() for r in cands.rles)]
            elif sal is not None:
                instances = self._prompted(image, sal, stats, emb)
            else:
                raise RuntimeError("prompts: salient-boxes without a saliency model")
        except self.predictor.oom_errors as exc:  # the image encoder itself did not fit
            self.predictor.empty_cache()
            raise FrameError(f"out of memory in the SAM2 image encoder: {_one_line(exc)}") from None
        self.predictor.sync()
        t_sam = time.perf_counter()
        chars, extra = select_characters(instances, hw, self.cfg, saliency=sal)
        t_sel = time.perf_counter()
        self.frames += 1
        cleared = bool(self.p.cache_clear_interval) and self.frames % self.p.cache_clear_interval == 0
        if cleared:
            self.predictor.empty_cache()
        extra.update({
            "backend": "sam2", "model_type": self.p.model_type, "prompts": self.cfg.prompts,
            "n_sam2": len(instances), "encoder_calls": self.predictor.encoder_calls - calls,
            "oom_retries": stats.oom_retries, "points_per_batch_used": stats.points_per_batch_used,
            "cache_cleared": cleared,
            "seconds": {"saliency": round(t_sal - t0, 4), "sam2": round(t_sam - t_sal, 4),
                        "sam2_encoder": round(self.predictor.encoder_seconds - enc_s, 4),
                        "select": round(t_sel - t_sam, 4)},
        })
        return SegmentResult(chars, extra)

    def _prompted(self, image: np.ndarray, sal: np.ndarray, stats: BatchStats, emb: Any = None) -> list[Instance]:
        """``prompts: salient-boxes``: one mask per saliency component, from its box and peak."""
        prompts = saliency_prompts(sal, self.cfg.saliency.threshold, self.cfg.min_instance_size)
        if not prompts:
            stats.points_per_batch_used = self.generator.points_per_batch
            return []
        hw = (int(image.shape[0]), int(image.shape[1]))
        if emb is not None:
            self.predictor.use_embedding(emb, hw)
        else:
            self.predictor.set_image(image)
        boxes = np.array([p.box for p in prompts], dtype=np.float32)
        points = np.array([p.point for p in prompts], dtype=np.float32)
        p = self.p

        def one(start: int, stop: int) -> list[Instance]:
            low, iou = self.predictor.decode(points[start:stop], boxes[start:stop], multimask=False)
            logits = self.predictor.upsample(low, hw)[:, 0]
            stab = stability_score(logits, p.mask_threshold, p.stability_score_offset).cpu().numpy()
            masks = (logits > p.mask_threshold).cpu().numpy()
            out = []
            for k in range(stop - start):
                m = remove_small_regions(masks[k], p.min_mask_region_area) if p.min_mask_region_area else masks[k]
                out.append(Instance(mask=m, bbox=bbox_xywh(m), area=int(m.sum()), score=float(iou[k, 0]),
                                    predicted_iou=float(iou[k, 0]), stability_score=float(stab[k]),
                                    point=tuple(points[start + k].tolist())))
            return out

        parts, self.generator.points_per_batch = run_batches(len(prompts), self.generator.points_per_batch,
                                                             one, self.predictor, stats)
        return [i for part in parts for i in part if i.area > 0]
