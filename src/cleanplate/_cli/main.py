"""``cleanplate`` entry point: parse, build the config, call the library, map errors to exit codes."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from cleanplate import __version__
from cleanplate._cli.common import State, _config, _guard, from_config
from cleanplate._cli.ui import Reporter, err_console, print_summary
from cleanplate.config import Config
from cleanplate.errors import TooManyFailuresError

app = typer.Typer(
    name="cleanplate",
    help="Turn film frames into clean background plates: characters removed, scenery restored.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        print(f"cleanplate {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and re-raise internal errors.", show_default="off")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or summary.", show_default="off")] = False,
    log_json: Annotated[bool, typer.Option("--log-json", help="JSON lines on stdout instead of progress bars.", show_default="off")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.", show_default="off")] = False,
) -> None:
    State.debug, State.quiet, State.log_json = debug, quiet, log_json
    logging.basicConfig(level=logging.DEBUG if debug else logging.ERROR, format="%(levelname)s %(name)s: %(message)s")


# ------------------------------------------------------------------------------------- options

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file.", show_default="none")]
ProfileOpt = Annotated[str | None, typer.Option("--profile", "-p", help="Named profile (default, luca, ...).", show_default="default")]
DeviceOpt = Annotated[str | None, typer.Option("--device", help="auto, cpu, cuda or mps.", show_default=from_config("run.device"))]
MethodOpt = Annotated[str | None, typer.Option("--method", help="Fill method: patchmatch, opencv-telea, opencv-ns, lama, ...", show_default=from_config("fill.method"))]
ForceOpt = Annotated[bool, typer.Option("--force", help="Redo frames already done (and outputs of another config).", show_default="off")]
LimitOpt = Annotated[int | None, typer.Option("--limit", help="Process at most N frames.", show_default=from_config("input.limit") + " (all frames)")]
PlateOpt = Annotated[str | None, typer.Option("--plate-format", help="jpg or png.", show_default=from_config("output.plate_format"))]
MaxFailedOpt = Annotated[float | None, typer.Option("--max-failed", help="Allowed fraction of failed frames.", show_default=from_config("run.max_failed"))]
RecursiveOpt = Annotated[bool | None, typer.Option("--recursive/--no-recursive", help="Find frames in sub-folders.", show_default=from_config("input.recursive"))]
EveryOpt = Annotated[int | None, typer.Option("--every", help="Video input: keep every N-th frame.", show_default=from_config("input.every"))]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Any setting as dotted.key=value (repeatable).", show_default="none")]
BatchOpt = Annotated[int | None, typer.Option("--batch-size", help="Frames per fill batch.", show_default=from_config("fill.batch_size"))]
DILATE_HELP = ("Dilation of the removal mask (elliptical kernel), in px of a 1080-line frame, scaled with the "
               "frame: 20 gives 4 px at 240 lines, 8 px at 436.")
DilateOpt = Annotated[int | None, typer.Option("--mask-dilate", help=DILATE_HELP, show_default=from_config("masks.dilate"))]
MinSizeOpt = Annotated[int | None, typer.Option("--min-instance-size", help="Drop instances smaller than PX pixels.", show_default=from_config("segment.min_instance_size"))]
ContextOpt = Annotated[str | None, typer.Option("--context-mode", help="Cut-outs: transparent, black, white, blur, context.", show_default=from_config("output.context_mode"))]
BackendOpt = Annotated[str | None, typer.Option("--backend", help="Segmenter: saliency or sam2.", show_default=from_config("segment.backend"))]
ModelTypeOpt = Annotated[str | None, typer.Option("--model-type", help="SAM2 model, e.g. sam2.1_hiera_large.", show_default=from_config("segment.sam2.model_type"))]
SelectOpt = Annotated[str | None, typer.Option("--select", help="Which instances are characters: all, salient, largest-k.", show_default=from_config("segment.select"))]
PointsOpt = Annotated[int | None, typer.Option("--points-per-side", help="SAM2 automatic-mask grid.", show_default=from_config("segment.sam2.points_per_side"))]
IouOpt = Annotated[float | None, typer.Option("--pred-iou-thresh", help="SAM2 predicted-IoU threshold.", show_default=from_config("segment.sam2.pred_iou_thresh"))]
StabOpt = Annotated[float | None, typer.Option("--stability-score-thresh", help="SAM2 stability threshold.", show_default=from_config("segment.sam2.stability_score_thresh"))]
_SAM2 = "SAM2 "
Sam2CkptOpt = Annotated[str | None, typer.Option("--sam2-checkpoint", help="SAM2 transformers folder (config.json + safetensors).", show_default=from_config("segment.sam2.checkpoint"))]
PpbOpt = Annotated[int | None, typer.Option("--points-per-batch", help=_SAM2 + "points decoded per batch.", show_default=from_config("segment.sam2.points_per_batch"))]
StabOffOpt = Annotated[float | None, typer.Option("--stability-score-offset", help=_SAM2 + "stability offset.", show_default=from_config("segment.sam2.stability_score_offset"))]
MaskThrOpt = Annotated[float | None, typer.Option("--mask-threshold", help=_SAM2 + "mask logit threshold.", show_default=from_config("segment.sam2.mask_threshold"))]
BoxNmsOpt = Annotated[float | None, typer.Option("--box-nms-thresh", help=_SAM2 + "NMS IoU within a crop.", show_default=from_config("segment.sam2.box_nms_thresh"))]
CropLayersOpt = Annotated[int | None, typer.Option("--crop-n-layers", help=_SAM2 + "crop layers (0: whole frame only).", show_default=from_config("segment.sam2.crop_n_layers"))]
CropNmsOpt = Annotated[float | None, typer.Option("--crop-nms-thresh", help=_SAM2 + "NMS IoU between crops.", show_default=from_config("segment.sam2.crop_nms_thresh"))]
CropOverlapOpt = Annotated[float | None, typer.Option("--crop-overlap-ratio", help=_SAM2 + "crop overlap.", show_default=from_config("segment.sam2.crop_overlap_ratio"))]
CropDownOpt = Annotated[int | None, typer.Option("--crop-n-points-downscale-factor", help=_SAM2 + "grid downscale per crop layer.", show_default=from_config("segment.sam2.crop_n_points_downscale_factor"))]
MinRegionOpt = Annotated[int | None, typer.Option("--min-mask-region-area", help=_SAM2 + "remove holes/islands below PX (OpenCV).", show_default=from_config("segment.sam2.min_mask_region_area"))]
MultimaskOpt = Annotated[bool | None, typer.Option("--multimask-output/--no-multimask-output", help=_SAM2 + "three masks per point.", show_default=from_config("segment.sam2.multimask_output"))]
CacheClearOpt = Annotated[int | None, typer.Option("--cache-clear-interval", help="Empty the CUDA cache every N frames.", show_default=from_config("segment.sam2.cache_clear_interval"))]
SelectKOpt = Annotated[int | None, typer.Option("--select-k", help="k for --select largest-k.", show_default=from_config("segment.select_k"))]
OverlapOpt = Annotated[float | None, typer.Option("--salient-overlap", help="--select salient: min share of an instance on the saliency mask.", show_default=from_config("segment.salient_overlap"))]
PromptsOpt = Annotated[str | None, typer.Option("--prompts", help="SAM2 prompts: grid or salient-boxes.", show_default=from_config("segment.prompts"))]

LamaFormatOpt = Annotated[str | None, typer.Option("--lama-format", help="auto, torchscript or onnx.", show_default=from_config("fill.lama.format"))]
StrategyOpt = Annotated[str | None, typer.Option("--strategy", help="LaMa resolution strategy: original, crop, resize.", show_default=from_config("fill.lama.strategy"))]
CheckpointOpt = Annotated[str | None, typer.Option("--checkpoint", help="Your own LaMa model file.", show_default=from_config("fill.lama.checkpoint"))]
RunnerOpt = Annotated[str | None, typer.Option("--runner", help="Where the stages run: local (default) or ray.", show_default=from_config("run.runner"))]
RayAddressOpt = Annotated[str | None, typer.Option("--ray-address", help="--runner ray: the Ray cluster's address "
                                                   "(default: start a local one).", show_default=from_config("run.ray_address"))]


_SEGMENT_KEYS = {"select", "select_k", "salient_overlap", "prompts", "backend", "min_instance_size"}
_SEGMENT_FLAGS = (
    "backend", "model_type", "sam2_checkpoint", "select", "select_k", "salient_overlap", "prompts",
    "points_per_side", "points_per_batch", "pred_iou_thresh", "stability_score_thresh", "stability_score_offset",
    "mask_threshold", "box_nms_thresh", "crop_n_layers", "crop_nms_thresh", "crop_overlap_ratio",
    "crop_n_points_downscale_factor", "min_mask_region_area", "multimask_output", "cache_clear_interval",
    "min_instance_size",
)


def _segment_overrides(params: dict[str, Any]) -> dict[str, Any]:
    """A command's segmentation flags (its ``locals()``) -> dotted keys, ``segment.*`` or ``segment.sam2.*``."""
    out = {}
    for name in _SEGMENT_FLAGS:
        key = "checkpoint" if name == "sam2_checkpoint" else name
        out["segment__" + key if key in _SEGMENT_KEYS else "segment__sam2__" + key] = params[name]
    if params["model_type"] and not params["backend"]:
        # the old workflow's --model-type sam2_hiera_large means "segment with SAM2": select the backend
        out["segment__backend"] = "sam2"
    return out


