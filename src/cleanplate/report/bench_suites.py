"""The character and still-character suites of ``cleanplate bench`` (issues 26 and 20).

* ``characters``: each case of :mod:`cleanplate.report.bench_cases` (nobody in view, a still prop,
  a still / standing character, two and three characters) built from the shared footage and run
  through the default pipeline by :func:`~cleanplate.report.bench_cases.score_case`; per case the
  masked fraction of the frames where nobody is, the share of their plates equal to the input, the
  share of frames where a still prop is masked, and recall per character, next to issue 26's targets.
* ``still``: :func:`~cleanplate.report.bench_still.run_still_bench`: a large character that barely
  moves for the whole shot; PSNR / SSIM in the hole, the flat check, the steadiness of the invented region.

Both reuse those modules' scorers; this module only runs them and writes their JSON section and Markdown.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cleanplate.config import Config
from cleanplate.errors import InputError

SUITES = ("fill", "characters", "still")
"""What ``cleanplate bench --cases`` can run; ``all`` is every one."""

TARGETS = {
    "nobody_masked_fraction": ("<=", 0.01),
    "nobody_plates_equal": (">=", 0.95),
    "prop_masked": ("<=", 0.05),
    "recall_mean": (">=", 0.9),
    "frames_below_half": ("<=", 0),
    "outside_allowed": ("<", 0.05),
}
"""Issue 26's targets per figure (recall: each character's mean; no frame under 0.5)."""

Progress = Callable[[str], None]


def parse_suites(items: list[str] | None) -> list[str]:
    """``--cases`` values (repeatable, comma-separated; ``all``) as suite names in :data:`SUITES` order."""
    names = {s.strip() for item in (items or ["fill"]) for s in item.split(",") if s.strip()}
    if "all" in names:
        names = (names - {"all"}) | set(SUITES)
    unknown = sorted(names - set(SUITES))
    if unknown:
        raise InputError(f"unknown bench case family {', '.join(unknown)} (known: {', '.join(SUITES)}, all)")
    return [s for s in SUITES if s in names] or ["fill"]


def _meets(key: str, value: float | None) -> bool | None:
    if value is None:
        return None
    op, bound = TARGETS[key]
    return {"<=": value <= bound, ">=": value >= bound, "<": value < bound}[op]


def _png(config: Config) -> Config:
    """``config`` with PNG plates (a plate can equal its input exactly) and every frame taken."""
    data = config.to_dict()
    data["output"]["plate_format"] = "png"
    data["input"]["limit"] = None
    return Config.model_validate(data)


def check_options(cases: list[str] | None, case_frames: int, still_methods: list[str] | None,
                  still_frames: int) -> None:
    """Raise :class:`InputError` for an unknown case or method or too few frames (before anything runs)."""
    from cleanplate.report.bench_cases import CASES
    from cleanplate.report.bench_still import METHODS

    unknown = [c for c in cases or () if c not in CASES]
    if unknown:
        raise InputError(f"unknown character case {', '.join(unknown)} (available: {', '.join(CASES)})")
    unknown = [m for m in still_methods or () if m not in METHODS]
    if unknown:
        raise InputError(f"unknown still-case method {', '.join(unknown)} (available: {', '.join(METHODS)})")
    if case_frames < 2:
        raise InputError("--case-frames must be at least 2")
    if still_frames < 2:
        raise InputError("--still-frames must be at least 2 (steadiness compares consecutive frames)")


def run_characters(out: Path, config: Config, *, cases: list[str] | None = None, frames: int = 8,
                   data: str | Path | None = None, progress: Progress | None = None) -> dict[str, Any]:
    """Build and score each character case (``frames`` frames each) in ``out/<case>/``; the JSON section."""
    from cleanplate.report.bench_cases import CASES, build_case, score_case

    check_options(cases, frames, None, 2)
    say = progress or (lambda _msg: None)
    names = list(dict.fromkeys(cases or CASES))
    cfg = _png(config)
    rows = []
    for name in names:
        say(f"characters: {name}, {frames} frames")
        case = build_case(name, data, frames)
        score = score_case(case, out / name, cfg)
        row = score.row()
        h, w = case.frames[0].shape[:2]
        row.update({"description": case.description, "size": [w, h], "sources": dict(case.sources),
                    "seconds_per_frame": round(score.seconds / max(score.frames, 1), 3)})
        ok: dict[str, bool | None] = {k: _meets(k, row[k]) for k in
                                      ("nobody_masked_fraction", "nobody_plates_equal", "prop_masked")}
        if score.outside_allowed is not None:  # every frame: the worst one
            ok["outside_allowed"] = _meets("outside_allowed", score.outside_allowed["max"])
        for char, r in score.recall.items():
            ok[f"recall {char}"] = _meets("recall_mean", r["mean"])
            ok[f"no frame < 0.5 {char}"] = _meets("frames_below_half", r["frames_below_half"])
        row["targets_met"] = {k: v for k, v in ok.items() if v is not None}
        rows.append(row)
    return {"frames_per_case": frames, "targets": {k: f"{op} {b}" for k, (op, b) in TARGETS.items()},
            "cases": rows}


def run_still(config: Config, *, frames: int = 8, methods: list[str] | None = None,
              data: str | Path | None = None, progress: Progress | None = None) -> dict[str, Any]:
    """The still-character case with ``frames`` frames, each method filling the true masks; the JSON
    section, with the held-out composite's figures under ``held_out``."""
    from dataclasses import replace

    from cleanplate.report.bench_still import HELD_OUT, METHODS, StillSpec, run_still_bench

    check_options(None, 2, methods, frames)
    names = tuple(dict.fromkeys(methods or METHODS))
    say = progress or (lambda _msg: None)
    say(f"still: {frames} frames, {', '.join(names)}")
    result = run_still_bench(config, data, names, StillSpec(frames=frames))
    say(f"still, held out ({HELD_OUT.name}): {frames} frames")
    result["held_out"] = run_still_bench(config, data, names, replace(HELD_OUT, frames=frames))
    return result


