"""What a profile needs (issue 12, item 5): ``weights verify --profile`` and ``weights.check_available``.

Every missing or corrupt file a profile needs is listed at once and the exit code is non-zero; a
missing file no profile needs is only listed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cleanplate.fill  # noqa: F401  (registers the LaMa weights)
import cleanplate.segment  # noqa: F401  (registers the SAM2 weights)
from cleanplate import weights
from cleanplate._cli.main import app
from cleanplate.config import load_config
from cleanplate.errors import WeightsError

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _cli(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    return res.exit_code, ANSI.sub("", res.stdout), ANSI.sub("", res.stderr)


def test_needed_weights_follow_the_config() -> None:
    default = [n.name for n in weights.needed_weights(load_config())]
    assert default == ["u2netp"]  # saliency segmenter + checks share the bundled model
    luca = [(n.name, n.why) for n in weights.needed_weights(load_config(profile="luca"))]
    assert [n for n, _ in luca] == ["sam2.1-hiera-large", "u2netp", "big-lama"]
    assert all(name in weights.REGISTRY for name, _ in luca)
    no_qa = load_config(overrides={"qa.enabled": False, "fill.method": "temporal+lama", "fill.lama.model": "anime-lama"})
    assert [n.name for n in weights.needed_weights(no_qa)] == ["u2netp", "anime-lama"]
    sam3 = load_config(overrides={"segment.shot.method": "sam3"})
    assert [n.name for n in weights.needed_weights(sam3)] == ["u2netp", "sam3"]
    video = load_config(overrides={"segment.shot.method": "sam2-video"})
    assert [n.name for n in weights.needed_weights(video)] == ["u2netp", "sam2.1-hiera-tiny"]
    problems = weights.check_available(sam3)  # offline, empty cache: the gated SAM 3 folder is named
    assert len(problems) == 1 and "sam3" in problems[0]


def test_check_available_names_every_missing_file_at_once() -> None:
    assert weights.check_available(load_config()) == []  # u2netp is bundled
    problems = weights.check_available(load_config(profile="luca"))  # offline, empty cache (conftest)
    assert len(problems) == 2, problems
    assert "sam2.1-hiera-large" in problems[0] and "big-lama" in problems[1]
    with pytest.raises(WeightsError) as err:
        weights.require_available(load_config(profile="luca"))
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("2 weights file(s)")
    assert "sam2.1-hiera-large" in msg and "big-lama.pt" in msg


def test_check_available_reports_a_corrupt_file_and_a_missing_checkpoint(tmp_path: Path) -> None:
    weights.cache_dir().mkdir(parents=True)
    (weights.cache_dir() / "big-lama.pt").write_bytes(b"not the weights")
    cfg = load_config(overrides={"fill.method": "lama", "segment.sam2.checkpoint": str(tmp_path / "nope"),
                                 "segment.backend": "sam2"})
    problems = weights.check_available(cfg)
    assert len(problems) == 2, problems
    assert "checkpoint not found" in problems[0] and str(tmp_path / "nope") in problems[0]
    assert "corrupt" in problems[1] and "big-lama" in problems[1]
    (weights.cache_dir() / "big-lama.pt").unlink()


def _section(out: str) -> tuple[list[str], list[str]]:
    """``weights verify`` output: the lines of the "needed by" section, and the lines after it."""
    lines = out.splitlines()
    assert lines[0].startswith("needed by "), out
    end = next((k for k, ln in enumerate(lines) if ln.startswith("optional ")), len(lines))
    return lines[1:end], lines[end:]


def test_verify_profile_exits_5_with_the_download_command_of_each_missing_file() -> None:
    code, out, err = _cli("weights", "verify", "--profile", "luca")
    assert code == 5, out + err
    needed, optional = _section(out)
    assert out.splitlines()[0] == "needed by profile 'luca':"
    states = [ln.split()[:2] for ln in needed if not ln.startswith("   " + " " * 8)]
    assert states == [["missing", "sam2.1-hiera-large"], ["ok", "u2netp"], ["missing", "big-lama"]], needed
    cache = str(weights.cache_dir())
    for name, file in (("sam2.1-hiera-large", "'sam2.1-hiera-large'"), ("big-lama", "'big-lama.pt'")):
        k = next(i for i, ln in enumerate(needed) if ln.split()[:2] == ["missing", name])
        hint = needed[k + 1].strip()  # the line under the missing file
        assert hint.startswith(f"get it with `cleanplate weights download {name}`, or offline download http"), hint
        assert f"put {file} in {cache}" in hint, hint
    assert len(optional) == 1 and optional[0].startswith("optional (not needed by profile 'luca'): 0 here, 16 not")
    assert "missing" not in "".join(optional)  # the optional models are counted, not listed one per line
    error = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(error) == 1 and "2 weights file(s)" in error[0] and "big-lama" in error[0], err
    assert "Traceback" not in out + err


def test_verify_default_profile_passes_with_optional_weights_missing() -> None:
    code, out, err = _cli("weights", "verify")
    assert code == 0, out + err
    needed, optional = _section(out)
    assert len(needed) == 1 and needed[0].split()[:2] == ["ok", "u2netp"], out  # bundled
    n_optional = len(weights.list_specs()) - 1
    assert optional == [f"optional (not needed by profile 'default'): 0 here, {n_optional} not; "
                        "`cleanplate weights list` shows them all"], out
    assert "isnet-anime" not in out and err == ""


def test_verify_lists_an_optional_file_that_is_here_and_exits_5_on_a_corrupt_one() -> None:
    weights.cache_dir().mkdir(parents=True)
    (weights.cache_dir() / "isnet-anime.onnx").write_bytes(b"not the weights")
    code, out, err = _cli("weights", "verify")
    assert code == 5, out + err
    assert re.search(r"corrupt.*isnet-anime \(optional\)", out), out
    assert err.startswith("error: 1 weights file(s) not usable (profile 'default'): isnet-anime corrupt"), err


def test_verify_names_a_missing_file_explicitly_asked_for() -> None:
    code, out, err = _cli("weights", "verify", "u2netp", "anime-lama")
    assert code == 5 and err.rstrip().endswith(": anime-lama missing"), err
    needed, optional = _section(out)
    assert out.startswith("needed by u2netp, anime-lama:") and optional == [], out
    assert "cleanplate weights download anime-lama" in needed[-1], out


def test_run_with_a_profile_whose_weights_are_missing_says_how_to_get_them(tmp_path: Path, small_sintel_dir) -> None:
    frames = small_sintel_dir(2)
    code, out, err = _cli("run", str(frames), "-o", str(tmp_path / "out"), "--profile", "luca")
    assert code == 5, out + err
    error = [ln for ln in err.splitlines() if ln.strip()]
    assert len(error) == 1 and error[0].startswith("error: 2 weights file(s) needed and not usable"), err
    for name, file in (("sam2.1-hiera-large", "sam2.1-hiera-large"), ("big-lama", "big-lama.pt")):
        assert f"get it with `cleanplate weights download {name}`, or offline download http" in error[0]
        assert f"put '{file}' in {weights.cache_dir()}" in error[0]



@pytest.mark.parametrize(("ci", "outcome"), [(None, pytest.skip.Exception), ("true", pytest.fail.Exception),
                                              ("false", pytest.skip.Exception)])
def test_browser_tests_fail_in_ci_without_chromium(monkeypatch: pytest.MonkeyPatch, ci: str | None,
                                                   outcome: type[BaseException]) -> None:
    """conftest's Chromium rule: without the binary a browser test skips locally and fails under CI=true."""
    import conftest

    monkeypatch.setattr(conftest, "CHROMIUM", None)
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="apt-get install chromium"):
        conftest.need_chromium()


def test_run_names_every_missing_weight_before_starting(tmp_path: Path, small_sintel_dir) -> None:
    out = tmp_path / "out"
    code, _, err = _cli("run", str(small_sintel_dir(2)), "-o", str(out), "--profile", "luca")
    assert code == 5, err
    line = next(ln for ln in err.splitlines() if ln.startswith("error:"))
    assert "2 weights file(s)" in line and "sam2.1-hiera-large" in line and "big-lama" in line
    assert not (out / "masks").exists()  # nothing was segmented
