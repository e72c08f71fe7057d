"""``cleanplate dedupe | organize | export-lora``: from plates to a LoRA training set."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from cleanplate._cli.common import State, _guard
from cleanplate._cli.ui import Reporter, err_console, out_console
from cleanplate.dataset.ranking import EXPORT_RESIDUE

OutArg = Annotated[Path, typer.Argument(help="Output folder of `cleanplate run` (backgrounds/, masks/, metadata).")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Redo even when inputs and settings are unchanged.",
                                        show_default="off")]
EmbOpt = Annotated[bool | None, typer.Option("--embeddings/--no-embeddings",
                   help="CLIP image embeddings (never downloads).",
                   show_default="auto: on when the clip-vit-b-32 weights are here")]
ClipOpt = Annotated[Path | None, typer.Option("--clip-checkpoint", help="A transformers CLIP model folder to use.",
                                      show_default="the registry's clip-vit-b-32")]
DeviceOpt = Annotated[str, typer.Option("--device", help="CLIP device: auto, cpu, cuda or mps.")]
AllOpt = Annotated[bool, typer.Option("--all-plates", help="Ignore dedupe.json: use every plate, not only the kept ones.",
                                      show_default="off")]
MaxResidueOpt = Annotated[float, typer.Option(
    "--max-residue", help="Residue score above which a plate the checks passed may still show part of a character "
    "and stays out of the training set (the checks flag at qa.residue_threshold, 0.3: where 20 % of one shows).")]


def _show(result: Any, lines: list[str]) -> None:
    """Print a step's outcome: one JSON line with --log-json, else the lines (and warnings on stderr).

    An existing OUT/report.html is rewritten so that it shows the step.
    """
    out = Path(result.path).parent.parent
    if (out / "report.html").is_file():
        from cleanplate.report import write_report

        write_report(out)
    if State.log_json:
        print(json.dumps({"step": result.step, "skipped": result.skipped, "path": str(result.path),
                          "summary": result.summary, "warnings": result.warnings}), flush=True)
        return
    for w in result.warnings:
        err_console.print(f"[yellow]warning:[/] {w}", highlight=False, soft_wrap=True)
    if State.quiet:
        return
    if result.skipped:
        out_console.print(f"{result.step}: inputs and settings unchanged since the last run, kept {result.path} "
                          "(--force redoes it)", highlight=False, soft_wrap=True)
    for line in lines:
        out_console.print(line, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the dataset commands to the ``cleanplate`` app (and the CLIP weights to ``cleanplate weights``)."""
    import cleanplate.dataset.features  # noqa: F401  (registers clip-vit-b-32 in the weights registry)

    @app.command()
    def dedupe(
        out: OutArg,
        threshold: Annotated[float, typer.Option("--threshold", help="Max mean Hamming distance of pHash and dHash "
                                                 "(0-64) between near-duplicates.")] = 10.0,
        embeddings: EmbOpt = None,
        embedding_threshold: Annotated[float, typer.Option("--embedding-threshold",
                                       help="CLIP cosine similarity that also makes near-duplicates.")] = 0.95,
        max_residue: MaxResidueOpt = EXPORT_RESIDUE,
        clip_checkpoint: ClipOpt = None, device: DeviceOpt = "auto", force: ForceOpt = False,
    ) -> None:
        """Group near-duplicate plates and keep the best of each (passes the checks, most complete mask, sharpest)."""

        def body() -> int:
            from cleanplate.dataset import dedupe as run_dedupe

            r = run_dedupe(out, threshold=threshold, embeddings=embeddings, embedding_threshold=embedding_threshold,
                           max_residue=max_residue, checkpoint=clip_checkpoint, device=device, force=force,
                           progress=Reporter(State.quiet, State.log_json))
            s = r.summary
            _show(r, [f"dedupe: kept {s.get('kept')} of {s.get('plates')} plates ({s.get('groups')} groups, "
                      f"{s.get('dropped_duplicates')} near-duplicates dropped, {s.get('excluded')} failed or "
                      f"missing) -> {r.path}", f"embeddings: {s.get('embeddings')}"])
            return 0

        _guard(body)

    @app.command()
    def organize(
        out: OutArg,
        labels: Annotated[Path | None, typer.Option("--labels", help="Scene labels file (YAML list or one per line) "
                                                    "for CLIP zero-shot labels.", show_default="none")] = None,
        clusters: Annotated[int | None, typer.Option("--clusters", "-k", help="Number of clusters.",
                                                     show_default="chosen by silhouette score")] = None,
        copy: Annotated[bool, typer.Option("--copy", help="Copy plates into the cluster folders instead of symlinking.",
                                             show_default="off: symlinks")] = False,
        all_plates: AllOpt = False, embeddings: EmbOpt = None, clip_checkpoint: ClipOpt = None,
        device: DeviceOpt = "auto", seed: Annotated[int, typer.Option("--seed", help="k-means seed.")] = 0,
        force: ForceOpt = False,
    ) -> None:
        """Cluster plates by scene type: OUT/dataset/clusters/<label>/ and a contact sheet <label>.jpg each."""

        def body() -> int:
            from cleanplate.dataset import organize as run_organize

            r = run_organize(out, clusters=clusters, labels_file=labels, embeddings=embeddings,
                             checkpoint=clip_checkpoint, device=device, copy=copy, use_dedupe=not all_plates,
                             seed=seed, force=force, progress=Reporter(State.quiet, State.log_json))
            s = r.summary
            data = json.loads(r.path.read_text())
            sizes = ", ".join(f"{c['label']} ({c['size']})" for c in data.get("clusters", []))
            _show(r, [f"organize: {s.get('plates')} plates ({s.get('input')}) in {s.get('clusters')} clusters by "
                      f"{s.get('features')}, silhouette {s.get('silhouette')}: {sizes}",
                      f"folders and contact sheets: {r.path.parent / 'clusters'}"])
            return 0

        _guard(body)

    @app.command("export-lora")
    def export_lora(
        out: OutArg,
        dataset: Annotated[Path, typer.Option("--output", "-o", help="Training set folder to write.")],
        fmt: Annotated[str, typer.Option("--format", help="Layout: kohya (sd-scripts).")] = "kohya",
        trigger: Annotated[str, typer.Option("--trigger", help="Trigger word, first in every caption.")] = "cleanplate_bg",
        repeats: Annotated[int, typer.Option("--repeats", help="Repeats per image (num_repeats, folder prefix).")] = 10,
        concept: Annotated[str, typer.Option("--concept", help="Concept name (folder <repeats>_<concept>).")] = "background",
        resolution: Annotated[int, typer.Option("--resolution", help="Training resolution (>= 1024: SDXL script).")] = 1024,
        batch_size: Annotated[int, typer.Option("--batch-size", help="Training batch size.")] = 1,
        caption: Annotated[str, typer.Option("--caption", help="Caption template: {trigger}, {scene}, {concept}; "
                                             "comma-separated tags.")] = "{trigger}, {scene}, background, scenery",
        include_flagged: Annotated[bool, typer.Option("--include-flagged", help="Keep plates flagged by the checks.",
                                                         show_default="off")] = False,
        max_residue: MaxResidueOpt = EXPORT_RESIDUE,
        masked_loss: Annotated[bool, typer.Option("--masked-loss", help="Export the ORIGINAL frames with the inverted "
                                                  "removal mask as loss mask: no invented pixel is trained on.",
                                                  show_default="off")] = False,
        mask_form: Annotated[str, typer.Option("--mask-form", help="Masked loss as conditioning mask images "
                                               "(conditioning_data_dir) or the PNG alpha channel (alpha_mask).")] = "conditioning",
        bucket: Annotated[bool, typer.Option("--bucket/--no-bucket", help="Aspect-ratio buckets.")] = True,
        min_bucket_reso: Annotated[int | None, typer.Option("--min-bucket-reso", help="Smallest bucket side.",
                                                   show_default="resolution/4")] = None,
        max_bucket_reso: Annotated[int | None, typer.Option("--max-bucket-reso", help="Largest bucket side.",
                                                   show_default="2 x resolution")] = None,
        bucket_steps: Annotated[int, typer.Option("--bucket-steps", help="bucket_reso_steps.")] = 64,
        all_plates: AllOpt = False,
        force: Annotated[bool, typer.Option("--force", help="Redo even when unchanged; also write into a non-empty "
                                            "folder that holds no cleanplate export.", show_default="off")] = False,
    ) -> None:
        """Write a kohya-ss training set: images + captions, dataset_config.toml, train_command.sh, README.md."""

        def body() -> int:
            from cleanplate.dataset import export_lora as run_export

            r = run_export(out, dataset, fmt=fmt, trigger=trigger, repeats=repeats, concept=concept,
                           resolution=resolution, batch_size=batch_size, caption=caption,
                           include_flagged=include_flagged, max_residue=max_residue, masked_loss=masked_loss,
                           mask_form=mask_form,
                           bucket=bucket, min_bucket_reso=min_bucket_reso, max_bucket_reso=max_bucket_reso,
                           bucket_steps=bucket_steps, use_dedupe=not all_plates, force=force,
                           progress=Reporter(State.quiet, State.log_json))
            s = r.summary
            left = ", ".join(f"{s.get(k)} {k.replace('_', ' ')}" for k in ("near_duplicates", "flagged", "failed", "other")
                             if s.get(k))
            _show(r, [f"export-lora: {s.get('exported')} images -> {s.get('image_dir')}"
                      f"{' (original frames + loss masks)' if s.get('masked_loss') else ''}; left out: {left or 'none'}",
                      f"train: MODEL=/path/to/model.safetensors bash {Path(str(s.get('dataset'))) / 'train_command.sh'}"])
            return 0

        _guard(body)