def _check_failures(summary: Any, cfg: Config) -> int:
    print_summary(summary, State.log_json, State.quiet)
    if summary.failed_fraction > cfg.run.max_failed:
        raise TooManyFailuresError(
            f"{len(summary.failed_frames)} of {summary.frames_total} frames failed "
            f"({100 * summary.failed_fraction:.1f} % > --max-failed {100 * cfg.run.max_failed:.1f} %)"
        )
    return 0


# ------------------------------------------------------------------------------------- commands

@app.command()
def run(
    input: Annotated[Path, typer.Argument(help="Folder of frames or a video file.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output folder.")],
    config: ConfigOpt = None, profile: ProfileOpt = None, method: MethodOpt = None, device: DeviceOpt = None,
    limit: LimitOpt = None, force: ForceOpt = False, max_failed: MaxFailedOpt = None, plate_format: PlateOpt = None,
    recursive: RecursiveOpt = None, every: EveryOpt = None, batch_size: BatchOpt = None,
    mask_dilate: DilateOpt = None, min_instance_size: MinSizeOpt = None, context_mode: ContextOpt = None,
    backend: BackendOpt = None, model_type: ModelTypeOpt = None, sam2_checkpoint: Sam2CkptOpt = None,
    select: SelectOpt = None, select_k: SelectKOpt = None, salient_overlap: OverlapOpt = None,
    prompts: PromptsOpt = None, points_per_side: PointsOpt = None, points_per_batch: PpbOpt = None,
    pred_iou_thresh: IouOpt = None, stability_score_thresh: StabOpt = None,
    stability_score_offset: StabOffOpt = None, mask_threshold: MaskThrOpt = None, box_nms_thresh: BoxNmsOpt = None,
    crop_n_layers: CropLayersOpt = None, crop_nms_thresh: CropNmsOpt = None, crop_overlap_ratio: CropOverlapOpt = None,
    crop_n_points_downscale_factor: CropDownOpt = None, min_mask_region_area: MinRegionOpt = None,
    multimask_output: MultimaskOpt = None, cache_clear_interval: CacheClearOpt = None,
    lama_format: LamaFormatOpt = None, strategy: StrategyOpt = None, checkpoint: CheckpointOpt = None,
    report: Annotated[bool, typer.Option("--report/--no-report", help="Write report.html at the end.",
                                         show_default="on")] = True,
    runner: RunnerOpt = None, ray_address: RayAddressOpt = None, set_: SetOpt = None,
) -> None:
    """Segment the characters of every frame and fill them: clean plates in OUT/backgrounds/."""
    params = dict(locals())

    def body() -> int:
        import cleanplate

        cfg = _config(config, profile, set_, fill__method=method, run__device=device, input__limit=limit,
                      run__max_failed=max_failed, output__plate_format=plate_format, input__recursive=recursive,
                      input__every=every, fill__batch_size=batch_size, masks__dilate=mask_dilate,
                      output__context_mode=context_mode,
                      fill__lama__format=lama_format, fill__lama__strategy=strategy, fill__lama__checkpoint=checkpoint,
                      run__runner=runner, run__ray_address=ray_address, **_segment_overrides(params))
        summary = cleanplate.run(input, output, cfg, force=force, progress=Reporter(State.quiet, State.log_json),
                                 raise_errors=State.debug, report=report)
        _print_report_path(summary)
        return _check_failures(summary, cfg)

    _guard(body)


