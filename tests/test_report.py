"""The report, compare sheets and the browser check (issue #5).

``cleanplate run`` (in-process CLI) on 4 real Sintel frames plus one corrupt frame, then the
report it wrote is opened in headless Chromium: every image must load and the console must stay
silent. A control page with a missing image and a script error proves the browser check can fail.
Chromium is required in CI (``$CI``); elsewhere the browser tests are skipped without it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from cleanplate._cli.common import State
from cleanplate._cli.main import app
from cleanplate.dataset import export_lora
from cleanplate.report import compare, write_report
from cleanplate.report.html import load_frames, svg_histogram
from conftest import SINTEL, need_chromium


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(State, "debug", False)


def _invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def run_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run: 4 Sintel frames + 1 empty (corrupt) frame, opencv-telea, report written by ``run``."""
    root = tmp_path_factory.mktemp("report")
    frames = root / "frames"
    frames.mkdir()
    for p in sorted(SINTEL.glob("*.png"))[:4]:
        shutil.copy(p, frames / p.name)
    (frames / "frame_9999.png").write_bytes(b"")  # fails to decode: a failed frame
    out = root / "out"
    with pytest.MonkeyPatch.context() as mp:
        for flag in ("debug", "quiet", "log_json"):  # --quiet sets a process-wide flag: put it back after
            mp.setattr(State, flag, getattr(State, flag))
        mp.setenv("CLEANPLATE_HOME", str(root / "home"))
        mp.setenv("CLEANPLATE_OFFLINE", "1")
        res = _invoke("--quiet", "run", frames, "-o", out, "--method", "opencv-telea", "--max-failed", "0.5")
    assert res.exit_code == 0, res.output
    return out


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.srcs: list[str] = []
        self.status: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "img":
            self.srcs.append(a.get("src") or "")
        if a.get("id") == "load-status":
            self.status = {k: v or "" for k, v in a.items()}


def _parse(html: str) -> _Images:
    p = _Images()
    p.feed(html)
    return p


# ------------------------------------------------------------------------------------- browser

