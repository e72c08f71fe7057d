"""Device resolution: ``auto`` picks CUDA, then Apple MPS, then the CPU."""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any

from cleanplate.errors import ConfigError, WeightsError


def _no_gpu_driver(kind: str) -> bool:
    """True when the OS shows no driver for ``kind``, so torch (seconds to import) need not be asked."""
    if kind == "mps":
        return sys.platform != "darwin"
    if kind == "cuda" and sys.platform.startswith("linux"):
        # NVIDIA's kernel driver, or ROCm's (torch.cuda also drives AMD GPUs)
        return not any(os.path.exists(p) for p in ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/kfd"))
    return False


def _torch_device_available(kind: str) -> bool:
    if importlib.util.find_spec("torch") is None or _no_gpu_driver(kind):
        return False
    import torch

    if kind == "cuda":
        return bool(torch.cuda.is_available())
    if kind == "mps":
        return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    return kind == "cpu"


def _ort_cuda() -> bool:
    try:
        import onnxruntime as ort
    except ImportError:  # pragma: no cover - a hard dependency
        return False
    return "CUDAExecutionProvider" in ort.get_available_providers()


def resolve_device(requested: str) -> str:
    """Return ``cpu``, ``cuda`` or ``mps``; a requested device that is absent is a ConfigError."""
    if requested == "auto":
        for kind in ("cuda", "mps"):
            if _torch_device_available(kind):
                return kind
        return "cuda" if _ort_cuda() else "cpu"
    if requested == "cpu":
        return "cpu"
    if requested in ("cuda", "mps"):
        if _torch_device_available(requested) or (requested == "cuda" and _ort_cuda()):
            return requested
        raise ConfigError(f"device '{requested}' is not available on this machine (use --device cpu or auto)")
    raise ConfigError(f"unknown device '{requested}' (auto, cpu, cuda, mps)")


def autocast_dtype(device: str, precision: str) -> Any:
    """The torch autocast dtype for ``run.precision`` on ``device``; None: float32, no autocast.

    ``auto``: bfloat16 on a CUDA GPU that supports it, else float32; ``bf16``/``fp16`` are honoured
    on CUDA only (CPU and MPS run float32).
    """
    import torch

    if device != "cuda" or precision == "fp32":
        return None
    if precision == "fp16":
        return torch.float16
    if precision == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def to_device(x: Any, device: str) -> Any:
    """A CPU torch tensor on ``device``; to CUDA through pinned host memory, without blocking the host."""
    if device == "cuda":
        return x.pin_memory().to(device, non_blocking=True)
    return x.to(device)


def onnx_providers(device: str) -> list[str]:
    """onnxruntime execution providers for ``device``, best first, always ending with the CPU."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    wanted = ["CUDAExecutionProvider"] if device == "cuda" else []
    if device == "mps":
        wanted.append("CoreMLExecutionProvider")
    return [p for p in wanted if p in available] + ["CPUExecutionProvider"]


def onnx_session(path: str, device: str, threads: int | None = None, what: str = "a usable ONNX model") -> Any:
    """An ``onnxruntime.InferenceSession`` for ``path`` on ``device``.

    ``threads``: intra-op threads (None: onnxruntime's default). A file onnxruntime cannot load is a
    one-line WeightsError saying it is not ``what``.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    if device == "cpu":  # idle threads sleep instead of spinning: ~20 % less CPU per u2netp call, and the
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")  # cores go to work running beside
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=onnx_providers(device))
    except Exception as exc:  # onnxruntime raises its own exception types (InvalidProtobuf, Fail, ...)
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        first = lines[0] if lines else type(exc).__name__
        raise WeightsError(f"{path} is not {what}: {first if len(first) <= 200 else first[:197] + '...'}") from None
