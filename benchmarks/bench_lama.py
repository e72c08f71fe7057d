"""Seconds per frame of the LaMa backend, per strategy x format, on CPU.

Real LaMa weights cannot be downloaded everywhere, so this times the backend with a stand-in of
roughly LaMa's per-pixel cost profile: five 3x3 convolutions at full resolution (4->64, 3 x 64->64,
64->3), the same random weights as TorchScript and as a fixed-512x512 ONNX graph. Real Big LaMa
costs a different amount per pixel, so read the table for how the strategies and formats compare
(how many pixels each makes the model see), not as LaMa's own speed. The mask is a character-sized
ellipse covering 15% of the frame.

    python benchmarks/bench_lama.py [--sizes 1024x436 1920x1080] [--repeats 3] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from cleanplate.config import Config, FillConfig, LamaConfig, RunConfig
from cleanplate.fill.lama import LamaInpainter

CHANNELS = [4, 64, 64, 64, 64, 3]


class ConvStandIn(torch.nn.Module):
    """model(image Bx3xHxW in [0,1], mask Bx1xHxW) -> Bx3xHxW in [0,1], like big-lama.pt."""

    def __init__(self) -> None:
        super().__init__()
        self.convs = torch.nn.ModuleList(
            torch.nn.Conv2d(cin, cout, 3, padding=1) for cin, cout in zip(CHANNELS, CHANNELS[1:], strict=False)
        )

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = torch.cat([image * (1 - mask), mask], dim=1)
        for i, conv in enumerate(self.convs):
            x = conv(x)
            x = torch.relu(x) if i < len(self.convs) - 1 else torch.sigmoid(x)
        return image * (1 - mask) + x * mask


def save_torchscript(model: ConvStandIn, path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(model), str(path))


def save_onnx(model: ConvStandIn, path: Path, size: int = 512) -> None:
    """The same network as an ONNX graph with Carve/LaMa-ONNX's interface (output in 0..255)."""
    nodes = [
        helper.make_node("Constant", [], ["one"], value=helper.make_tensor("c1", TensorProto.FLOAT, [], [1.0])),
        helper.make_node("Constant", [], ["s255"], value=helper.make_tensor("c2", TensorProto.FLOAT, [], [255.0])),
        helper.make_node("Sub", ["one", "mask"], ["keep"]),
        helper.make_node("Mul", ["image", "keep"], ["kept"]),
        helper.make_node("Concat", ["kept", "mask"], ["x0"], axis=1),
    ]
    inits = []
    for i, conv in enumerate(model.convs):
        inits += [numpy_helper.from_array(conv.weight.detach().numpy(), f"w{i}"),
                  numpy_helper.from_array(conv.bias.detach().numpy(), f"b{i}")]
        nodes.append(helper.make_node("Conv", [f"x{i}", f"w{i}", f"b{i}"], [f"c{i}"], pads=[1, 1, 1, 1]))
        act = "Relu" if i < len(model.convs) - 1 else "Sigmoid"
        nodes.append(helper.make_node(act, [f"c{i}"], [f"x{i + 1}"]))
    last = f"x{len(model.convs)}"
    nodes += [
        helper.make_node("Mul", [last, "mask"], ["hole"]),
        helper.make_node("Add", ["kept", "hole"], ["filled"]),
        helper.make_node("Mul", ["filled", "s255"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes, "conv-stand-in",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["b", 3, size, size]),
         helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["b", 1, size, size])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["b", 3, size, size])],
        initializer=inits,
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, str(path))


def frame_and_mask(w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w]
    image = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) % 256], axis=-1).astype(np.uint8)
    image = np.clip(image.astype(int) + rng.integers(-20, 21, image.shape), 0, 255).astype(np.uint8)
    mask = np.zeros((h, w), np.uint8)
    rx, ry = 0.15 * w, 0.318 * h  # pi * 0.15 * 0.318 = 15% of the frame
    cv2.ellipse(mask, (int(0.4 * w), int(0.55 * h)), (int(rx), int(ry)), 0, 0, 360, 1, -1)
    return image, mask.astype(bool)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["1024x436", "1920x1080"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()

    torch.manual_seed(0)
    model = ConvStandIn().eval()
    threads = args.threads or len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        files = {"torchscript": Path(tmp) / "standin.pt", "onnx": Path(tmp) / "standin.onnx"}
        save_torchscript(model, files["torchscript"])
        save_onnx(model, files["onnx"])
        print(f"LaMa backend on CPU, {threads} threads (torch and onnxruntime); model: stand-in of five 3x3 convs (4-64-64-64-64-3 ch),"
              " not real LaMa weights")
        print(f"mask: ellipse covering 15% of the frame; best of {args.repeats} runs after one warm-up\n")
        print(f"{'frame':>10} {'strategy':>9} {'format':>12} {'s/frame':>8} {'model input(s)':>18} {'mask %':>7}")
        for size in args.sizes:
            w, h = (int(v) for v in size.split("x"))
            image, mask = frame_and_mask(w, h)
            for strategy in ("original", "crop", "resize"):
                for fmt, path in files.items():
                    lama = LamaConfig(format=fmt, checkpoint=str(path), strategy=strategy)
                    cfg = Config(fill=FillConfig(method="lama", lama=lama), run=RunConfig(threads=threads))
                    inp = LamaInpainter(cfg, "cpu")
                    res = inp.fill([image], [mask])[0]  # warm-up (and TorchScript's first-shape optimisation)
                    times = []
                    for _ in range(args.repeats):
                        t0 = time.perf_counter()
                        inp.fill([image], [mask])
                        times.append(time.perf_counter() - t0)
                    inputs = ",".join(f"{iw}x{ih}" for ih, iw in res.extra["model_inputs"])
                    print(f"{size:>10} {strategy:>9} {fmt:>12} {min(times):8.3f} {inputs:>18}"
                          f" {100 * mask.mean():6.1f}", flush=True)


if __name__ == "__main__":
    main()
