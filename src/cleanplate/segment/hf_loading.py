"""Loading a transformers model + processor pair from a local Hugging Face folder, once per process.

Shared by the shot segmenters that run transformers' video models (``sam2-video``, ``sam3``): the
same checks (a config.json is there, no tensor missing) and the same one-line errors for both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cleanplate.errors import BackendUnavailableError, WeightsError

_LOADED: dict[tuple[str, str, str], tuple[Any, Any]] = {}


def load_pretrained(path: str, device: str, model_class: str, processor_class: str, *, what: str,
                    expected: str, install: str) -> tuple[Any, Any]:
    """(``transformers.<model_class>`` in eval mode on ``device``, ``<processor_class>``) from ``path``.

    ``what`` names the weights in messages ("SAM 3"), ``expected`` says which repository's format
    the folder should hold, ``install`` is the pip line when transformers lacks the classes.
    """
    key = (str(Path(path).resolve()), device, model_class)
    if key in _LOADED:
        return _LOADED[key]
    try:
        import transformers

        model_cls, processor_cls = getattr(transformers, model_class), getattr(transformers, processor_class)
    except (ImportError, AttributeError) as exc:
        raise BackendUnavailableError(f"{what} needs torch and a transformers with {model_class} ({exc}): "
                                      f"{install}") from None
    folder = Path(path)
    if not (folder / "config.json").is_file():
        raise WeightsError(f"{folder} is not a {what} model folder (no config.json); expected the Hugging Face "
                           f"format of {expected}")
    try:
        model, info = model_cls.from_pretrained(str(folder), output_loading_info=True)
        processor = processor_cls.from_pretrained(str(folder))
    except Exception as exc:  # safetensors, json, tokenizers and transformers raise many types
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise WeightsError(f"cannot load {what} weights from {folder}: {text}") from None
    missing = info.get("missing_keys") or []
    if missing:
        raise WeightsError(f"{what} weights in {folder} lack {len(missing)} tensors (e.g. {sorted(missing)[0]}); "
                           "the checkpoint does not match its config.json")
    _LOADED[key] = (model.eval().to(device), processor)
    return _LOADED[key]
