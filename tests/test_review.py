"""``cleanplate review`` (issue 21): the real app on a real DAVIS run, driven in headless Chromium.

The run: DAVIS bmx-trees frames 54-65 (432x240), where the default tracks lose most of the rider
behind the trees (recall 0.00-0.77), then 6 DAVIS tennis frames (a second shot).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, SHARED, need_chromium

BMX = [f"a_bmx_{i:05d}" for i in range(54, 66)]
TENNIS = [f"b_tennis_{i:05d}" for i in range(6)]
SIZE = (432, 240)
CLICK_FRAME = "a_bmx_00057"


def _truth(fid: str) -> np.ndarray:
    i = int(fid.rsplit("_", 1)[1])
    im = Image.open(SHARED / "data" / "davis_bmx-trees" / "masks" / f"{i:05d}.png").convert("L")
    return np.array(im.resize(SIZE, Image.NEAREST)) > 0


def _mask(out: Path, fid: str) -> np.ndarray:
    return np.array(Image.open(out / "masks" / f"{fid}.png")) > 0


def _recall(out: Path, fid: str) -> float:
    t = _truth(fid)
    return float((t & _mask(out, fid)).sum() / t.sum())


SCENERY_MARGIN = 6
"""px around the rider's truth mask (the run's dilation, 4 px at 240 lines, and 2 more) still counted as his."""


def _scenery(out: Path, fid: str) -> float:
    """What the mask takes beyond the rider (his truth grown by SCENERY_MARGIN px), over his area."""
    import cv2

    t = _truth(fid)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * SCENERY_MARGIN + 1,) * 2)
    near = cv2.dilate(t.astype(np.uint8), k) > 0
    return float((_mask(out, fid) & ~near).sum() / t.sum())


def _digests(out: Path) -> dict[str, str]:
    return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for sub in ("masks", "backgrounds", "instances", "thumbs") for p in sorted((out / sub).glob("*"))}


@pytest.fixture(scope="module")
def base_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from cleanplate.config import load_config
    from cleanplate.pipeline import run

    root = tmp_path_factory.mktemp("review")
    frames = root / "frames"
    frames.mkdir()
    for fid in BMX:
        src = SHARED / "data" / "davis_bmx-trees" / "frames" / f"{fid.rsplit('_', 1)[1]}.jpg"
        Image.open(src).convert("RGB").resize(SIZE, Image.LANCZOS).save(frames / f"{fid}.png")
    for fid, src in zip(TENNIS, sorted((SHARED / "data" / "davis_tennis" / "frames").iterdir()), strict=False):
        Image.open(src).convert("RGB").resize(SIZE, Image.LANCZOS).save(frames / f"{fid}.png")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLEANPLATE_HOME", str(root / "home"))
        # motion-born characters off: the default now finds the rider behind the trees by his motion
        # (recall >= 0.95 in all 12 frames); without it he is lost (0.0-0.77), a miss to correct by hand
        summary = run(frames, root / "out", load_config(overrides={"fill.method": "opencv-telea",
                                                                   "segment.shot.motion_born": False}))
    assert summary.failed_fraction == 0
    return root / "out"


@pytest.fixture
def out(base_run: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "out"
    shutil.copytree(base_run, dst)
    return dst


class Server:
    """The real app under uvicorn on a free local port, in a thread."""

    def __init__(self, out: Path) -> None:
        import uvicorn

        from cleanplate.review import create_app

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(create_app(out), host="127.0.0.1", port=self.port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        for _ in range(200):
            if self.server.started:
                break
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port}"

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        data = r.read()
        conn.close()
        return r.status, data

    def post(self, path: str, obj: object) -> tuple[int, dict]:
        status, data = self.request("POST", path, json.dumps(obj).encode())
        return status, json.loads(data)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def server(out: Path):
    s = Server(out)
    yield s
    s.stop()


def _all_files(out: Path) -> dict[str, str]:
    return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------ safety

def test_requests_outside_out_malformed_and_unknown_are_4xx_and_write_nothing(out: Path, server: Server):
    before = _all_files(out)
    secret = out.parent / "secret.txt"
    secret.write_text("not yours")
    for path in ("/out/../secret.txt", "/out/%2e%2e/secret.txt", "/out/..%2fsecret.txt", "/out//etc/passwd",
                 "/file/plate/..%2f..%2fsecret", "/file/original/nope", "/file/bogus/a_bmx_00054"):
        status, data = server.request("GET", path)
        assert 400 <= status < 500, (path, status)
        assert b"not yours" not in data
    assert server.request("GET", "/out/masks/a_bmx_00054.png")[0] == 200
    for path, body in (("/api/decision", b"{not json"), ("/api/correction", b"[1, 2"), ("/api/undo", b"")):
        assert 400 <= server.request("POST", path, body)[0] < 500
    bad = [("/api/decision", {"frame_id": "no_such_frame", "decision": "reject"}),
           ("/api/decision", {"frame_id": "a_bmx_00054", "decision": "delete"}),
           ("/api/decision", ["a_bmx_00054"]),
           ("/api/correction", {"frame_id": "no_such_frame", "kind": "point", "x": 5, "y": 5}),
           ("/api/correction", {"frame_id": "a_bmx_00054", "kind": "point", "x": 5000, "y": 5}),
           ("/api/correction", {"frame_id": "a_bmx_00054", "kind": "point", "x": "1", "y": 5}),
           ("/api/correction", {"frame_id": "a_bmx_00054", "kind": "erase", "x": 1, "y": 5}),
           ("/api/correction", {"frame_id": "a_bmx_00054", "kind": "remove", "points": [[1, 2, 3]], "radius": 4}),
           ("/api/correction", {"frame_id": "a_bmx_00054", "kind": "remove", "points": [[1, 2]], "radius": -4}),
           ("/api/undo", {"id": "c99"})]
    for path, body in bad:
        status, _ = server.post(path, body)
        assert 400 <= status < 500, (path, body, status)
    assert _all_files(out) == before  # nothing written, no review.json
    assert not (out / "review.json").exists()


def test_binds_to_localhost_by_default():
    import inspect

    from cleanplate._cli.extra_cmds import review
    from cleanplate.review import serve

    assert inspect.signature(serve).parameters["host"].default == "127.0.0.1"
    assert inspect.signature(review).parameters["host"].default == "127.0.0.1"


def test_review_of_a_folder_without_a_run_is_an_input_error(tmp_path: Path):
    from cleanplate._cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(["review", str(tmp_path)])
    assert exc.value.code == 3


# ------------------------------------------------------------------------------ decisions

def test_rejected_plate_is_not_exported_and_accepted_one_is(out: Path, server: Server):
    from cleanplate.dataset import export_lora

    meta = json.loads((out / "inpainting_metadata.json").read_text())["frames"]
    flagged = [f for f in TENNIS if (meta[f].get("checks") or {}).get("flags")]
    assert flagged, "the tennis plates are flagged by the default checks"
    assert server.post("/api/decision", {"frame_id": flagged[0], "decision": "accept"})[0] == 200
    assert server.post("/api/decision", {"frame_id": TENNIS[-1], "decision": "reject"})[0] == 200
    r = export_lora(out, out.parent / "ds1", use_dedupe=False)
    names = {p.stem for p in (out.parent / "ds1").rglob("*") if p.suffix in (".png", ".jpg")}
    excluded = json.loads(r.path.read_text())["excluded"]
    assert flagged[0] in names and flagged[0] not in excluded  # accepted: taken although flagged
    assert excluded[TENNIS[-1]].startswith("rejected in review")
    r2 = export_lora(out, out.parent / "ds2", use_dedupe=False, include_flagged=True)
    assert json.loads(r2.path.read_text())["excluded"][TENNIS[-1]].startswith("rejected in review")



# --------------------------------------------------------------------------- in the browser

def _click_point(fid: str) -> tuple[float, float]:
    """A pixel of the rider (DAVIS truth) nearest its centroid, in frame pixels."""
    ys, xs = np.nonzero(_truth(fid))
    k = int(np.argmin((xs - xs.mean()) ** 2 + (ys - ys.mean()) ** 2))
    return float(xs[k]), float(ys[k])


@pytest.mark.browser
def test_click_the_missed_rider_apply_and_export_in_chromium(out: Path, server: Server):
    from playwright.sync_api import sync_playwright

    from cleanplate.dataset import export_lora

    before = _digests(out)
    recall_before = {f: _recall(out, f) for f in BMX}
    scenery_before = {f: _scenery(out, f) for f in BMX}
    assert min(recall_before.values()) < 0.5  # the run (motion-born off) loses the rider behind the trees
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=need_chromium(), args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(90_000)  # a loaded 2-core machine decodes and draws slowly
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.url + "/")
        page.wait_for_function("window.reviewIdle && window.reviewIdle()")
        # flagged shots come first; walk with the keys to the bmx shot and the frame to correct
        shots = page.eval_on_selector_all("#shots .shot", "els => els.map(e => e.dataset.shot)")
        assert len(shots) == 2
        bmx = json.loads(server.request("GET", "/api/shots")[1])["shots"]
        bmx_index = next(i for i, s in enumerate(bmx) if s["frames"][0]["frame_id"].startswith("a_bmx"))
        for _ in range(bmx_index):
            page.keyboard.press("ArrowDown")
        for _ in range(BMX.index(CLICK_FRAME)):
            page.keyboard.press("ArrowRight")
        page.wait_for_function(f"document.getElementById('overlay').dataset.ready === '{CLICK_FRAME}'")
        assert CLICK_FRAME in page.inner_text("#title")
        box = page.locator("#overlay").bounding_box()
        x, y = _click_point(CLICK_FRAME)
        page.mouse.click(box["x"] + x * box["width"] / SIZE[0], box["y"] + y * box["height"] / SIZE[1])
        page.wait_for_function("document.getElementById('status').textContent.includes('press Enter')")
        review = json.loads((out / "review.json").read_text())
        c = review["corrections"][0]
        assert c["kind"] == "point" and c["frame_id"] == CLICK_FRAME and c["frames"] == BMX
        assert abs(c["x"] - x) <= 1.5 and abs(c["y"] - y) <= 1.5
        page.keyboard.press("Enter")
        page.wait_for_function("document.getElementById('status').textContent.startsWith('applied')", timeout=240_000)
        page.wait_for_function("window.reviewIdle()")
        # reject the last bmx plate with the keyboard
        for _ in range(len(BMX) - 1 - BMX.index(CLICK_FRAME)):
            page.keyboard.press("ArrowRight")
        page.keyboard.press("r")
        page.wait_for_function("document.getElementById('status').textContent.includes('reject')")
        page.keyboard.press("ArrowLeft")
        page.wait_for_function("window.reviewIdle()")
        shot = REPO / "docs" / "images" / "review.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot))
        assert not errors, errors
        browser.close()
    after = _digests(out)
    recall_after = {f: _recall(out, f) for f in BMX}
    scenery_after = {f: _scenery(out, f) for f in BMX}
    # the figure: one click, the rider's recall above 0.95 in every frame of the shot
    # (measured: 0.957-1.000, mean 0.991; before 0.000-0.771, mean 0.443)
    assert all(recall_after[f] > 0.95 for f in BMX), recall_after
    assert all(recall_after[f] >= recall_before[f] - 1e-6 for f in BMX), (recall_before, recall_after)
    # the track keeps off the trees: what it adds beyond the rider stays under half his area on
    # average (measured: 0.38; the flow-only track of before added 3.3 and lost him behind the trunk)
    added = np.mean(list(scenery_after.values())) - np.mean(list(scenery_before.values()))
    assert added < 0.5, (scenery_before, scenery_after)
    # only the corrected shot was rewritten: the tennis files are the same bytes
    assert {k: v for k, v in after.items() if "tennis" in k} == {k: v for k, v in before.items() if "tennis" in k}
    assert any(after[k] != before.get(k) for k in after if "a_bmx" in k and k.startswith("masks/"))
    assert json.loads((out / "review.json").read_text())["decisions"] == {BMX[-1]: "reject"}
    r = export_lora(out, out.parent / "ds", use_dedupe=False, include_flagged=True)
    data = json.loads(r.path.read_text())
    assert data["excluded"][BMX[-1]].startswith("rejected in review")
    exported = {p.stem: p for p in (out.parent / "ds").rglob("*") if p.suffix in (".png", ".jpg")}
    got = next(p for stem, p in exported.items() if CLICK_FRAME in stem)
    plate = np.asarray(Image.open(out / "backgrounds" / f"{CLICK_FRAME}.jpg").convert("RGB"), np.int16)
    assert np.abs(np.asarray(Image.open(got).convert("RGB").resize(SIZE), np.int16) - plate).mean() < 3
    assert shot.is_file() and shot.stat().st_size > 10_000


# ----------------------------------------------------------------------------- brush remove

def test_brushed_scenery_stays_out_of_every_frame_of_the_track(out: Path, server: Server):
    from cleanplate.config import load_config
    from cleanplate.io.frames import load_image
    from cleanplate.motion.shot_model import ShotModel, small_frame
    from cleanplate.segment.corrections import brush_mask, carry_by_registration

    k = BMX.index(CLICK_FRAME)
    m = _mask(out, CLICK_FRAME)
    ys, xs = np.nonzero(m)
    pts = [[float(x), float(y)] for x, y in zip(xs[::max(1, len(xs) // 20)], ys[::max(1, len(ys) // 20)], strict=True)][:20]
    status, c = server.post("/api/correction", {"frame_id": CLICK_FRAME, "kind": "remove", "points": pts, "radius": 6})
    assert status == 200 and c["frames"] == BMX
    before = _digests(out)
    status, res = server.post("/api/apply", {})
    assert status == 200 and res["redone"] == len(BMX)
    frames = Path(json.loads((out / "run.json").read_text())["segment"]["input"]["path"])
    images = [load_image(frames / f"{f}.png") for f in BMX]
    # the shot registered over all its frames, as a brushed correction is carried (every window)
    sc = load_config().shots
    model = ShotModel.build([small_frame(im, sc.work_side) for im in images], sc, BMX)
    region = carry_by_registration(brush_mask(pts, 6, (SIZE[1], SIZE[0])), k, model, len(BMX))
    assert region[k].sum() > 500 and (m & region[k]).sum() > 300  # the brush covered masked pixels
    for f, r in zip(BMX, region, strict=True):
        assert not (_mask(out, f) & r).any(), f
    after = _digests(out)
    assert {k2: v for k2, v in after.items() if "tennis" in k2} == {k2: v for k2, v in before.items() if "tennis" in k2}


# -------------------------------------------------------------------- kill, rerun, run again

def _apply_in_subprocess(out: Path) -> subprocess.Popen:
    code = "import sys; from cleanplate.review import ReviewState; ReviewState(sys.argv[1]).apply()"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.Popen([sys.executable, "-c", code, str(out)], env=env)


def test_sigkill_during_apply_then_rerun_equals_uninterrupted_and_run_keeps_corrections(out: Path, tmp_path: Path):
    from cleanplate.config import Config
    from cleanplate.io.review import load_review
    from cleanplate.pipeline import run
    from cleanplate.review import ReviewState

    state = ReviewState(out)
    x, y = _click_point(CLICK_FRAME)
    state.correct({"frame_id": CLICK_FRAME, "kind": "point", "x": x, "y": y})
    state.decide({"frame_id": TENNIS[0], "decision": "reject"})
    clean = tmp_path / "clean"
    shutil.copytree(out, clean)
    ReviewState(clean).apply()  # uninterrupted
    p = _apply_in_subprocess(out)
    deadline = time.time() + 120
    seg = out / ".cleanplate" / "segment.jsonl"
    size0 = seg.stat().st_size
    while time.time() < deadline and seg.stat().st_size == size0 and p.poll() is None:
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    ReviewState(out).apply()  # the rerun resumes
    assert _digests(out) == _digests(clean)
    corrected = {f: _mask(out, f) for f in BMX}
    # a later `cleanplate run --force` on the same output applies review.json again
    data = json.loads((out / "run.json").read_text())
    run(data["segment"]["input"]["path"], out, Config.model_validate(data["config"]), force=True)
    for f in BMX:
        assert np.array_equal(_mask(out, f), corrected[f]), f
    assert load_review(out).decisions == {TENNIS[0]: "reject"}
    assert min(_recall(out, f) for f in BMX) > 0.95


def test_a_click_covers_every_window_of_a_shot_longer_than_a_window(tmp_path: Path):
    """shots.max_frames 8: the 12-frame bmx shot is segmented in two windows (4 and 8 frames), the
    click is in the first; the track is followed through both (and the frames before the click)."""
    from cleanplate.config import load_config
    from cleanplate.pipeline import run
    from cleanplate.records import FrameRecord
    from cleanplate.review import ReviewState
    from cleanplate.stages.review import REVIEW_TRACK_BASE
    from cleanplate.stages.shots import shot_windows

    frames = tmp_path / "frames"
    frames.mkdir()
    for fid in BMX:
        src = SHARED / "data" / "davis_bmx-trees" / "frames" / f"{fid.rsplit('_', 1)[1]}.jpg"
        Image.open(src).convert("RGB").resize(SIZE, Image.LANCZOS).save(frames / f"{fid}.png")
    out = tmp_path / "out"
    config = load_config(overrides={"fill.method": "opencv-telea", "shots.max_frames": 8})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLEANPLATE_HOME", str(tmp_path / "home"))
        run(frames, out, config)
        meta = json.loads((out / "instances_metadata.json").read_text())["frames"]
        assert len({meta[f]["shot_id"] for f in BMX}) == 1  # one shot ...
        recs = [FrameRecord(f, i, f, shot_id="s") for i, f in enumerate(BMX)]
        windows = [[r.frame_id for r in w] for w in shot_windows(recs, 8)]
        assert len(windows) == 2 and CLICK_FRAME in windows[0]  # ... cut into two windows
        before = {f: _recall(out, f) for f in BMX}
        x, y = _click_point(CLICK_FRAME)
        state = ReviewState(out)
        state.correct({"frame_id": CLICK_FRAME, "kind": "point", "x": x, "y": y})
        state.apply()
    after = {f: _recall(out, f) for f in BMX}
    assert max(before[f] for f in windows[1]) < 0.5, before  # the default lost him in the second window
    assert all(after[f] > 0.95 for f in BMX), after  # measured 0.981-1.000, mean 0.993 (before: 0.000 in the second)
    meta = json.loads((out / "instances_metadata.json").read_text())["frames"]
    for f in BMX:
        assert any(i.get("track_id") == REVIEW_TRACK_BASE for i in meta[f]["instances"]), f

    # a region brushed out in the second window leaves the first window's frames too: brush, on
    # the last frame, where the rider is in the clicked frame (carried there along the shot)
    import cv2

    from cleanplate import masks as M
    from cleanplate.io.frames import load_image
    from cleanplate.motion.shot_model import ShotModel, small_frame

    sc = config.shots
    small = [small_frame(load_image(frames / f"{f}.png"), sc.work_side) for f in BMX]
    model = ShotModel.build(small, sc, BMX)
    k, last = BMX.index(CLICK_FRAME), len(BMX) - 1
    assert last not in [BMX.index(f) for f in windows[0]]
    rider = _mask(out, CLICK_FRAME) & M.dilate(_truth(CLICK_FRAME), 2)
    ys, xs = np.nonzero(rider)
    pick = np.linspace(0, len(xs) - 1, 40).astype(int)
    there = cv2.perspectiveTransform(np.float32(np.stack([xs[pick], ys[pick]], 1))[:, None],
                                     model.scaled(k, last, SIZE))[:, 0]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLEANPLATE_HOME", str(tmp_path / "home"))
        state = ReviewState(out)
        state.correct({"frame_id": BMX[last], "kind": "remove", "points": there.tolist(), "radius": 10})
        state.apply()
    region = brush_in(model, there, 10, last, k)
    assert (rider & region).sum() > 0.5 * rider.sum()  # the brush, carried back, covers the rider there
    assert not (_mask(out, CLICK_FRAME) & region).any()  # and the clicked frame, first window, lost it


def brush_in(model, points, radius: float, src: int, dst: int) -> np.ndarray:
    """The region brushed on frame ``src`` as it lies in frame ``dst`` (along ``model``)."""
    import cv2

    from cleanplate.segment.corrections import brush_mask

    region = brush_mask([list(map(float, p)) for p in points], radius, (SIZE[1], SIZE[0])).astype(np.uint8)
    return cv2.warpPerspective(region, model.scaled(src, dst, SIZE), SIZE, flags=cv2.INTER_NEAREST) > 0


def test_report_links_each_frame_to_the_review_app_and_stays_read_only(out: Path):
    from cleanplate.report import write_report

    (out / "review.json").write_text(json.dumps({"decisions": {TENNIS[0]: "reject"}}))
    before = _digests(out)
    html = write_report(out).read_text()
    assert "http://127.0.0.1:8765/#frame=" in html and 'class="review-link" data-frame="' in html
    assert _digests(out) == before and json.loads((out / "review.json").read_text())["decisions"] == {TENNIS[0]: "reject"}
    assert "rejected in review" in html  # the report's verdict agrees with export-lora