def _f(v: Any, fmt: str = "{:.3f}") -> str:
    return "-" if v is None else fmt.format(v)


def _ok(flag: bool | None) -> str:
    return "" if flag is None else " (ok)" if flag else " (missed)"


def characters_markdown(section: dict[str, Any]) -> list[str]:
    """The character cases as Markdown: one row per case, recall per character, targets met or missed."""
    t = section["targets"]
    lines = [
        f"Character cases ({section['frames_per_case']} frames each, default pipeline). Targets (issue 26): "
        f"masked fraction where nobody is {t['nobody_masked_fraction']}, plates equal to the input "
        f"{t['nobody_plates_equal']}, still prop masked in {t['prop_masked']} of its frames, recall per character "
        f"{t['recall_mean']} with no frame < 0.5; where a character has no truth mask (Sintel's girl), the "
        f"share of the frame masked outside a generous hand-drawn region around her {t.get('outside_allowed', '< 0.05')} "
        "in every frame.",
        "",
        "| case | frames | nobody frames | masked where nobody | plates equal | prop masked | recall per character "
        "(mean / min / frames < 0.5) | masked outside the allowed region (mean / max) | s/frame |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in section["cases"]:
        ok = r["targets_met"]
        rec = "; ".join(f"{c} {v['mean']:.3f} / {v['min']:.3f} / {v['frames_below_half']}"
                        f"{_ok(ok.get(f'recall {c}') and ok.get(f'no frame < 0.5 {c}'))}"
                        for c, v in r["recall"].items()) or "-"
        out = r.get("outside_allowed")
        outside = "-" if out is None else \
            f"{out['mean']:.2%} / {out['max']:.2%}{_ok(ok.get('outside_allowed'))}"
        lines.append(
            f"| {r['name']} | {r['frames']} | {r['nobody_frames']} "
            f"| {_f(r['nobody_masked_fraction'], '{:.2%}')}{_ok(ok.get('nobody_masked_fraction'))} "
            f"| {_f(r['nobody_plates_equal'], '{:.0%}')}{_ok(ok.get('nobody_plates_equal'))} "
            f"| {_f(r['prop_masked'], '{:.0%}')}{_ok(ok.get('prop_masked'))} | {rec} | {outside} "
            f"| {_f(r['seconds_per_frame'], '{:.2f}')} |")
    lines.append("")
    lines += [f"- {r['name']}: {r['description']}" for r in section["cases"]]
    return lines


__all__ = ["SUITES", "TARGETS", "characters_markdown", "check_options", "parse_suites", "run_characters", "run_still"]