def _print_report_path(summary: Any) -> None:
    path = summary.extra.get("report")
    if path and not State.quiet and not State.log_json:
        err_console.print(f"report: {path}", highlight=False)


@app.command()
def segment(
    input_dir: Annotated[Path, typer.Option("--input-dir", "-i", help="Folder of frames or a video file.")],
    output_dir: Annotated[Path, typer.Option("--output-dir", "-o", help="Output folder.")],
    config: ConfigOpt = None, profile: ProfileOpt = None, device: DeviceOpt = None,
    min_instance_size: MinSizeOpt = None,
    save_masks: Annotated[bool | None, typer.Option("--save-masks/--no-save-masks", help="Write each instance's mask.",
                                                    show_default=from_config("output.save_masks"))] = None,
    context_mode: ContextOpt = None, limit: LimitOpt = None, force: ForceOpt = False, max_failed: MaxFailedOpt = None,
    recursive: RecursiveOpt = None, every: EveryOpt = None, mask_dilate: DilateOpt = None,
    backend: BackendOpt = None, model_type: ModelTypeOpt = None, sam2_checkpoint: Sam2CkptOpt = None,
    select: SelectOpt = None, select_k: SelectKOpt = None, salient_overlap: OverlapOpt = None,
    prompts: PromptsOpt = None, points_per_side: PointsOpt = None, points_per_batch: PpbOpt = None,
    pred_iou_thresh: IouOpt = None, stability_score_thresh: StabOpt = None,
    stability_score_offset: StabOffOpt = None, mask_threshold: MaskThrOpt = None, box_nms_thresh: BoxNmsOpt = None,
    crop_n_layers: CropLayersOpt = None, crop_nms_thresh: CropNmsOpt = None, crop_overlap_ratio: CropOverlapOpt = None,
    crop_n_points_downscale_factor: CropDownOpt = None, min_mask_region_area: MinRegionOpt = None,
    multimask_output: MultimaskOpt = None, cache_clear_interval: CacheClearOpt = None,
    runner: RunnerOpt = None, ray_address: RayAddressOpt = None, set_: SetOpt = None,
) -> None:
    """Find the characters only: cut-outs in instances/, removal masks in masks/."""
    params = dict(locals())

    def body() -> int:
        from cleanplate.pipeline import segment as segment_stage

        cfg = _config(config, profile, set_, run__device=device,
                      output__save_masks=save_masks, output__context_mode=context_mode, input__limit=limit,
                      run__max_failed=max_failed, input__recursive=recursive, input__every=every,
                      masks__dilate=mask_dilate, run__runner=runner, run__ray_address=ray_address,
                      **_segment_overrides(params))
        summary = segment_stage(input_dir, output_dir, cfg, force=force,
                                progress=Reporter(State.quiet, State.log_json), raise_errors=State.debug)
        return _check_failures(summary, cfg)

    _guard(body)


