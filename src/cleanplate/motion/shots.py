"""Shot boundaries for temporal fills, found while the frames stream past.

A cut is any of: a change of the scene id parsed from the frame id (``scene0535_0012`` ->
``scene0535``, with the ``shot_pattern`` regex); a change of frame size; a PySceneDetect detector
(``ContentDetector`` / ``AdaptiveDetector``, fed frame by frame through ``process_frame``) firing,
unless the caller's ``same_view`` check says the two frames still show the same scenery (a fast pan
over a busy set scores like a cut to a content detector; frames that register onto each other are
one shot). Temporal fills never borrow pixels across a cut.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import cv2
import numpy as np

from cleanplate.config import ShotsConfig
from cleanplate.errors import BackendUnavailableError, ConfigError

T = TypeVar("T")
log = logging.getLogger("cleanplate")

_DETECT_WIDTH = 256  # detectors score mean pixel differences: a small frame scores the same, faster
_FPS = 24.0  # frame numbers are what counts; the rate only labels PySceneDetect's timecodes


@dataclass(frozen=True)
class Shot:
    """The shot a frame belongs to: ``key`` changes at every cut, ``shot_id`` names it in metadata."""

    key: int
    shot_id: str


def compile_pattern(pattern: str) -> re.Pattern[str] | None:
    """The ``shot_pattern`` regex (None when empty); it must have a named group ``shot``."""
    if not pattern:
        return None
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"shots.shot_pattern is not a valid regex: {exc}") from None
    if "shot" not in rx.groupindex:
        raise ConfigError("shots.shot_pattern needs a named group (?P<shot>...)")
    return rx


def parse_shot(frame_id: str, rx: re.Pattern[str] | None) -> str | None:
    """The scene id in ``frame_id`` (``scene0535_0012`` -> ``scene0535``), or None."""
    if rx is None:
        return None
    m = rx.match(frame_id)
    return m.group("shot") if m and m.group("shot") else None


class _Detector:
    """A PySceneDetect detector fed one frame at a time; ``push`` returns the cut positions it finds."""

    def __init__(self, tc: ShotsConfig) -> None:
        try:
            import scenedetect
            from scenedetect import AdaptiveDetector, ContentDetector
        except ImportError as exc:
            raise BackendUnavailableError(
                f"shot detection needs PySceneDetect ({exc}): pip install scenedetect-headless "
                "(or set shots.detector: none)"
            ) from None
        self._timecodes = _version(getattr(scenedetect, "__version__", "0")) >= (0, 7)
        self._FrameTimecode: Any = getattr(scenedetect, "FrameTimecode", None)
        if tc.detector == "adaptive":
            self.det: Any = AdaptiveDetector(adaptive_threshold=tc.adaptive_threshold,
                                             min_scene_len=tc.min_shot_length)
            self.latency = int(getattr(self.det, "event_buffer_length", 2) or 0)
        else:
            kwargs: dict[str, Any] = {"threshold": tc.scene_threshold, "min_scene_len": tc.min_shot_length}
            flash = _flash_filter()
            if flash is not None:  # suppress mode emits a cut on the frame that starts the shot, no delay
                kwargs["filter_mode"] = flash.Mode.SUPPRESS
            self.det = ContentDetector(**kwargs)
            self.latency = 0 if flash is not None else tc.min_shot_length
        self._last = -1

    def _tc(self, pos: int) -> Any:
        return self._FrameTimecode(pos, fps=_FPS) if self._timecodes else pos

    def push(self, pos: int, image: np.ndarray) -> list[int]:
        """Feed the frame at ``pos`` (HxWx3 uint8 RGB); returns positions that start a new shot."""
        h, w = image.shape[:2]
        if w > _DETECT_WIDTH:
            image = cv2.resize(image, (_DETECT_WIDTH, max(1, round(h * _DETECT_WIDTH / w))),
                               interpolation=cv2.INTER_AREA)
        bgr = np.ascontiguousarray(image[..., ::-1])  # PySceneDetect takes BGR
        self._last = pos
        try:
            return [_frame_num(c) for c in self.det.process_frame(self._tc(pos), bgr)]
        except Exception as exc:  # a detector hiccup must not end the stream: call it a cut, the safe side
            log.warning("shot detection failed at frame %d (%s): treated as a cut", pos, exc)
            return [pos]

    def finish(self) -> list[int]:
        if self._last < 0:
            return []
        try:
            return [_frame_num(c) for c in self.det.post_process(self._tc(self._last))]
        except Exception as exc:
            log.warning("shot detection failed at the end (%s)", exc)
            return []


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:2]) or (0,)


def _flash_filter() -> Any:
    for mod in ("scenedetect.detector", "scenedetect.scene_detector"):
        try:
            return __import__(mod, fromlist=["FlashFilter"]).FlashFilter
        except (ImportError, AttributeError):
            continue
    return None


def _frame_num(cut: Any) -> int:
    return int(getattr(cut, "frame_num", cut))


class ShotLabeller:
    """Gives every frame of a stream its :class:`Shot`, in order, with a bounded delay.

    ``label(items, frame_id, image, same_view)`` wraps an iterable of frames; ``frame_id`` and ``image``
    read the id and the HxWx3 uint8 RGB picture of an item; ``same_view(previous, item)``, if given,
    vetoes a detector's cut between two frames that show the same scenery. Items come back as
    ``(item, Shot)`` once no later frame can move a cut before them (the detector's latency, 0 for
    the content detector).
    """

    def __init__(self, tc: ShotsConfig) -> None:
        self.tc = tc
        self.rx = compile_pattern(tc.shot_pattern)
        self._new_detector: Callable[[], _Detector] | None = None
        if tc.detector != "none":
            _Detector(tc)  # fail now, not on the first frame, when PySceneDetect is missing
            self._new_detector = lambda: _Detector(tc)

    def label(self, items: Iterable[T], frame_id: Callable[[T], str], image: Callable[[T], np.ndarray],
              same_view: Callable[[T, T], bool] | None = None) -> Iterator[tuple[T, Shot]]:
        det = self._new_detector() if self._new_detector else None
        latency = det.latency if det else 0
        pending: deque[tuple[int, T, str | None, bool]] = deque()  # pos, item, parsed id, forced cut
        cuts: set[int] = set()
        key, n_in_scene, scene, count = -1, 0, None, 0
        prev_shape: tuple[int, ...] | None = None
        prev_parsed: str | None = None
        last: list[T] = []  # the previous frame released

        def release(upto: int) -> Iterator[tuple[T, Shot]]:
            nonlocal key, n_in_scene, scene, count
            while pending and pending[0][0] <= upto:
                pos, item, parsed, forced = pending.popleft()
                detected = pos in cuts and not (same_view is not None and last and same_view(last[0], item))
                last[:] = [item]
                if key < 0 or forced or detected:
                    key += 1
                    if parsed is not None and parsed == scene:
                        n_in_scene += 1
                    else:
                        n_in_scene, scene = 1, parsed
                    if parsed is None:
                        count += 1
                cuts.discard(pos)
                if parsed is None:
                    sid = f"shot{count - 1:04d}"
                else:
                    sid = parsed if n_in_scene == 1 else f"{parsed}.{n_in_scene}"
                yield item, Shot(key, sid)

        pos = -1
        for pos, item in enumerate(items):
            img = image(item)
            parsed = parse_shot(frame_id(item), self.rx)
            forced = pos > 0 and (img.shape != prev_shape or parsed != prev_parsed)
            if det is not None and forced and img.shape != prev_shape:
                det = self._new_detector() if self._new_detector else None  # a detector compares equal sizes
            prev_shape, prev_parsed = img.shape, parsed
            pending.append((pos, item, parsed, forced))
            if det is not None:
                cuts.update(c for c in det.push(pos, img) if c > 0)
            yield from release(pos - latency)
        if det is not None:
            cuts.update(c for c in det.finish() if c > 0)
        yield from release(pos)