def open_in_chromium(page: Path, profile: Path) -> tuple[dict[str, str], list[str]]:
    """Load ``page`` in headless Chromium; return the page's load-status attributes and console lines.

    The page's own script writes, on the load event, how many images it has and how many did not
    load into ``#load-status``; ``--dump-dom`` returns the DOM after that. Console messages
    (console.* calls, uncaught errors) go to stderr as ``...:CONSOLE...`` with ``--enable-logging``.
    """
    cmd = [need_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-extensions", "--mute-audio", f"--user-data-dir={profile}", "--enable-logging=stderr",
           "--v=0", "--virtual-time-budget=10000", "--dump-dom", page.resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [ln for ln in proc.stderr.splitlines() if ":CONSOLE" in ln]
    return _parse(proc.stdout).status, console


@pytest.mark.browser
def test_report_opens_in_chromium_with_every_image_loaded(run_out: Path, tmp_path: Path):
    page = run_out / "report.html"
    n_img = len(_parse(page.read_text()).srcs)
    assert n_img >= 4 * 3  # 4 ok frames x (original, mask, plate)
    status, console = open_in_chromium(page, tmp_path / "profile")
    assert status.get("data-state") == "done", status
    assert status.get("data-total") == str(n_img)
    assert status.get("data-broken") == "0", status
    assert console == []


@pytest.mark.browser
def test_report_with_checks_opens_in_chromium(run_out: Path, tmp_path: Path):
    out = tmp_path / "out"
    shutil.copytree(run_out, out)
    res = _invoke("report", out, "--checks", "--sample", "2")
    assert res.exit_code == 0, res.output
    status, console = open_in_chromium(out / "report.html", tmp_path / "profile")
    assert status.get("data-broken") == "0" and int(status["data-total"]) >= 2 * 3 + 3, status
    assert console == []


@pytest.mark.browser
def test_browser_check_catches_a_missing_image_and_a_script_error(run_out: Path, tmp_path: Path):
    out = tmp_path / "out"
    shutil.copytree(run_out, out)
    victim = next((out / "report_files").glob("*_plate.jpg"))
    page = out / "report.html"
    refs = _parse(page.read_text()).srcs.count(f"report_files/{victim.name}")  # sample + worst-flagged lists
    assert refs >= 1
    victim.unlink()
    page.write_text(page.read_text().replace("</body>", "<script>notDefinedAnywhere();</script></body>"))
    status, console = open_in_chromium(page, tmp_path / "profile")
    assert status.get("data-state") == "done"
    assert status.get("data-broken") == str(refs), status
    assert any("notDefinedAnywhere" in ln for ln in console), console


# -------------------------------------------------------------------------------------- report

def test_run_writes_a_self_contained_report(run_out: Path):
    page = run_out / "report.html"
    html = page.read_text()
    parsed = _parse(html)
    for src in parsed.srcs:  # every image is a relative file beside the report, and it exists
        assert not src.startswith(("/", "file:", "http")), src
        assert (run_out / src).is_file(), src
        assert cv2.imread(str(run_out / src)) is not None
    assert not re.search(r"""(src|href)=["']https?://""", html)  # nothing fetched online
    assert "<svg" in html and html.count("<svg") >= 3  # coverage, instances, characters histograms
    assert "fill success" in html and "failed frames" in html and "images/s" in html
    assert "frame_9999" in html and "segment:" in html  # the failed frame and its reason
    assert "Failed frames (1)" in html
    frames, seg, fill, run = load_frames(run_out)
    assert len(frames) == 5 and sum(1 for f in frames if f.failed) == 1


def test_report_handles_missing_files(run_out: Path, tmp_path: Path):
    out = tmp_path / "out"
    shutil.copytree(run_out, out)
    (out / "backgrounds" / "frame_0017.jpg").unlink()
    (out / "masks" / "frame_0018.png").unlink()
    meta = json.loads((out / "inpainting_metadata.json").read_text())
    meta["frames"]["frame_0019"]["source"] = str(tmp_path / "gone.png")
    seg = json.loads((out / "instances_metadata.json").read_text())
    seg["frames"]["frame_0019"]["source"] = str(tmp_path / "gone.png")
    (out / "inpainting_metadata.json").write_text(json.dumps(meta))
    (out / "instances_metadata.json").write_text(json.dumps(seg))
    html = write_report(out, sample=16).read_text()
    parsed = _parse(html)
    assert all((out / s).is_file() for s in parsed.srcs)
    assert "Plates missing on disk (1)" in html and "frame_0017" in html
    assert html.count("not available") >= 2  # frame_0018's mask overlay, frame_0019's original
    assert "frame_0016" in html


@pytest.mark.parametrize("drop", ["instances_metadata.json", "inpainting_metadata.json", "run.json"])
def test_report_with_one_metadata_file_missing(run_out: Path, tmp_path: Path, drop: str):
    out = tmp_path / "out"
    shutil.copytree(run_out, out)
    (out / drop).unlink()
    html = write_report(out, sample=2).read_text()
    assert "No metadata" not in html
    assert len(re.findall(r'<div class="frame-head">', html.split("Random sample")[1])) == 2
    assert all((out / s).is_file() for s in _parse(html).srcs)


def test_report_without_any_metadata(tmp_path: Path):
    html = write_report(tmp_path).read_text()
    assert "No metadata" in html and "No frame has a plate" in html


def test_report_with_checks_lists_flagged_frames(run_out: Path, tmp_path: Path):
    out = tmp_path / "out"
    shutil.copytree(run_out, out)
    meta = json.loads((out / "inpainting_metadata.json").read_text())
    ok = [r for r in meta["frames"].values() if r["status"] == "ok"]
    assert ok and all({"residue", "flat", "seam", "flags"} <= set(r["checks"]) for r in ok)  # stored by the run
    stored = write_report(out, sample=2, worst=2).read_text()
    assert re.search(r"flat — (\d+) flagged", stored)
    for r in ok:  # an output written before the checks existed: the report scores it itself
        del r["checks"]
    (out / "inpainting_metadata.json").write_text(json.dumps(meta))
    html = write_report(out, sample=2, worst=2, compute_checks=True).read_text()
    assert "4 frames were scored while writing this report" in html
    m = re.search(r"flat — (\d+) flagged", html)  # OpenCV smears over the girl's large mask
    assert m and int(m.group(1)) >= 3, html[:2000]
    assert "residue — " in html and "seam — " in html


def test_report_sample_is_seeded(run_out: Path, tmp_path: Path):
    out = tmp_path / "out"
    shutil.copytree(run_out, out)

    def ids(seed: int) -> list[str]:
        html = write_report(out, sample=2, seed=seed).read_text()
        part = html.split("Random sample")[1]
        return re.findall(r'<div class="frame-head"><code>([^<]+)</code>', part)

    first = ids(3)
    assert len(first) == 2 and first == ids(3)
    assert {i for s in range(6) for i in ids(s)} > set(first)  # other seeds draw other frames


def test_report_shows_temporal_keys(run_out: Path, tmp_path: Path):
    out = tmp_path / "out"
    shutil.copytree(run_out, out)
    meta = json.loads((out / "inpainting_metadata.json").read_text())
    for k, rec in enumerate(r for r in meta["frames"].values() if r["status"] == "ok"):
        rec["extra"] = {"temporal_fraction": 0.2 * k, "inpainted_fraction": 1 - 0.2 * k}
    (out / "inpainting_metadata.json").write_text(json.dumps(meta))
    html = write_report(out).read_text()
    assert "filled from other frames (mean)" in html and "30.0 %" in html  # mean of 0, .2, .4, .6
    assert "invented by the inpainter (mean)" in html
    assert "share filled from other frames" in html  # its histogram


def test_svg_histogram_counts():
    svg = svg_histogram([0.0, 0.05, 0.5, 1.0], [0.0, 0.5, 1.0], ["low", "high"], "t")
    assert "<title>low: 2</title>" in svg and "<title>high: 2</title>" in svg  # 1.0 lands in the last bin


# ------------------------------------------------------------------------------------- compare

def _other_version(run_out: Path, tmp_path: Path) -> Path:
    new = tmp_path / "new"
    shutil.copytree(run_out / "backgrounds", new / "backgrounds")
    p = new / "backgrounds" / "frame_0017.jpg"
    img = cv2.imread(str(p))
    cv2.imwrite(str(p), np.clip(img.astype(np.int16) + 20, 0, 255).astype(np.uint8))
    (new / "backgrounds" / "frame_0016.jpg").unlink()  # only in OLD
    return new


def test_compare_writes_png_and_html(run_out: Path, tmp_path: Path):
    new = _other_version(run_out, tmp_path)
    res = compare(run_out, new, tmp_path / "sheet.png", sample=0, width=200)
    assert res.frames == ["frame_0017", "frame_0018", "frame_0019"]
    assert (res.common, res.only_old, res.only_new) == (3, 1, 0)
    sheet = cv2.imread(str(res.png))
    row_h = round(436 * 200 / 1024)
    assert sheet.shape[1] == 400 and sheet.shape[0] == 30 + 3 * (24 + row_h)
    html = res.html.read_text()
    assert html.count('class="pair"') == 3
    assert all((res.html.parent / s).is_file() for s in _parse(html).srcs)
    assert re.search(r"frame_0017</code> <span class=\"muted\">mean \|new − old\| = (1\d|20)\.\d\d", html)
    assert "frame_0018</code> <span class=\"muted\">mean |new − old| = 0.00" in html


def test_compare_cli_pattern_and_sample(run_out: Path, tmp_path: Path):
    new = _other_version(run_out, tmp_path)
    res = _invoke("compare", run_out, new, "-o", tmp_path / "c.png", "--pattern", "*18", "--sample", "5")
    assert res.exit_code == 0, res.output
    html = (tmp_path / "c.html").read_text()
    assert html.count('class="pair"') == 1 and "frame_0018" in html
    res = _invoke("compare", run_out, new, "--sample", "1", "--seed", "2")
    assert res.exit_code == 0 and (new / "compare.png").is_file()  # default: NEW/compare.png
    assert (new / "compare.html").read_text().count('class="pair"') == 1


def test_compare_of_bare_plate_folders_writes_beside_them(run_out: Path, tmp_path: Path):
    new = _other_version(run_out, tmp_path)
    res = compare(run_out / "backgrounds", new / "backgrounds", sample=2)
    assert res.png == new / "backgrounds_compare.png" and res.png.is_file()
    assert not list((new / "backgrounds").glob("*compare*"))  # not among the plates


def test_compare_without_common_frames_is_an_input_error(run_out: Path, tmp_path: Path):
    res = _invoke("compare", run_out, tmp_path, "--pattern", "nothing*")
    assert res.exit_code == 3
    assert "no frame names" in res.stderr


@pytest.mark.browser
def test_compare_sheet_opens_in_chromium(run_out: Path, tmp_path: Path):
    res = compare(run_out, _other_version(run_out, tmp_path), tmp_path / "sheet.png", sample=0, width=200)
    status, console = open_in_chromium(res.html, tmp_path / "profile")
    assert status.get("data-broken") == "0" and status.get("data-total") == str(3 * 4)
    assert console == []


@pytest.mark.browser
def test_report_shows_the_dataset_steps(run_out: Path, tmp_path: Path):
    out = tmp_path / "out"
    shutil.copytree(run_out, out)
    res = _invoke("--quiet", "dedupe", out)  # the CLI rewrites an existing report after each step
    assert res.exit_code == 0, res.output
    res = _invoke("--quiet", "organize", out, "-k", "1")
    assert res.exit_code == 0, res.output
    html = (out / "report.html").read_text()
    assert "LoRA dataset" in html and "Near-duplicates" in html and "Scene clusters" in html
    sheets = [s for s in _parse(html).srcs if "cluster" in s]
    assert len(sheets) == 1 and (out / sheets[0]).is_file()
    status, console = open_in_chromium(out / "report.html", tmp_path / "profile")
    assert status.get("data-broken") == "0" and console == [], status


# ------------------------------------------------------------------- a 500-frame report (issue 12)

N_BIG = 500


def _big_output(root: Path) -> tuple[Path, dict[str, dict]]:
    """A synthetic output folder of a 500-frame *video* run: tiny plates, masks and thumbs/ originals,
    10 shots of 50 frames named as the shots stage names them (``shot0003``, on both records), check
    scores that vary, 5 failed frames. Returns the folder and the fill records."""
    out = root / "big"
    for d in ("backgrounds", "masks", "thumbs"):
        (out / d).mkdir(parents=True)
    rng = np.random.default_rng(0)
    seg, fill = {}, {}
    for k in range(N_BIG):
        fid = f"clip_{k:05d}"
        src = f"{root}/clip.mp4#{k}"
        shot = k // 50
        failed = k % 100 == 99
        seg[fid] = {"index": k, "source": src, "status": "ok", "shot_id": f"shot{shot:04d}", "n_instances": 1 + k % 3,
                    "n_characters": 1 + k % 2, "coverage": round(0.05 + 0.3 * rng.random(), 4),
                    "outputs": [f"masks/{fid}.png", f"thumbs/{fid}.jpg"]}
        colour = np.array([(37 * shot) % 255, (5 * k) % 255, 120], np.uint8)
        img = np.tile(colour, (18, 32, 1))
        cv2.imwrite(str(out / "thumbs" / f"{fid}.jpg"), img[..., ::-1])
        cv2.imwrite(str(out / "masks" / f"{fid}.png"), np.where(np.arange(32)[None, :] < 10, 255, 0).astype(np.uint8)
                    .repeat(18, 0))
        if failed:
            fill[fid] = {"index": k, "source": src, "status": "failed", "error": "fill failed: synthetic",
                         "shot_id": f"shot{shot:04d}"}
            continue
        cv2.imwrite(str(out / "backgrounds" / f"{fid}.jpg"), (255 - img)[..., ::-1])
        scores = {"residue": round(float(rng.random()) * 0.2, 4), "flat": round(float(rng.random()) * 0.3, 4),
                  "seam": round(0.5 + float(rng.random()), 4)}
        flags = [c for c, t in (("residue", 0.05), ("flat", 0.25), ("seam", 1.35)) if scores[c] > t]
        fill[fid] = {"index": k, "source": src, "status": "ok", "coverage": seg[fid]["coverage"],
                     "outputs": [f"backgrounds/{fid}.jpg"], "shot_id": f"shot{shot:04d}",
                     "checks": {**scores, "flags": flags}}
    (out / "instances_metadata.json").write_text(json.dumps({"frames": seg, "summary": {}}))
    (out / "inpainting_metadata.json").write_text(json.dumps({"frames": fill, "summary": {"success_rate": 0.99}}))
    (out / "run.json").write_text(json.dumps({"config": {"qa": {"residue_threshold": 0.05}}}))
    return out, fill


_HARNESS = """<script>
(function () {
  var st = document.getElementById("table-status"), log = [], steps;
  function ready() { return st.getAttribute("data-state") === "ready"; }
  function snap(name) {
    log.push({step: name, page: st.getAttribute("data-page"), count: st.getAttribute("data-count"),
              rows: st.getAttribute("data-rows"), images: st.getAttribute("data-images"),
              broken: st.getAttribute("data-broken"),
              shotCell: document.querySelector("#frames-body tr td:nth-child(3)").textContent,
              strip: document.querySelector("#shot-strips .frame-head a").textContent});
  }
  function set(id, value) { var el = document.getElementById(id); el.value = value; el.dispatchEvent(new Event("change")); }
  function click(id) { document.getElementById(id).click(); }
  steps = [["first", null]];
  for (var k = 1; k < 10; k++) { steps.push(["page" + k, function () { click("next-page"); }]); }
  steps.push(["sorted", function () { set("f-sort", "residue"); }]);
  steps.push(["filtered", function () { set("f-flag", "seam"); }]);
  steps.push(["shot", function () { set("f-sort", "index"); set("f-flag", "all"); set("f-shot", "shot0003"); }]);
  steps.push(["failed", function () { set("f-shot", "all"); set("f-flag", "failed"); }]);
  steps.push(["out", function () { set("f-flag", "out"); }]);
  var i = 0;
  function run() {
    if (!ready()) { return setTimeout(run, 20); }
    snap(steps[i][0]);
    i += 1;
    if (i >= steps.length) {
      var out = document.createElement("pre"); out.id = "harness"; out.textContent = JSON.stringify(log);
      document.body.appendChild(out);
      return;
    }
    steps[i][1]();
    setTimeout(run, 0);
  }
  run();
})();
</script></body>"""


@pytest.mark.browser
def test_a_500_frame_report_pages_sorts_and_filters_in_chromium(tmp_path: Path):
    out, fill = _big_output(tmp_path)
    page = write_report(out)
    html = page.read_text()
    assert len(html) < 200_000  # the frames are paged from files, not embedded
    data = sorted((out / "report_files" / "data").glob("page_*.js"))
    assert len(data) == N_BIG // 100
    assert "original not available" not in html  # video input: originals from thumbs/
    harness = out / "harness.html"
    harness.write_text(html.replace("</body>", _HARNESS))
    parsed = _parse(html)
    assert parsed.srcs and all(s.startswith("report_files/") for s in parsed.srcs)

    status, console = open_in_chromium(harness, tmp_path / "profile")
    assert console == [], console
    assert status.get("data-broken") == "0", status  # the static images (sample, worst) all loaded
    dom = subprocess.run([need_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                          f"--user-data-dir={tmp_path / 'p2'}", "--virtual-time-budget=20000", "--dump-dom",
                          harness.resolve().as_uri()], capture_output=True, text=True, timeout=120).stdout
    m = re.search(r'<pre id="harness">(.*?)</pre>', dom, re.S)
    assert m, dom[-2000:]
    log = {s["step"]: s for s in json.loads(m.group(1).replace("&quot;", '"'))}
    ids = [f"clip_{k:05d}" for k in range(N_BIG)]
    # paging: 10 pages of 50 rows reach every frame, each page's thumbnails (original + plate) loaded
    seen = []
    for k, name in enumerate(["first"] + [f"page{i}" for i in range(1, 10)]):
        s = log[name]
        assert s["page"] == str(k) and s["count"] == str(N_BIG)
        rows = s["rows"].split(",")
        seen += rows
        failed = sum(1 for r in rows if fill[r]["status"] == "failed")
        assert s["broken"] == "0" and int(s["images"]) == 2 * len(rows) - failed, s
    assert seen == ids
    # sorted by residue, highest first (failed frames, without a score, last)
    ok = [f for f in ids if fill[f]["status"] == "ok"]
    by_residue = sorted(ok, key=lambda f: (-fill[f]["checks"]["residue"], ids.index(f)))
    assert log["sorted"]["rows"].split(",") == by_residue[:50]
    # filtered by a flag (the sort stays)
    seam = [f for f in by_residue if "seam" in fill[f]["checks"]["flags"]]
    assert log["filtered"]["count"] == str(len(seam)) and log["filtered"]["rows"].split(",") == seam[:50]
    assert log["shot"]["rows"].split(",") == ids[150:200]
    assert log["shot"]["shotCell"] == "shot0003" and log["first"]["strip"] == "shot0000"  # not "—"
    assert log["failed"]["rows"].split(",") == [f for f in ids if fill[f]["status"] == "failed"]
    # "left out of the training set": exactly the plates export-lora leaves out, in frame order
    excluded = json.loads(export_lora(out, tmp_path / "set").path.read_text())["excluded"]
    assert excluded and log["out"]["count"] == str(len(excluded))
    assert log["out"]["rows"].split(",") == [f for f in ids if f in excluded][:50]


# ----------------------------------------------------------------------- verdicts and evidence

def _dom(page: Path, profile: Path) -> str:
    """The page's DOM after its scripts ran (the table rendered), entities decoded."""
    import html as _html

    proc = subprocess.run([need_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           f"--user-data-dir={profile}", "--virtual-time-budget=15000", "--dump-dom",
                           page.resolve().as_uri()], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return _html.unescape(proc.stdout)


def _pct(v: float) -> str:
    return f"{round(100 * v)} %"


@pytest.mark.browser
def test_report_shows_each_instance_verdict_and_evidence_in_chromium(run_out: Path, tmp_path: Path):
    """The table row of a frame (loaded on demand from its page file) and the sample view show each
    instance's verdict, its evidence figures and the reason recorded in instances_metadata.json."""
    seg = json.loads((run_out / "instances_metadata.json").read_text())["frames"]
    fid, rec = next((f, r) for f, r in sorted(seg.items()) if r.get("status") == "ok" and r.get("instances"))
    html = (run_out / "report.html").read_text()
    assert rec["instances"][0]["reason"] not in html.split("<h2>Automatic checks</h2>")[0]  # not embedded: paged
    dom = _dom(run_out / "report.html", tmp_path / "profile")
    row = re.search(rf'<tr data-frame="{fid}">(.*?)</tr>', dom, re.S)
    assert row, dom[-3000:]
    cell = re.search(r'<td class="verdicts">(.*?)</td>', row.group(1), re.S).group(1)
    chars = sum(i["character"] for i in rec["instances"])
    assert f"{chars} character(s), {len(rec['instances']) - chars} scenery" in cell
    for k, inst in enumerate(rec["instances"]):
        ev = inst["evidence"]
        who = f"track {inst['track_id']}" if inst.get("track_id") is not None else f"instance {k}"
        verdict = "character" if inst["character"] else "scenery"
        assert f"{who}: {verdict}" in cell and inst["reason"] in cell
        assert f"moving {_pct(ev['moving'])} · change {_pct(ev['change'])}" in cell
        assert f"detected in {ev['detected']} of {ev['frames']} frames" in cell
        assert ("no concept model" if ev["concept_model"] is None else ev["concept_model"]) in cell
    sample = re.search(rf'<details class="verdicts" open="" data-frame="{fid}">(.*?)</details>', dom, re.S)
    assert sample and rec["instances"][0]["reason"] in sample.group(1)  # the sample view, server-rendered


_SCENERY_HARNESS = """<script>
(function () {
  var st = document.getElementById("table-status"), stage = 0;
  function ready() { return st.getAttribute("data-state") === "ready"; }
  function run() {
    if (!ready()) { return setTimeout(run, 20); }
    if (stage === 0) {
      stage = 1;
      var s = document.getElementById("f-flag"); s.value = "scenery"; s.dispatchEvent(new Event("change"));
      return setTimeout(run, 0);
    }
    var out = document.createElement("pre"); out.id = "harness";
    out.textContent = st.getAttribute("data-count") + "|" + st.getAttribute("data-rows");
    document.body.appendChild(out);
  }
  run();
})();
</script></body>"""


@pytest.mark.browser
def test_report_shows_scenery_verdicts_of_a_real_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A real default run on the still-prop case (8 frames: DAVIS tennis with nobody in view, crates pasted
    standing still): the detections judged scenery are listed with their reason and evidence, counted in the
    summary, and the table's "detections all judged scenery" filter lists exactly those frames."""
    from cleanplate.report.bench_cases import build_case, write_frames
    from cleanplate.report.evidence import all_scenery
    from conftest import SHARED

    write_frames(build_case("still-prop", SHARED / "data", 8), tmp_path / "frames")
    out = tmp_path / "out"
    monkeypatch.setattr(State, "quiet", State.quiet)
    monkeypatch.setenv("CLEANPLATE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CLEANPLATE_OFFLINE", "1")
    res = _invoke("--quiet", "run", tmp_path / "frames", "-o", out)
    assert res.exit_code == 0, res.output
    seg = json.loads((out / "instances_metadata.json").read_text())["frames"]
    scenery = sorted(f for f, r in seg.items() if all_scenery(r))
    assert scenery  # the default judges the still crates (and the banner) scenery
    html = (out / "report.html").read_text()
    assert re.search(rf"frames whose detections were all judged scenery</td><td class=\"num\">[^<]*</td>.*?"
                     rf"{len(scenery)} of {sum(bool(r.get('instances')) for r in seg.values())} frames", html, re.S)
    assert f"detections all judged scenery ({len(scenery)})" in html
    fid = scenery[0]
    inst = next(i for i in seg[fid]["instances"] if not i["character"])
    assert inst["reason"].startswith("scenery") or "scenery" in inst["reason"]
    page = out / "harness.html"
    page.write_text(html.replace("</body>", _SCENERY_HARNESS))
    dom = _dom(page, tmp_path / "profile")
    m = re.search(r'<pre id="harness">(\d+)\|(.*?)</pre>', dom)
    assert m, dom[-3000:]
    assert int(m.group(1)) == len(scenery) and m.group(2).split(",") == scenery
    row = re.search(rf'<tr data-frame="{fid}">(.*?)</tr>', dom, re.S).group(1)
    assert "0 character(s)" in row and ": scenery</b>" in row and inst["reason"] in row
    ev = inst["evidence"]
    assert f"moving {_pct(ev['moving'])} · change {_pct(ev['change'])}" in row
