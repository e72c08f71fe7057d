"""From plates to a LoRA training set: dedupe, organise by scene, export (kohya-ss layout).

Each step reads an output folder (``backgrounds/``, ``masks/``, ``inpainting_metadata.json``),
writes its JSON summary under ``OUT/dataset/`` atomically, and is skipped on a rerun whose
inputs and settings did not change (a hash stored in the JSON).

- :func:`dedupe` -> ``OUT/dataset/dedupe.json``: near-duplicate groups, kept and dropped plates, reasons.
- :func:`organize` -> ``OUT/dataset/organize.json``, ``clusters/<label>/`` and ``clusters/<label>.jpg``.
- :func:`export_lora` -> the training set folder, and ``OUT/dataset/export.json``.
"""

from cleanplate.dataset.dedupe import dedupe, dedupe_path
from cleanplate.dataset.export import export_lora, export_path, make_caption
from cleanplate.dataset.organize import load_labels, organize, organize_path
from cleanplate.dataset.plates import CHARACTER_WORDS, Plate, StepResult, load_plates

__all__ = [
    "CHARACTER_WORDS",
    "Plate",
    "StepResult",
    "dedupe",
    "dedupe_path",
    "export_lora",
    "export_path",
    "load_labels",
    "load_plates",
    "make_caption",
    "organize",
    "organize_path",
]
