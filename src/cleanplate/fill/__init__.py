"""Fill methods (inpainters); importing this package registers the built-in ones."""

from cleanplate.fill import opencv, patchmatch  # noqa: F401
from cleanplate.fill.base import INPAINTERS, Inpainter, create_inpainter

try:  # LaMa registers itself; torch is imported lazily inside it
    from cleanplate.fill import lama  # noqa: F401
except ImportError:  # pragma: no cover - module still being written
    pass

__all__ = ["INPAINTERS", "Inpainter", "create_inpainter"]
