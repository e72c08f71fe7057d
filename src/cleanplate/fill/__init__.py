"""Fill methods (inpainters); importing this package registers the built-in ones.

``temporal+<name>`` is registered once here, for every inpainter registered by then.
"""

# Importing the modules registers their backends; torch is imported lazily inside lama.
from cleanplate.fill import auto, exemplar, lama, opencv, patchmatch  # noqa: F401
from cleanplate.fill.base import INPAINTERS, Inpainter, SequentialInpainter, create_inpainter
from cleanplate.fill.temporal import register_temporal

register_temporal()

__all__ = ["INPAINTERS", "Inpainter", "SequentialInpainter", "create_inpainter", "register_temporal"]
