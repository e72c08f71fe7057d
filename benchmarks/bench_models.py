"""Seconds per frame and frames/s of each model stage, frames batched, on random-weight models of the
real architectures (the published weights cannot be downloaded here; timings are those of the real
networks, the masks are meaningless).

Models (``--models``, comma-separated):

* ``saliency``   — the bundled u2netp (real weights, onnxruntime), ``predict_batch``.
* ``sam2-amg``   — SAM2.1 Hiera-L, automatic mask generation with a ``--points-per-side`` grid
                   (32x32), frames through the image encoder in batches (``segment_batch``). The
                   IoU/stability filters are 0 so every mask goes through upsampling, RLE and NMS:
                   an upper bound (real weights drop most masks before upsampling).
* ``sam2-boxes`` — SAM2.1 Hiera-L prompted with one box per saliency component (``salient-boxes``).
* ``sam3``       — transformers ``Sam3Model`` from its default (published) config: one text prompt
                   per frame, masks of the 16 best queries upsampled to the frame.
* ``lama``       — the big-LaMa FFC-ResNet generator (``lama_ffc.py``) on the whole frame, a centred
                   hole of a quarter of the frame, composited.

``--tiny`` swaps every torch model for a small one of the same structure (for the test, which runs
``--device cpu --size 256x256 --tiny``). On CUDA, batches go through pinned memory, autocast follows
``--precision`` (auto: bf16 where supported) and ``--compile`` compiles the encoders.

    python benchmarks/bench_models.py --device cuda --size 1920x1080 --batch 4
    python benchmarks/bench_models.py --device cpu --size 256x256 --tiny --models saliency,lama
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
FRAME = HERE.parent.parent / "shared" / "data" / "sintel_market" / "frame_0016.png"
MODELS = ("saliency", "sam2-amg", "sam2-boxes", "sam3", "lama")


# --- frames -------------------------------------------------------------------------------------

def frames(path: Path, size: tuple[int, int], n: int) -> list[np.ndarray]:
    """``n`` HxWx3 uint8 RGB frames of ``size`` (W, H): the real frame at ``path`` resized and shifted
    a few pixels each (so no two are the same), or coloured noise if it is missing."""
    w, h = size
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        base = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    else:
        base = cv2.resize(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), (w, h), interpolation=cv2.INTER_AREA)
    return [np.roll(base, 2 * k, axis=1) for k in range(n)]


# --- model builders: each returns run(batch) -> None and a note -----------------------------------

def _autocast(device: str, precision: str) -> Any:
    import contextlib

    import torch

    from cleanplate.devices import autocast_dtype

    dtype = autocast_dtype(device, precision)
    return torch.autocast("cuda", dtype=dtype) if dtype is not None else contextlib.nullcontext()


def build_saliency(args: argparse.Namespace) -> tuple[Callable[[list[np.ndarray]], Any], str]:
    from cleanplate.segment.saliency import SaliencyPredictor

    pred = SaliencyPredictor("u2netp", args.device, max_batch=args.batch)
    return pred.predict_batch, f"u2netp {pred.input_size}px, onnxruntime"


def _sam2_checkpoint(args: argparse.Namespace, folder: Path) -> Path:
    import torch
    from transformers import Sam2Config, Sam2ImageProcessor, Sam2Model
    from transformers.models.sam2.configuration_sam2 import (
        Sam2HieraDetConfig,
        Sam2MaskDecoderConfig,
        Sam2PromptEncoderConfig,
        Sam2VisionConfig,
    )

    torch.manual_seed(0)
    if args.tiny:
        s = 256
        backbone = Sam2HieraDetConfig(
            hidden_size=16, num_attention_heads=1, image_size=[s, s], blocks_per_stage=[1, 1, 2, 1],
            embed_dim_per_stage=[16, 32, 64, 128], num_attention_heads_per_stage=[1, 1, 2, 2],
            window_size_per_stage=[8, 4, 8, 4], global_attention_blocks=[3],
            window_positional_embedding_background_size=[4, 4])
        vision = Sam2VisionConfig(backbone_config=backbone, backbone_channel_list=[128, 64, 32, 16],
                                  backbone_feature_sizes=[[s // 4] * 2, [s // 8] * 2, [s // 16] * 2],
                                  fpn_hidden_size=32)
        cfg = Sam2Config(vision_config=vision,
                         prompt_encoder_config=Sam2PromptEncoderConfig(hidden_size=32, image_size=s, patch_size=16,
                                                                       mask_input_channels=8),
                         mask_decoder_config=Sam2MaskDecoderConfig(hidden_size=32, mlp_dim=64, num_attention_heads=4,
                                                                   iou_head_hidden_dim=32))
        processor = Sam2ImageProcessor(size={"height": s, "width": s})
    else:
        from bench_sam2 import ARCH  # Meta's Hiera-L settings

        backbone = Sam2HieraDetConfig(**ARCH["large"])
        vision = Sam2VisionConfig(backbone_config=backbone,
                                  backbone_channel_list=list(reversed(backbone.embed_dim_per_stage)))
        cfg = Sam2Config(vision_config=vision)
        processor = Sam2ImageProcessor()
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    Sam2Model(cfg).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def build_sam2(args: argparse.Namespace, prompts: str) -> tuple[Callable[[list[np.ndarray]], Any], str]:
    from cleanplate.config import load_config
    from cleanplate.segment.sam2 import Sam2Segmenter

    ckpt = _sam2_checkpoint(args, Path(args.tmp) / "sam2")
    cfg = load_config(overrides={
        "segment.backend": "sam2", "segment.prompts": prompts, "segment.sam2.checkpoint": str(ckpt),
        "segment.sam2.model_type": "sam2.1_hiera_large", "segment.sam2.points_per_side": args.points_per_side,
        "segment.sam2.points_per_batch": args.points_per_batch, "segment.sam2.encoder_batch": args.batch,
        "segment.sam2.pred_iou_thresh": 0.0, "segment.sam2.stability_score_thresh": 0.0,
        "segment.sam2.compile": args.compile, "run.precision": args.precision, "run.threads": args.threads,
    })
    seg = Sam2Segmenter(cfg, args.device)
    what = "tiny Hiera" if args.tiny else "SAM2.1 Hiera-L"
    note = (f"{what}, {args.points_per_side}x{args.points_per_side} points" if prompts == "grid"
            else f"{what}, saliency boxes")

    def run(batch: list[np.ndarray]) -> list[Any]:
        return seg.segment_batch(batch)

    run.predictor = seg.predictor  # type: ignore[attr-defined]  (encoder seconds for the report)
    return run, note


def _sam3_config(tiny: bool) -> Any:
    from transformers import CLIPTextConfig, Sam3Config
    from transformers.models.sam3 import configuration_sam3 as c3

    if not tiny:
        return Sam3Config()
    s, t = 224, 224 // 14
    vit = c3.Sam3ViTConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=s, patch_size=14, window_size=8, global_attn_indexes=[1], pretrain_image_size=s)
    vision = c3.Sam3VisionConfig(backbone_config=vit, fpn_hidden_size=32,
                                 backbone_feature_sizes=[[t * 4] * 2, [t * 2] * 2, [t] * 2])
    text = CLIPTextConfig(hidden_size=32, intermediate_size=64, projection_dim=32, num_hidden_layers=1,
                          num_attention_heads=2, max_position_embeddings=32)
    kw = {"hidden_size": 32, "num_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}
    return Sam3Config(vision_config=vision, text_config=text,
                      geometry_encoder_config=c3.Sam3GeometryEncoderConfig(**kw),
                      detr_encoder_config=c3.Sam3DETREncoderConfig(**kw),
                      detr_decoder_config=c3.Sam3DETRDecoderConfig(**kw, num_queries=20),
                      mask_decoder_config=c3.Sam3MaskDecoderConfig(hidden_size=32, num_attention_heads=2))


def build_sam3(args: argparse.Namespace) -> tuple[Callable[[list[np.ndarray]], Any], str]:
    import torch
    import torch.nn.functional as F
    from transformers import Sam3Model

    from cleanplate.devices import to_device

    torch.manual_seed(0)
    cfg = _sam3_config(args.tiny)
    model = Sam3Model(cfg).eval().to(args.device)
    if args.compile:
        model.vision_encoder.compile(dynamic=False)
    side = int(cfg.vision_config.backbone_config.image_size)
    mean = np.array([0.5, 0.5, 0.5], np.float32)
    tokens = torch.randint(0, cfg.text_config.vocab_size, (1, 8))  # one text prompt ("character")

    def run(batch: list[np.ndarray]) -> list[np.ndarray]:
        x = np.stack([cv2.resize(im, (side, side), interpolation=cv2.INTER_AREA) for im in batch])
        pixels = torch.from_numpy(((x.astype(np.float32) / 255.0 - mean) / 0.5).transpose(0, 3, 1, 2).copy())
        pixels = to_device(pixels, args.device)
        ids = tokens.expand(len(batch), -1).to(args.device)
        with torch.inference_mode(), _autocast(args.device, args.precision):
            out = model(pixel_values=pixels, input_ids=ids, attention_mask=torch.ones_like(ids))
            top = out.pred_logits.float().topk(min(16, out.pred_logits.shape[1]), dim=1).indices
            masks = torch.gather(out.pred_masks, 1, top[..., None, None].expand(-1, -1, *out.pred_masks.shape[-2:]))
            h, w = batch[0].shape[:2]
            full = F.interpolate(masks.float(), size=(h, w), mode="bilinear", align_corners=False) > 0
        return list(full.cpu().numpy())

    n = sum(p.numel() for p in model.parameters()) / 1e6
    return run, f"{'tiny ' if args.tiny else ''}Sam3Model {n:.0f} M params, {side}px, 1 text prompt"


def build_lama(args: argparse.Namespace) -> tuple[Callable[[list[np.ndarray]], Any], str]:
    import torch
    from lama_ffc import ffc_resnet

    from cleanplate.devices import to_device

    torch.manual_seed(0)
    model = ffc_resnet(tiny=args.tiny).eval().to(args.device)
    if args.compile:
        model.compile(dynamic=False)

    def run(batch: list[np.ndarray]) -> list[np.ndarray]:
        h, w = batch[0].shape[:2]
        ph, pw = math.ceil(h / 8) * 8, math.ceil(w / 8) * 8
        mask = np.zeros((ph, pw), np.float32)
        mask[ph // 4:3 * ph // 4, pw // 4:3 * pw // 4] = 1.0
        x = np.zeros((len(batch), ph, pw, 3), np.float32)
        x[:, :h, :w] = np.stack(batch).astype(np.float32) / 255.0
        x = np.concatenate([x * (1 - mask[None, :, :, None]), np.broadcast_to(mask[None, :, :, None],
                                                                               (len(batch), ph, pw, 1))], axis=-1)
        t = to_device(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()), args.device)
        with torch.inference_mode(), _autocast(args.device, args.precision):
            y = model(t).float()
        m = torch.from_numpy(mask).to(y.device)
        out = (t[:, :3] * (1 - m) + y * m)[:, :, :h, :w]
        return list((out.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy())

    n = sum(p.numel() for p in model.parameters()) / 1e6
    return run, f"{'tiny ' if args.tiny else 'big-'}LaMa FFC-ResNet {n:.1f} M params, whole frame"


BUILDERS: dict[str, Callable[[argparse.Namespace], tuple[Callable[[list[np.ndarray]], Any], str]]] = {
    "saliency": build_saliency,
    "sam2-amg": lambda a: build_sam2(a, "grid"),
    "sam2-boxes": lambda a: build_sam2(a, "salient-boxes"),
    "sam3": build_sam3,
    "lama": build_lama,
}


# --- timing -------------------------------------------------------------------------------------

def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def bench(name: str, args: argparse.Namespace, images: list[np.ndarray]) -> dict[str, Any]:
    """Build, warm up on one batch, then time ``--repeat`` batches: seconds per frame and frames/s."""
    t = time.perf_counter()
    run, note = BUILDERS[name](args)
    build_s = time.perf_counter() - t
    batch = images[:args.batch]
    run(batch)  # warm-up (and compilation)
    _sync(args.device)
    predictor = getattr(run, "predictor", None)
    enc0 = predictor.encoder_seconds if predictor is not None else 0.0
    t = time.perf_counter()
    for _ in range(args.repeat):
        run(batch)
    _sync(args.device)
    secs = (time.perf_counter() - t) / (args.repeat * len(batch))
    row = {"model": name, "s_per_frame": secs, "fps": 1.0 / secs if secs > 0 else float("inf"),
           "batch": len(batch), "build_s": build_s, "note": note}
    if predictor is not None:
        row["encoder_s_per_frame"] = (predictor.encoder_seconds - enc0) / (args.repeat * len(batch))
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda", choices=["cpu", "cuda"])
    ap.add_argument("--size", default="1920x1080", help="frame size WxH")
    ap.add_argument("--models", default=",".join(MODELS), help=f"comma-separated: {', '.join(MODELS)}")
    ap.add_argument("--batch", type=int, default=4, help="frames per model call")
    ap.add_argument("--repeat", type=int, default=2, help="timed batches per model, after one warm-up batch")
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    ap.add_argument("--compile", action="store_true", help="torch.compile the encoders / generator")
    ap.add_argument("--points-per-side", type=int, default=32)
    ap.add_argument("--points-per-batch", type=int, default=256)
    ap.add_argument("--tiny", action="store_true", help="small models of the same structure (tests)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--frame", type=Path, default=FRAME, help="real frame the inputs are made from")
    args = ap.parse_args(argv)
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in names if m not in BUILDERS]
    if unknown:
        ap.error(f"unknown model(s) {', '.join(unknown)} (known: {', '.join(MODELS)})")
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        ap.error(f"--size must be WxH, got {args.size}")
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            ap.error("--device cuda: no CUDA GPU here (use --device cpu)")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    images = frames(args.frame, (w, h), args.batch)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        args.tmp = tmp
        for name in names:
            row = bench(name, args, images)
            rows.append(row)
            enc = f", encoder {row['encoder_s_per_frame']:.3f} s/frame" if "encoder_s_per_frame" in row else ""
            print(f"{name}: {row['s_per_frame']:.4f} s/frame, {row['fps']:.2f} frames/s "
                  f"(batch {row['batch']}{enc}; {row['note']})", flush=True)
    gpu = ""
    if args.device == "cuda":
        import torch

        gpu = f" {torch.cuda.get_device_name(0)}"
    print(f"\n| model | s/frame | frames/s | notes |   ({args.device}{gpu}, {w}x{h}, batch {args.batch}, "
          f"precision {args.precision}{', compiled' if args.compile else ''}, {os.cpu_count()} CPU cores)")
    print("|---|---:|---:|---|")
    for r in rows:
        print(f"| {r['model']} | {r['s_per_frame']:.4f} | {r['fps']:.2f} | {r['note']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