@app.command()
def inpaint(
    sam2_dir: Annotated[Path, typer.Option("--sam2-dir", "-s", help="Segment output, or any folder with masks/<frame>.png.")],
    output_dir: Annotated[Path, typer.Option("--output-dir", "-o", help="Where backgrounds/ goes.")],
    input_dir: Annotated[Path | None, typer.Option("--input-dir", "-i", help="The frames (when not a segment output).",
                                                   show_default="the segment output's input")] = None,
    config: ConfigOpt = None, profile: ProfileOpt = None, method: MethodOpt = None, batch_size: BatchOpt = None,
    mask_dilate: Annotated[int | None, typer.Option(
        "--mask-dilate", help="Extra dilation of the masks read, in px of the frame as it is (not scaled). Unset: "
        "none for a cleanplate segment output (its masks are dilated already); for other mask folders masks.dilate, "
        "in px of a 1080-line frame, scaled with the frame: 20 gives 4 px at 240 lines.",
        show_default="fill.mask_dilate: none")] = None,
    device: DeviceOpt = None, plate_format: PlateOpt = None, limit: LimitOpt = None, force: ForceOpt = False,
    max_failed: MaxFailedOpt = None, lama_format: LamaFormatOpt = None, strategy: StrategyOpt = None,
    checkpoint: CheckpointOpt = None, runner: RunnerOpt = None, ray_address: RayAddressOpt = None,
    set_: SetOpt = None,
) -> None:
    """Fill the masks of a segment output (or any mask folder): clean plates in OUT/backgrounds/."""

    def body() -> int:
        from cleanplate.pipeline import inpaint as inpaint_stage

        cfg = _config(config, profile, set_, fill__method=method, fill__batch_size=batch_size,
                      fill__mask_dilate=mask_dilate, run__device=device, output__plate_format=plate_format,
                      input__limit=limit, run__max_failed=max_failed, fill__lama__format=lama_format,
                      fill__lama__strategy=strategy, fill__lama__checkpoint=checkpoint, run__runner=runner,
                      run__ray_address=ray_address)
        summary = inpaint_stage(sam2_dir, output_dir, cfg, frames=input_dir, force=force,
                                progress=Reporter(State.quiet, State.log_json), raise_errors=State.debug)
        return _check_failures(summary, cfg)

    _guard(body)


