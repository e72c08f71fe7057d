"""``cleanplate report``, ``cleanplate compare`` and ``cleanplate bench``.

``main.py`` calls :func:`register` once its ``app`` exists (importing ``app`` here would be circular).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cleanplate._cli.common import State, _config, _guard, from_config
from cleanplate._cli.ui import err_console, out_console


def _say(msg: str) -> None:
    if not State.quiet and not State.log_json:
        err_console.print(msg, highlight=False)


def report(
    output: Annotated[Path, typer.Argument(help="A cleanplate output folder.")],
    sample: Annotated[int, typer.Option("--sample", help="Frames in the random sample.")] = 16,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random sample.")] = 0,
    worst: Annotated[int, typer.Option("--worst", help="Frames shown per check among the worst flagged.")] = 6,
    checks: Annotated[bool, typer.Option("--checks", help="Score plates that have no stored checks now "
                                         "(~0.4 s per frame on CPU).", show_default="off")] = False,
) -> None:
    """Write OUT/report.html: statistics vs targets, histograms, a random sample, the worst flagged frames."""

    def body() -> int:
        from cleanplate.errors import InputError
        from cleanplate.report import write_report

        if not output.is_dir():
            raise InputError(f"output folder not found: {output}")
        path = write_report(output, sample=sample, seed=seed, worst=worst, compute_checks=checks)
        out_console.print(str(path), highlight=False)
        return 0

    _guard(body)


def compare(
    old: Annotated[Path, typer.Argument(help="Output folder (or folder of plates) of the old version.")],
    new: Annotated[Path, typer.Argument(help="Output folder (or folder of plates) of the new version.")],
    sheet: Annotated[Path | None, typer.Option("--output", "-o", help="Sheet path (.png; the .html goes "
                                               "beside it).", show_default="NEW/compare.png")] = None,
    sample: Annotated[int, typer.Option("--sample", help="Frames on the sheet (0: all common frames).")] = 16,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random sample.")] = 0,
    pattern: Annotated[str | None, typer.Option("--pattern", help="Glob on frame names, e.g. 'scene0535*'.",
                                                  show_default="all frames")] = None,
) -> None:
    """Side-by-side contact sheet (PNG + HTML) of the same frames' plates from two output folders."""

    def body() -> int:
        from cleanplate.report import compare as make_sheet

        res = make_sheet(old, new, sheet, sample=sample, seed=seed, pattern=pattern)
        _say(f"{len(res.frames)} of {res.common} common frames; only in OLD {res.only_old}, only in NEW {res.only_new}")
        out_console.print(f"{res.png}\n{res.html}", highlight=False)
        return 0

    _guard(body)


def bench(
    output: Annotated[Path, typer.Option("--output", "-o", help="Where composites, runs and bench.json/.md go.")]
    = Path("bench-out"),
    methods: Annotated[list[str] | None, typer.Option("--methods", "-m", help="Fill methods (repeatable or "
                       "comma-separated); unavailable ones are skipped.",
                       show_default="opencv-telea, opencv-ns, patchmatch, lama, temporal+patchmatch")] = None,
    frames: Annotated[int, typer.Option("--frames", help="Frames per composite.")] = 16,
    composites: Annotated[list[str] | None, typer.Option("--composite", help="Composites to run (repeatable): "
                          "tennis-over-bmx, bmx-over-sintel, bmx-beside-girl.", show_default="all three")] = None,
    data: Annotated[Path | None, typer.Option("--data", help="The shared footage folder.",
                    show_default="$CLEANPLATE_DATA, else ../shared/data next to the repository")] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file.", show_default="none")] = None,
    profile: Annotated[str | None, typer.Option("--profile", "-p", help="Named profile.", show_default="default")] = None,
    device: Annotated[str | None, typer.Option("--device", help="auto, cpu, cuda or mps.",
                                              show_default=from_config("run.device"))] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Any setting as dotted.key=value.",
                                                   show_default="none")] = None,
    cases: Annotated[list[str] | None, typer.Option("--cases", help="Case families (repeatable or comma-separated): "
                     "fill (fill methods on the composites), characters (every character and only characters: "
                     "nobody in view, a still prop, still / standing / two / three characters), still (a large "
                     "character that never leaves: PSNR / SSIM in the hole, flat, steadiness), or all.",
                     show_default="fill")] = None,
    case: Annotated[list[str] | None, typer.Option("--case", help="Character cases to run (repeatable or "
                    "comma-separated).", show_default="all seven")] = None,
    case_frames: Annotated[int, typer.Option("--case-frames", help="Frames per character case.")] = 8,
    still_frames: Annotated[int, typer.Option("--still-frames", help="Frames of the still-character case.")] = 8,
    still_methods: Annotated[list[str] | None, typer.Option("--still-methods", help="Fills tried on the still "
                             "case (repeatable or comma-separated).",
                             show_default="patchmatch, exemplar, exemplar-once")] = None,
) -> None:
    """Ground-truth benchmark: paste DAVIS objects over other footage, remove them, measure each method;
    with --cases, also the character cases and the large still character."""

    def split(items: list[str] | None) -> list[str] | None:
        return [v.strip() for item in (items or []) for v in item.split(",") if v.strip()] or None

    def body() -> int:
        from cleanplate.report import run_bench
        from cleanplate.report.bench_suites import parse_suites

        suites = parse_suites(cases)
        cfg = _config(config, profile, set_, run__device=device)
        res = run_bench(output, methods=split(methods), frames=frames, composites=composites, data=data, config=cfg,
                        progress=_say, suites=suites, cases=split(case), case_frames=case_frames,
                        still_frames=still_frames, still_methods=split(still_methods))
        if State.log_json:
            import json

            print(json.dumps({"bench": str(res.json_path), "suites": suites, "methods": res.data.get("methods"),
                              "characters": (res.data.get("characters") or {}).get("cases"),
                              "still": (res.data.get("still") or {}).get("methods")}), flush=True)
        elif not State.quiet:
            out_console.print(res.markdown, highlight=False, markup=False)
            out_console.print(f"{res.json_path}\n{res.markdown_path}", highlight=False)
        return 0

    _guard(body)


def review(
    output: Annotated[Path, typer.Argument(help="A finished cleanplate output folder.")],
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8765,
    host: Annotated[str, typer.Option("--host", help="Address to bind; the default serves this machine only. "
                                      "Give 0.0.0.0 to let other machines in (no authentication).")] = "127.0.0.1",
) -> None:
    """Review and correct a run in the browser: accept / reject plates, click missed characters,
    brush scenery out of masks, apply (redoes only the corrected shots). Saved in OUT/review.json."""

    def body() -> int:
        from cleanplate.review import create_app

        app = create_app(output)  # refuses a folder without a finished run
        import uvicorn

        _say(f"review {output.resolve()} at http://{host}:{port}/  (Ctrl+C to stop)")
        uvicorn.run(app, host=host, port=port, log_level="warning")
        return 0

    _guard(body)


def register(app: typer.Typer) -> None:
    """Add ``report``, ``compare``, ``bench`` and ``review`` to the ``cleanplate`` app."""
    app.command("review")(review)
    app.command("report")(report)
    app.command("compare")(compare)
    app.command("bench")(bench)


__all__ = ["register"]
