"""``cleanplate bench --cases characters,still`` (issues 26 and 20): the character cases and the large
still character run through the CLI (in-process) and their figures land in bench.json and bench.md.

The character figures are checked against the scorer run again on the masks and plates the bench
left on disk; the nobody case meets issue 26's target (nothing masked, plates equal to the input).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from cleanplate._cli.common import State
from cleanplate._cli.main import app
from cleanplate.errors import InputError
from cleanplate.masks import from_png
from cleanplate.report.bench_cases import build_case, measure
from cleanplate.report.bench_suites import parse_suites
from conftest import SHARED

DATA = SHARED / "data"
CASES = ("nobody-tennis", "two-characters")
N = 8  # the default pipeline judges scenery from 8 registered frames on


def _invoke(*args: str):
    with pytest.MonkeyPatch.context() as mp:
        for flag in ("debug", "quiet", "log_json"):
            mp.setattr(State, flag, getattr(State, flag))
        mp.setenv("CLEANPLATE_OFFLINE", "1")
        return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def suites_bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench-suites") / "b"
    res = _invoke("--quiet", "bench", "-o", str(out), "--cases", "characters", "--cases", "still",
                  "--case", ",".join(CASES), "--case-frames", str(N), "--still-frames", "4",
                  "--still-methods", "patchmatch,exemplar-once", "--data", str(DATA))
    assert res.exit_code == 0, res.output
    return out


def _rescore(out: Path, name: str):
    """The scorer on what the bench left in OUT/characters/<case>/out."""
    case = build_case(name, DATA, N)
    run = out / "characters" / name / "out"
    masks, plates = [], []
    for t in range(N):
        m = cv2.imread(str(run / "masks" / f"frame_{t:04d}.png"), cv2.IMREAD_GRAYSCALE)
        masks.append(np.zeros(case.frames[t].shape[:2], bool) if m is None else from_png(m))
        plates.append(cv2.cvtColor(cv2.imread(str(run / "backgrounds" / f"frame_{t:04d}.png")), cv2.COLOR_BGR2RGB))
    return measure(case, masks, plates)


def test_character_cases_in_json_are_the_scorers(suites_bench: Path):
    data = json.loads((suites_bench / "bench.json").read_text())
    assert data["suites"] == ["characters", "still"] and "methods" not in data  # no fill suite asked for
    sec = data["characters"]
    assert sec["frames_per_case"] == N and [r["name"] for r in sec["cases"]] == list(CASES)
    rows = {r["name"]: r for r in sec["cases"]}
    for name in CASES:
        again = _rescore(suites_bench, name)
        for key in ("frames", "nobody_frames", "nobody_masked_fraction", "nobody_plates_equal", "prop_masked",
                    "recall"):
            assert rows[name][key] == getattr(again, key), (name, key)
    nobody = rows["nobody-tennis"]
    assert nobody["nobody_frames"] == N
    assert nobody["nobody_masked_fraction"] <= 0.01 and nobody["nobody_plates_equal"] >= 0.95  # issue 26's target
    assert nobody["targets_met"] == {"nobody_masked_fraction": True, "nobody_plates_equal": True}
    two = rows["two-characters"]
    assert set(two["recall"]) == {"player", "small-rider"} and two["nobody_frames"] == 0
    assert two["recall"]["player"]["mean"] >= 0.8 and two["recall"]["player"]["frames"] == N
    for char, r in two["recall"].items():
        assert two["targets_met"][f"recall {char}"] == (r["mean"] >= 0.9)
        assert two["targets_met"][f"no frame < 0.5 {char}"] == (r["frames_below_half"] == 0)
    assert two["seconds_per_frame"] > 0


def test_character_cases_in_markdown(suites_bench: Path):
    data = json.loads((suites_bench / "bench.json").read_text())
    md = (suites_bench / "bench.md").read_text()
    assert "## Character cases" in md and "## Still character" in md
    rows = {r["name"]: r for r in data["characters"]["cases"]}
    line = next(ln for ln in md.splitlines() if ln.startswith("| nobody-tennis |"))
    assert f"| {N} | {N} | {rows['nobody-tennis']['nobody_masked_fraction']:.2%} (ok) |" in line
    line = next(ln for ln in md.splitlines() if ln.startswith("| two-characters |"))
    player = rows["two-characters"]["recall"]["player"]
    assert f"player {player['mean']:.3f} / {player['min']:.3f} / {player['frames_below_half']}" in line


def test_still_case_reports_psnr_ssim_and_steadiness(suites_bench: Path):
    data = json.loads((suites_bench / "bench.json").read_text())
    still = data["still"]
    assert still["frames"] == 4 and still["character_fraction"] >= 0.25 and still["never_seen_fraction"] > 0.5
    assert list(still["methods"]) == ["patchmatch", "exemplar-once"]
    for r in still["methods"].values():
        assert math.isfinite(r["psnr_hole"]) and 8 < r["psnr_hole"] < 40 and 0 < r["ssim_hole"] <= 1
        assert 0 <= r["flat_max"] <= 1 and 0 <= r["flat_flagged"] <= 4
        assert r["steadiness"] >= 0 and r["steadiness_truth"] > 0 and r["s_per_frame"] > 0
        # along the set's own motion at the hole (fitted to the truth) the truth changes less than
        # along the shot model's whole-frame registration
        assert 0 <= r["steadiness_set_truth"] < r["steadiness_truth"] and r["steadiness_set"] >= 0
    # invented once per shot and carried along the registration: far steadier than per-frame PatchMatch
    assert still["methods"]["exemplar-once"]["steadiness"] * 2 <= still["methods"]["patchmatch"]["steadiness"]
    md = (suites_bench / "bench.md").read_text()
    pm = still["methods"]["patchmatch"]
    assert f"| patchmatch | {pm['psnr_hole']:.2f} | {pm['ssim_hole']:.3f} |" in md
    held = still["held_out"]  # the second composite, over bmx-trees, measured the same way
    assert held["case"] == "still-tennis-over-bmx" and held["frames"] == 4 and held["character_fraction"] >= 0.25
    assert list(held["methods"]) == ["patchmatch", "exemplar-once"]
    hp = held["methods"]["patchmatch"]
    assert "Held out" in md and f"| patchmatch | {hp['psnr_hole']:.2f} | {hp['ssim_hole']:.3f} |" in md


def test_parse_suites():
    assert parse_suites(None) == ["fill"]
    assert parse_suites(["still,characters"]) == ["characters", "still"]
    assert parse_suites(["all"]) == ["fill", "characters", "still"]
    with pytest.raises(InputError, match="unknown bench case family nope"):
        parse_suites(["fill,nope"])


@pytest.mark.parametrize("args, message", [
    (("--cases", "nope"), "unknown bench case family"),
    (("--cases", "characters", "--case", "nobody-at-all"), "unknown character case"),
    (("--cases", "still", "--still-methods", "lama"), "unknown still-case method"),
    (("--cases", "characters", "--case-frames", "1"), "--case-frames must be at least 2"),
])
def test_bad_options_fail_before_any_work(tmp_path: Path, args: tuple[str, ...], message: str):
    out = tmp_path / "b"
    res = _invoke("bench", "-o", str(out), "--data", str(DATA), *args)
    assert res.exit_code == 3, res.output
    assert message in res.output
    assert not (out / "characters").exists() and not (out / "tennis-over-bmx").exists()