@app.command()
def demo(
    output: Annotated[Path, typer.Option("--output", "-o", help="Output folder.")] = Path("demo-out"),
    method: MethodOpt = None, force: ForceOpt = False,
) -> None:
    """Run the whole pipeline offline on the bundled sample (10 frames of the open film Sintel)."""

    def body() -> int:
        import cleanplate
        from cleanplate.sample import sample_dir

        cfg = _config(None, None, None, fill__method=method)
        summary = cleanplate.run(sample_dir(), output, cfg, force=force,
                                 progress=Reporter(State.quiet, State.log_json), raise_errors=State.debug)
        _print_report_path(summary)
        return _check_failures(summary, cfg)

    _guard(body)


config_app = typer.Typer(help="Show the resolved configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("show")
def config_show(config: ConfigOpt = None, profile: ProfileOpt = None, set_: SetOpt = None) -> None:
    """Print the resolved configuration as YAML (profile < file < --set)."""

    def body() -> int:
        sys.stdout.write(_config(config, profile, set_).to_yaml())
        return 0

    _guard(body)


@config_app.command("profiles")
def config_profiles() -> None:
    """List the profiles shipped with cleanplate."""
    from cleanplate.config import available_profiles

    for name in available_profiles():
        print(name)


from cleanplate._cli.weights_cmd import weights_app  # noqa: E402

app.add_typer(weights_app, name="weights")

from cleanplate._cli.extra_cmds import register as _register_extra  # noqa: E402  (report / compare / bench)

_register_extra(app)

from cleanplate._cli.dataset_cmds import register as _register_dataset  # noqa: E402  (dedupe / organize / export-lora)

_register_dataset(app)

_GLOBAL_FLAGS = ("--debug", "--quiet", "-q", "--log-json")


def main(argv: list[str] | None = None) -> None:
    """Entry point. Global flags are accepted anywhere on the line (``cleanplate run ... --quiet``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    flags = [a for a in args if a in _GLOBAL_FLAGS]
    rest = [a for a in args if a not in _GLOBAL_FLAGS]
    app(args=flags + rest, prog_name="cleanplate")


if __name__ == "__main__":
    main()
