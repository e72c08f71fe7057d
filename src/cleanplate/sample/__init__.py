"""The bundled sample: 10 frames of *Sintel* (CC-BY 3.0, Blender Foundation); see README.md here."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def sample_dir() -> Path:
    """Folder holding the bundled sample frames (PNG, 1024x436)."""
    return Path(str(resources.files("cleanplate") / "sample"))
