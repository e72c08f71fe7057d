"""The review web app (Starlette): the page, the run's shots as JSON, its files, and the writes.

Routes (all JSON bodies; a malformed request gets a 4xx and changes nothing):

* ``GET /``: the page; ``GET /api/shots``: shots (flagged first), frames, flags, scores, verdicts;
* ``GET /file/{kind}/{frame_id}``: a frame's plate, mask or original (found on the server);
* ``GET /out/{path}``: any file inside OUT (403 for a path that resolves outside it);
* ``POST /api/decision`` ``{"frame_id", "decision": accept | reject | null}``;
* ``POST /api/correction`` ``{"frame_id", "kind": point, "x", "y"}`` or
  ``{"frame_id", "kind": remove | add, "points": [[x, y], ...], "radius"}`` (frame pixels);
* ``POST /api/undo`` ``{"id"}``; ``POST /api/apply``: redo the shots the corrections touch.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from cleanplate.review.state import ReviewError, ReviewState

MAX_BODY = 1 << 20
"""Largest request body accepted (bytes)."""


async def _body(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise ReviewError(413, "request too large")
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ReviewError(400, f"malformed JSON: {exc}") from exc


def _error(exc: ReviewError) -> JSONResponse:
    return JSONResponse({"error": str(exc)}, status_code=exc.status)


def create_app(out: str | Path) -> Starlette:
    """The app for the run folder ``out`` (raises :class:`~cleanplate.errors.InputError` when it holds no run)."""
    state = ReviewState(out)
    page = resources.files("cleanplate.review").joinpath("page.html").read_text()

    async def index(_: Request) -> Response:
        return HTMLResponse(page)

    async def shots(_: Request) -> Response:
        try:
            return JSONResponse(await run_in_threadpool(state.shots))
        except ReviewError as exc:
            return _error(exc)

    async def frame_file(request: Request) -> Response:
        try:
            path = await run_in_threadpool(state.file, request.path_params["kind"], request.path_params["frame_id"])
        except ReviewError as exc:
            return _error(exc)
        return FileResponse(path, headers={"Cache-Control": "no-store"})

    async def out_file(request: Request) -> Response:
        try:
            path = state.inside(request.path_params["path"])
        except ReviewError as exc:
            return _error(exc)
        return FileResponse(path, headers={"Cache-Control": "no-store"})

    def writer(fn: Any) -> Any:
        async def handle(request: Request) -> Response:
            try:
                body = await _body(request)
                return JSONResponse(await run_in_threadpool(fn, body))
            except ReviewError as exc:
                return _error(exc)
        return handle

    async def apply(_: Request) -> Response:
        try:
            return JSONResponse(await run_in_threadpool(state.apply))
        except ReviewError as exc:
            return _error(exc)

    routes = [
        Route("/", index),
        Route("/api/shots", shots),
        Route("/file/{kind}/{frame_id}", frame_file),
        Route("/out/{path:path}", out_file),
        Route("/api/decision", writer(state.decide), methods=["POST"]),
        Route("/api/correction", writer(state.correct), methods=["POST"]),
        Route("/api/undo", writer(state.undo), methods=["POST"]),
        Route("/api/apply", apply, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.review = state
    return app


def serve(out: str | Path, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve the review app for ``out`` until interrupted (127.0.0.1 unless ``host`` says otherwise)."""
    import uvicorn

    uvicorn.run(create_app(out), host=host, port=port, log_level="warning")
