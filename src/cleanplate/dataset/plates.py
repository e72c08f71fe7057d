"""The plates of an output folder, and the resume bookkeeping shared by the dataset steps.

:func:`load_plates` reads ``inpainting_metadata.json`` and returns one :class:`Plate` per frame,
failed ones included (the steps record why they leave them out). Each step stores
:func:`step_hash` of its settings and inputs in its JSON; a rerun whose hash matches is skipped.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cleanplate.errors import InputError
from cleanplate.io.outputs import Layout, atomic_write_bytes, json_default
from cleanplate.qa.plate import Plate, file_stamp, plate_from_record

__all__ = ["Plate", "file_stamp"]  # re-exported: the dataset steps' plate is the verdict's (cleanplate.qa.plate)

DATASET_DIR = "dataset"
STEP_VERSION = 4  # bump when a step's output format or algorithm changes: old JSONs are then redone

ProgressFn = Callable[[Any], None]
"""Receives :class:`cleanplate.pipeline.ProgressEvent` objects (stage ``dedupe``, ``organize``, ``export``)."""


def dataset_dir(out: Path) -> Path:
    return Path(out) / DATASET_DIR


_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def _ws(text: str, pos: int) -> int:
    return _WS.match(text, pos).end()  # type: ignore[union-attr]


def _key(text: str, pos: int) -> tuple[str, int]:
    """The member key at ``pos`` and where its value starts."""
    if text[pos:pos + 1] != '"':
        raise ValueError(f"expected a key at character {pos}")
    key, pos = _DECODER.raw_decode(text, pos)
    pos = _ws(text, pos)
    if text[pos:pos + 1] != ":":
        raise ValueError(f"expected ':' at character {pos}")
    return key, _ws(text, pos + 1)


def _next(text: str, pos: int) -> tuple[int, bool]:
    """After a member's value: where the next key starts and True, or past the ``}`` and False."""
    pos = _ws(text, pos)
    sep = text[pos:pos + 1]
    if sep == "}":
        return pos + 1, False
    if sep != ",":
        raise ValueError(f"expected ',' or '}}' at character {pos}")
    return _ws(text, pos + 1), True


def _items(text: str, pos: int) -> Iterator[tuple[str, Any]]:
    """The members of the object whose ``{`` is at ``pos``, each value decoded on its own."""
    pos = _ws(text, pos + 1)
    more = text[pos:pos + 1] != "}"
    while more:
        key, pos = _key(text, pos)
        value, pos = _DECODER.raw_decode(text, pos)
        yield key, value
        pos, more = _next(text, pos)


def iter_frames(path: Path) -> Iterator[tuple[str, Any]]:
    """The ``(frame_id, record)`` pairs of the top-level ``"frames"`` object of a JSON file, one at a time.

    Each record is decoded on its own, so a 100 000-frame metadata file never becomes one dict of
    dicts in memory (only its text and the current record). Raises ``OSError`` when the file
    cannot be read, ``ValueError`` when it is not JSON (also part-way, after some records),
    ``KeyError`` when it has no ``"frames"`` object at the top level. Members after ``"frames"``
    are not read.
    """
    text = path.read_text(encoding="utf-8")
    pos = _ws(text, 0)
    if text[pos:pos + 1] != "{":
        raise KeyError("frames")
    pos = _ws(text, pos + 1)
    more = text[pos:pos + 1] != "}"
    while more:
        key, pos = _key(text, pos)
        if key == "frames" and text[pos:pos + 1] == "{":
            yield from _items(text, pos)
            return
        pos = _DECODER.raw_decode(text, pos)[1]  # a small member before "frames" (the summary)
        pos, more = _next(text, pos)
    raise KeyError("frames")


def load_plates(out: str | Path) -> list[Plate]:
    """Every frame of ``OUT/inpainting_metadata.json`` as a :class:`Plate`, in frame order.

    The metadata is read one frame record at a time (:func:`iter_frames`): memory holds the
    file's text and the plates, not the whole JSON as dicts.
    """
    layout = Layout(Path(out))
    meta_path = layout.inpainting_metadata
    if not meta_path.is_file():
        raise InputError(f"{meta_path} not found: run `cleanplate run` (or `cleanplate inpaint`) on {layout.root} first")
    try:
        plates = [plate_from_record(layout.root, k, fid, rec) for k, (fid, rec) in enumerate(iter_frames(meta_path))]
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(f"{meta_path} is not a cleanplate metadata file (no 'frames' mapping)") from None
    plates.sort(key=lambda p: p.index)
    return plates


