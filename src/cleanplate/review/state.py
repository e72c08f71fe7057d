"""What the review app knows about a finished run: its shots, plates, files and the review file.

:class:`ReviewState` reads a run folder (OUT) once per request that needs it: the plates and their
verdict (:func:`cleanplate.qa.verdict.verdicts`, the one export-lora uses), the shots they belong
to (flagged shots first), and ``OUT/review.json``. Every file it serves is resolved on the server
from a frame id it knows; a path the browser sends is only accepted when it resolves inside OUT.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cleanplate.config import Config
from cleanplate.dataset.plates import load_plates
from cleanplate.dataset.ranking import segment_records
from cleanplate.errors import InputError
from cleanplate.io.manifest import Manifest
from cleanplate.io.outputs import Layout
from cleanplate.io.review import DECISIONS, Review, check_correction, load_review, save_review
from cleanplate.qa.plate import Plate
from cleanplate.qa.verdict import verdicts

FILE_KINDS = ("plate", "mask", "original")


class ReviewError(Exception):
    """A request the app refuses: ``status`` is the HTTP status to answer with (4xx)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ReviewState:
    """One run folder under review. Writes (review.json, apply) are serialised by one lock."""

    def __init__(self, out: str | Path) -> None:
        self.root = Path(out).resolve()
        if not (self.root / "inpainting_metadata.json").is_file():
            raise InputError(f"{self.root} holds no finished run (no inpainting_metadata.json): run `cleanplate run` first")
        self.layout = Layout(self.root)
        self.lock = threading.Lock()
        self.applying = False

    # ------------------------------------------------------------------------------- reading
    def plates(self) -> list[Plate]:
        return load_plates(self.root)

    def review(self) -> Review:
        try:
            return load_review(self.root)
        except InputError as exc:
            raise ReviewError(409, str(exc)) from exc

    def shots(self) -> dict[str, Any]:
        """The run as the page shows it: shots (flagged first), their frames, flags, scores, verdicts."""
        plates = self.plates()
        review = self.review()
        seg = segment_records(self.root)
        reasons = verdicts(plates, seg, decisions=review.decisions)
        shots: dict[str, dict[str, Any]] = {}
        for p in plates:
            sid = str(p.shot_id if p.shot_id is not None else seg.get(p.frame_id, (None,))[0] or "shot?")
            s = shots.setdefault(sid, {"shot_id": sid, "frames": [], "flagged": 0, "corrections": 0})
            checks = p.checks or {}
            scores = {k: v for k, v in checks.items() if isinstance(v, int | float) and not isinstance(v, bool)}
            s["frames"].append({
                "frame_id": p.frame_id, "status": p.status, "flags": list(p.flags), "scores": scores,
                "coverage": round(p.coverage, 4), "decision": review.decisions.get(p.frame_id),
                "verdict": reasons.get(p.frame_id), "shape": list(p.shape) if p.shape else None})
            if p.flags or reasons.get(p.frame_id):
                s["flagged"] += 1
        for c in review.corrections:
            if c["shot_id"] in shots:
                shots[c["shot_id"]]["corrections"] += 1
        ordered = sorted(shots.values(), key=lambda s: (-s["flagged"], s["frames"][0]["frame_id"]))
        return {"out": str(self.root), "shots": ordered, "corrections": review.corrections,
                "applying": self.applying}

    def frame_ids(self) -> dict[str, Plate]:
        return {p.frame_id: p for p in self.plates()}

    def shot_frames(self, frame_id: str) -> tuple[str, list[str]]:
        """The shot of ``frame_id`` and its frames in order (404 for an unknown frame)."""
        plates = self.plates()
        seg = segment_records(self.root)
        by_id = {p.frame_id: p for p in plates}
        if frame_id not in by_id:
            raise ReviewError(404, f"unknown frame id: {frame_id}")

        def shot(p: Plate) -> str:
            return str(p.shot_id if p.shot_id is not None else seg.get(p.frame_id, (None,))[0])

        sid = shot(by_id[frame_id])
        return sid, [p.frame_id for p in plates if shot(p) == sid]

    def inside(self, rel: str) -> Path:
        """``OUT/rel`` when it resolves to a file inside OUT (403 outside, 404 missing)."""
        try:
            path = (self.root / rel).resolve()
        except (OSError, ValueError) as exc:
            raise ReviewError(400, "bad path") from exc
        if not path.is_relative_to(self.root):
            raise ReviewError(403, "outside the run folder")
        if not path.is_file():
            raise ReviewError(404, "no such file")
        return path

    def file(self, kind: str, frame_id: str) -> Path:
        """The file of ``kind`` (plate, mask, original) of a known frame, found on the server."""
        if kind not in FILE_KINDS:
            raise ReviewError(404, f"unknown file kind: {kind}")
        p = self.frame_ids().get(frame_id)
        if p is None:
            raise ReviewError(404, f"unknown frame id: {frame_id}")
        if kind == "plate" and p.path is not None:
            return self.inside(str(Path(p.path).resolve().relative_to(self.root)))
        if kind == "mask":
            return self.inside(f"masks/{frame_id}.png")
        if kind == "original":
            src = self._original(frame_id)
            if src is not None:
                return src
            return self.inside(f"thumbs/{frame_id}.jpg")
        raise ReviewError(404, "no such file")

    def _original(self, frame_id: str) -> Path | None:
        """The input frame the run read (its manifest record names it; the server's word, not the browser's)."""
        man = Manifest(self.layout.state / "segment.jsonl")
        try:
            rec = man.read(frame_id)
        finally:
            man.close()
        for key in ("path", "source"):
            v = (rec or {}).get(key)
            if isinstance(v, str) and Path(v).is_file():
                return Path(v)
        return None

    # ------------------------------------------------------------------------------- writing
    def decide(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("frame_id"), str):
            raise ReviewError(422, "expected {\"frame_id\": ..., \"decision\": accept | reject | null}")
        decision = body.get("decision")
        if decision is not None and decision not in DECISIONS:
            raise ReviewError(422, "decision must be accept, reject or null")
        fid = body["frame_id"]
        if fid not in self.frame_ids():
            raise ReviewError(404, f"unknown frame id: {fid}")
        with self.lock:
            review = self.review()
            if decision is None:
                review.decisions.pop(fid, None)
            else:
                review.decisions[fid] = decision
            save_review(self.root, review)
        return {"frame_id": fid, "decision": decision}

    def correct(self, body: Any) -> dict[str, Any]:
        """Record a correction made on one frame; it applies to the frame's whole shot."""
        if not isinstance(body, dict) or not isinstance(body.get("frame_id"), str):
            raise ReviewError(422, "expected a correction object with a frame_id")
        sid, frames = self.shot_frames(body["frame_id"])
        p = self.frame_ids()[body["frame_id"]]
        try:
            c = check_correction({**body, "shot_id": sid, "frames": frames})
        except InputError as exc:
            raise ReviewError(422, str(exc)) from exc
        h, w = p.shape or (1 << 30, 1 << 30)
        xs = [c["x"]] if c["kind"] == "point" else [q[0] for q in c["points"]]
        ys = [c["y"]] if c["kind"] == "point" else [q[1] for q in c["points"]]
        if not all(0 <= x < w for x in xs) or not all(0 <= y < h for y in ys):
            raise ReviewError(422, f"coordinates outside the {w}x{h} frame")
        with self.lock:
            review = self.review()
            c["id"] = f"c{len(review.corrections) + 1}"
            review.corrections.append(c)
            save_review(self.root, review)
        return c

    def undo(self, body: Any) -> dict[str, Any]:
        """Remove a correction by id (it is undone at the next apply)."""
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            raise ReviewError(422, "expected {\"id\": ...}")
        with self.lock:
            review = self.review()
            kept = [c for c in review.corrections if c["id"] != body["id"]]
            if len(kept) == len(review.corrections):
                raise ReviewError(404, f"no correction {body['id']}")
            review.corrections = kept
            save_review(self.root, review)
        return {"removed": body["id"]}

    def apply(self, runner: Callable[[str, Path, Config], Any] | None = None) -> dict[str, Any]:
        """Redo what the corrections touch: ``pipeline.run`` on the run's input with its own config,
        without ``force`` (the frames whose corrections changed are redone, the rest is skipped)."""
        from cleanplate.pipeline import run as run_pipeline

        try:
            data = json.loads((self.root / "run.json").read_text())
            config = Config.model_validate(data["config"])
            source = (data.get("segment") or {}).get("input") or {}
            input_path = source.get("path")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ReviewError(409, f"run.json cannot be read: {exc}") from exc
        if not input_path:
            raise ReviewError(409, "run.json does not say where the frames are")
        if not self.lock.acquire(blocking=False):
            raise ReviewError(409, "an apply is already running")
        try:
            self.applying = True
            self.review()  # a broken review.json is refused before anything is redone
            summary = (runner or run_pipeline)(input_path, self.root, config)
        finally:
            self.applying = False
            self.lock.release()
        seg = summary.segment
        return {"frames": summary.frames_total,
                "redone": (seg.total - seg.skipped) if seg is not None else None,
                "failed": len(summary.failed_frames)}
