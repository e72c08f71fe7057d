"""Device resolution: ``auto`` picks CUDA, then Apple MPS, then the CPU."""

from __future__ import annotations

import importlib.util

from cleanplate.errors import ConfigError


def _torch_device_available(kind: str) -> bool:
    if importlib.util.find_spec("torch") is None:
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