# ------------------------------------------------------------------------------------ resume

def step_hash(settings: dict[str, Any], plates: Iterable[Plate], files: Iterable[Path] = ()) -> str:
    """Hash of a step's settings and inputs: each plate's outcome and file stamp, plus extra files."""
    h = hashlib.sha256()
    h.update(json.dumps({"v": STEP_VERSION, "settings": settings}, sort_keys=True, default=str).encode())
    for p in plates:
        row = [p.frame_id, p.status, p.invented, list(p.flags), p.stamp(), file_stamp(p.mask_path), p.source,
               p.shot_residue]  # the residue bar reads it
        h.update(json.dumps(row, default=str).encode())
    for f in files:
        h.update(json.dumps([str(f), file_stamp(f)]).encode())
    return h.hexdigest()[:16]


def read_step(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def dumps_lean(obj: Any, depth: int = 0) -> str:
    """``json.dumps(obj, indent=2)`` (same text, byte for byte), built one item of each large
    mapping or list at a time.

    The indenting encoder of the standard library is pure Python and holds every small piece of a
    100 000-frame step file at once before joining them; here the top two levels and any mapping
    or list of more than 16 items are encoded item by item, so one string per item is held.
    """
    pad = "  " * (depth + 1)
    lean = depth < 2 or len(obj) > 16 if isinstance(obj, dict | list | tuple) else False
    if isinstance(obj, dict) and obj and lean and all(isinstance(k, str) for k in obj):
        items = [f"{pad}{json.dumps(str(k))}: {dumps_lean(v, depth + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * depth + "}"
    if isinstance(obj, list | tuple) and obj and lean:
        items = [pad + dumps_lean(v, depth + 1) for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + "  " * depth + "]"
    text = json.dumps(obj, indent=2, default=json_default)
    return text.replace("\n", "\n" + "  " * depth) if depth else text


def write_step(path: Path, data: dict[str, Any]) -> None:
    """Write a step's JSON atomically (as ``io.outputs.write_json`` does, same text), item by item."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (dumps_lean(data) + "\n").encode(), fsync=True)


@dataclass
class StepResult:
    """What a dataset step did. ``skipped``: inputs and settings unchanged, the JSON was kept."""

    step: str
    path: Path
    skipped: bool
    summary: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------ words

CHARACTER_WORDS = frozenset((
    "girl", "girls", "boy", "boys", "man", "men", "woman", "women", "person", "persons", "people", "human",
    "humans", "character", "characters", "child", "children", "kid", "kids", "baby", "babies", "lady", "ladies",
    "gentleman", "gentlemen", "guy", "guys", "player", "players", "rider", "riders", "figure", "figures",
    "crowd", "crowds", "hero", "heroine", "villain", "protagonist", "1girl", "1boy", "2girls", "2boys",
    "multiple_girls", "multiple_boys", "solo", "portrait", "teen", "teenager", "adult", "pedestrian",
    "pedestrians", "actor", "actress", "dancer", "someone", "couple", "family", "warrior", "soldier", "soldiers",
))
"""Words naming people or characters: a tag holding one is removed from captions, a label from the list."""

_WORD = re.compile(r"[a-z0-9_]+")


def character_words_in(text: str) -> list[str]:
    """The character words (see :data:`CHARACTER_WORDS`) found in ``text``, lower-cased."""
    return [w for w in _WORD.findall(text.lower()) if w in CHARACTER_WORDS]


def slug(label: str) -> str:
    """A folder-safe form of a label: ``"town square"`` -> ``"town_square"``."""
    s = re.sub(r"[^a-z0-9_-]+", "_", label.strip().lower()).strip("_")
    return s or "unlabelled"


class Events:
    """Reports a step's progress as :class:`cleanplate.pipeline.ProgressEvent` objects (no-op without a callback)."""

    def __init__(self, stage: str, progress: ProgressFn | None) -> None:
        self.stage, self.progress = stage, progress

    def _emit(self, **kw: Any) -> None:
        if self.progress is not None:
            from cleanplate.pipeline import ProgressEvent

            self.progress(ProgressEvent(stage=self.stage, **kw))

    def start(self, total: int) -> None:
        self._emit(kind="start", total=total)

    def frame(self, frame_id: str, status: str = "ok", message: str | None = None) -> None:
        self._emit(kind="frame", frame_id=frame_id, status=status, message=message)

    def end(self) -> None:
        self._emit(kind="end")
