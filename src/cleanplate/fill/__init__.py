"""Fill methods (inpainters); importing this package registers the built-in ones."""

# Importing the modules registers their backends; torch is imported lazily inside lama.
from cleanplate.fill import lama, opencv, patchmatch  # noqa: F401
from cleanplate.fill.base import INPAINTERS, Inpainter, create_inpainter

__all__ = ["INPAINTERS", "Inpainter", "create_inpainter"]
