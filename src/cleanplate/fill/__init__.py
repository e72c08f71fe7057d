"""Fill methods (inpainters); importing this package registers the built-in ones."""

# Importing the modules registers their backends; torch is imported lazily inside lama.
from cleanplate.fill import lama, opencv, patchmatch  # noqa: F401
from cleanplate.fill.base import INPAINTERS, Inpainter, create_inpainter
from cleanplate.fill.temporal import register_temporal  # noqa: F401  (adds temporal+<name> for the above)

__all__ = ["INPAINTERS", "Inpainter", "create_inpainter"]
