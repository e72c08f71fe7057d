"""``cleanplate weights list|download|verify``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from cleanplate._cli.common import _guard
from cleanplate._cli.ui import err_console, out_console

weights_app = typer.Typer(help="Published model weights: list, download, verify.", no_args_is_help=True)


def _load_registry() -> None:
    """Import every backend so that each registers its weights."""
    import cleanplate.fill  # noqa: F401
    import cleanplate.segment  # noqa: F401


def _mb(size: int | None) -> str:
    return f"{size / 1e6:,.0f} MB" if size else "?"


@weights_app.command("list")
def list_weights() -> None:
    """Every registered model: file, size, licence, and whether it is here."""

    def body() -> int:
        from cleanplate import weights

        _load_registry()
        status = {spec.name: (state, path) for spec, state, path in weights.verify()}
        t = Table(show_header=True, header_style="bold")
        for col in ("name", "kind", "file", "size", "licence", "status", "description"):
            t.add_column(col, no_wrap=col == "name")  # whole names, also when piped (80 columns)
        for spec in weights.list_specs():
            state, path = status.get(spec.name, ("missing", None))
            shown = f"{state} ({path})" if path else state
            t.add_row(spec.name, spec.kind, spec.filename if not spec.hf_repo else spec.hf_repo, _mb(spec.size),
                      spec.license, shown, spec.description)
        out_console.print(t)
        out_console.print(f"cache: {weights.cache_dir()}  (set $CLEANPLATE_HOME to move it; "
                          "$CLEANPLATE_WEIGHTS lists offline folders)", highlight=False, soft_wrap=True)
        return 0

    _guard(body)


@weights_app.command("download")
def download(names: Annotated[list[str], typer.Argument(help="Registry names (see `cleanplate weights list`).")]) -> None:
    """Download weights into the cache with checksum verification."""

    def body() -> int:
        from cleanplate import weights

        _load_registry()
        for name in names:
            spec = weights.get_spec(name)
            with Progress(TextColumn(f"[bold]{name}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                          console=err_console) as prog:
                task = prog.add_task(name, total=spec.size)

                def cb(done: int, total: int | None, task: int = task) -> None:
                    prog.update(task, completed=done, total=total)

                use = weights.resolve(name, progress=cb)
            out_console.print(f"{name}: {use.path} ({use.source}, sha256 {str(use.sha256)[:16]}...)", highlight=False,
                              soft_wrap=True)  # a path that scripts can read, never folded
        return 0

    _guard(body)


def _line(state: str, text: str, colour: str) -> None:
    out_console.print(f"  [{colour}]{state:<8}[/] {text}", highlight=False, soft_wrap=True)


@weights_app.command("verify")
def verify(
    names: Annotated[list[str] | None, typer.Argument(help="Names to check (default: what the profile / config "
                                                      "needs, then a one-line count of the optional ones).")] = None,
    profile: Annotated[str | None, typer.Option("--profile", "-p", help="Check what this profile needs.",
                                                show_default="default")] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Check what this config file needs.",
                                                show_default="none")] = None,
) -> None:
    """Check weights files against their registry checksums.

    Lists what the profile / config needs (default profile when neither is given), or the named
    files, each missing one with the command that downloads it and where to put it offline; the
    models nothing here needs are optional and only counted. Exit 5 when a needed file is missing
    or any file is corrupt, with one error line that sums it up.
    """

    def body() -> int:
        from cleanplate import weights
        from cleanplate.config import load_config
        from cleanplate.errors import WeightsError

        _load_registry()
        cfg = load_config(profile=profile, config_file=config)
        needs = [weights.Need(n, "named") for n in names] if names else weights.needed_weights(cfg)
        what = ", ".join(names) if names else f"profile '{cfg.profile}'" + (f" + {config}" if config else "")
        for n in needs:
            if n.name not in weights.REGISTRY and n.checkpoint is None:
                weights.get_spec(n.name)  # the one-line "unknown weights" error, with the known names
        problems: list[str] = []
        out_console.print(f"needed by {what}:", highlight=False, soft_wrap=True)
        for n in needs:
            why = "" if names else f" for {n.why}"
            if n.checkpoint is not None:
                here = Path(n.checkpoint).expanduser().exists()
                _line("ok" if here else "missing", f"{n.checkpoint}{why}", "green" if here else "red")
                if not here:
                    problems.append(f"{n.why}: checkpoint not found: {n.checkpoint}")
                continue
            spec, state, path = weights.verify([n.name])[0]
            _line(state, f"{spec.name}{why} {path or ''}".rstrip(), "green" if state == "ok" else "red")
            if state != "ok":
                out_console.print(f"           {weights.how_to_get(spec)}", highlight=False, soft_wrap=True)
                problems.append(f"{spec.name} {state}")
        if not names:
            needed = {n.name for n in needs}
            optional = [(spec, state, path) for spec, state, path in weights.verify() if spec.name not in needed]
            here = [spec.name for spec, state, _ in optional if state == "ok"]
            for spec, state, path in optional:
                if state.startswith("corrupt"):
                    _line(state, f"{spec.name} (optional) {path or ''}".rstrip(), "red")
                    problems.append(f"{spec.name} {state}")
            out_console.print(f"optional (not needed by {what}): {len(here)} here"
                              f"{' (' + ', '.join(here) + ')' if here else ''}, {len(optional) - len(here)} not; "
                              "`cleanplate weights list` shows them all", highlight=False, soft_wrap=True)
        if problems:
            raise WeightsError(f"{len(problems)} weights file(s) not usable ({what}): " + "; ".join(problems))
        return 0

    _guard(body)
