"""Seconds per frame of the sam2 backend: image encoder, grid AMG at several densities, salient boxes.

Without ``--checkpoint`` the real SAM2 architecture of ``--model-type`` is built with RANDOM
weights (the published weights cannot be downloaded here): timings are those of the real network,
but the masks are meaningless, so the AMG quality filters are set to 0 and every mask goes through
upsampling, stability, RLE and NMS — an upper bound on post-processing cost (with real weights
``pred_iou_thresh`` drops many masks before upsampling). With ``--checkpoint`` real weights are
used with the Sam2Config defaults.

    python benchmarks/bench_sam2.py                                  # CPU, sintel frame 1024x436
    python benchmarks/bench_sam2.py --device cuda --model-type sam2.1_hiera_large --size 1920x1080
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

FRAME = Path(__file__).resolve().parents[1] / "../shared/data/sintel_market/frame_0016.png"

# Hiera image-encoder settings of Meta's sam2.1_hiera_{t,s,b+,l}.yaml (transformers' Sam2Config
# defaults are the tiny one). SAM 2 and SAM 2.1 share the image path.
ARCH = {
    "tiny": {},
    "small": {"blocks_per_stage": [1, 2, 11, 2], "global_attention_blocks": [7, 10, 13]},
    "base_plus": {"hidden_size": 112, "num_attention_heads": 2, "blocks_per_stage": [2, 3, 16, 3],
                  "embed_dim_per_stage": [112, 224, 448, 896], "num_attention_heads_per_stage": [2, 4, 8, 16],
                  "global_attention_blocks": [12, 16, 20], "window_positional_embedding_background_size": [14, 14]},
    "large": {"hidden_size": 144, "num_attention_heads": 2, "blocks_per_stage": [2, 6, 36, 4],
              "embed_dim_per_stage": [144, 288, 576, 1152], "num_attention_heads_per_stage": [2, 4, 8, 16],
              "global_attention_blocks": [23, 33, 43], "window_size_per_stage": [8, 4, 16, 8]},
}


def random_checkpoint(model_type: str, folder: Path) -> Path:
    """Save the real architecture of ``model_type`` with random weights (seed 0) to ``folder``."""
    import torch
    from transformers import Sam2Config, Sam2ImageProcessor, Sam2Model
    from transformers.models.sam2.configuration_sam2 import Sam2HieraDetConfig, Sam2VisionConfig

    size = model_type.split("_hiera_")[-1]
    hiera = ARCH[size]
    backbone = Sam2HieraDetConfig(**hiera)
    dims = backbone.embed_dim_per_stage
    vision = Sam2VisionConfig(backbone_config=backbone, backbone_channel_list=list(reversed(dims)))
    torch.manual_seed(0)
    Sam2Model(Sam2Config(vision_config=vision)).save_pretrained(folder)
    Sam2ImageProcessor().save_pretrained(folder)
    return folder


def load_frame(path: Path, size: str | None) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        sys.exit(f"cannot read {path}")
    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if size:
        w, h = (int(v) for v in size.lower().split("x"))
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_CUBIC)
    return image


def _split(sec: dict) -> str:
    """'saliency + encoder + decoder/post-processing + select' seconds of one frame."""
    dec = sec["sam2"] - sec["sam2_encoder"]
    return f"sal {sec['saliency']:.2f} + enc {sec['sam2_encoder']:.2f} + dec {dec:.2f} + sel {sec['select']:.2f}"


def timed(fn, repeat: int, sync) -> tuple[float, object]:
    fn()  # warm-up
    sync()
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda", "mps"])
    ap.add_argument("--model-type", default="sam2.1_hiera_tiny")
    ap.add_argument("--checkpoint", help="real weights (transformers folder); default: random weights")
    ap.add_argument("--frame", type=Path, default=FRAME)
    ap.add_argument("--size", help="resize the frame to WxH, e.g. 1920x1080")
    ap.add_argument("--points", default="8,16,32", help="points_per_side values for the grid AMG")
    ap.add_argument("--points-per-batch", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=1, help="timed runs per row (median), after one warm-up")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()

    import torch

    from cleanplate.config import load_config
    from cleanplate.segment.sam2 import Sam2Segmenter

    image = load_frame(args.frame, args.size)
    h, w = image.shape[:2]
    tmp = tempfile.TemporaryDirectory()
    ckpt = args.checkpoint or str(random_checkpoint(args.model_type, Path(tmp.name)))
    weights = "real weights" if args.checkpoint else "RANDOM weights (real architecture)"

    def config(**over):
        base = {"segment.backend": "sam2", "segment.sam2.model_type": args.model_type,
                "segment.sam2.checkpoint": ckpt, "segment.sam2.points_per_batch": args.points_per_batch,
                "run.threads": args.threads}
        if not args.checkpoint:
            base |= {"segment.sam2.pred_iou_thresh": 0.0, "segment.sam2.stability_score_thresh": 0.0}
        return load_config(overrides=base | over)

    def sync() -> None:
        if args.device == "cuda":
            torch.cuda.synchronize()

    print(f"# sam2 backend, {args.model_type}, {weights}, device {args.device}"
          f"{' (' + torch.cuda.get_device_name() + ')' if args.device == 'cuda' else ''}, "
          f"frame {w}x{h}, torch threads {torch.get_num_threads() if not args.threads else args.threads}, "
          f"points_per_batch {args.points_per_batch}, median of {args.repeat}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    rows = []
    seg = Sam2Segmenter(config(), args.device)
    t_enc, _ = timed(lambda: seg.predictor.set_image(image), args.repeat, sync)
    rows.append(("image encoder only", "-", 1, t_enc, "-", "-", "-"))
    for pps in (int(p) for p in args.points.split(",")):
        seg = Sam2Segmenter(config(**{"segment.sam2.points_per_side": pps}), args.device)
        t, res = timed(lambda s=seg: s.segment(image), args.repeat, sync)
        rows.append((f"grid AMG pps {pps}", str(pps * pps), res.extra["encoder_calls"], t,
                     _split(res.extra["seconds"]), res.extra["n_sam2"], f"{res.extra['coverage_all']:.2f}"))
    seg = Sam2Segmenter(config(**{"segment.prompts": "salient-boxes", "segment.select": "salient"}), args.device)
    t, res = timed(lambda: seg.segment(image), args.repeat, sync)
    rows.append(("salient-boxes (select salient)", f"{res.extra['n_sam2']} boxes", res.extra["encoder_calls"], t,
                 _split(res.extra["seconds"]), res.extra["n_sam2"], f"{res.extra['coverage_selected']:.2f}"))
    print("| mode | prompts | image embeddings | s/frame | split (last run) | SAM2 masks | coverage |")
    print("|---|---|---|---|---|---|---|")
    for name, prompts, emb, sec, split, n, cov in rows:
        print(f"| {name} | {prompts} | {emb} | {sec:.2f} | {split} | {n} | {cov} |")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    if args.device == "cuda":
        print(f"peak CUDA memory: {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
    tmp.cleanup()


if __name__ == "__main__":
    main()
