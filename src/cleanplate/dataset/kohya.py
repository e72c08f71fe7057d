"""Text files of a kohya-ss sd-scripts training set: the dataset config TOML, the training
command and the README (with the diffusers equivalent).

Config format: sd-scripts ``docs/config_README-en.md`` (``[general]``, ``[[datasets]]``,
``[[datasets.subsets]]``); masked loss: ``docs/masked_loss_README`` (``conditioning_data_dir`` mask
images, white = train, black = ignore, R channel used; or ``alpha_mask = true``).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class KohyaSettings:
    image_dir: Path
    repeats: int
    concept: str
    resolution: int
    batch_size: int
    bucket: bool
    min_bucket_reso: int
    max_bucket_reso: int
    bucket_reso_steps: int
    trigger: str
    mask_dir: Path | None = None  # masked loss with conditioning images
    alpha_mask: bool = False  # masked loss with the alpha channel


def toml_str(s: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for ch in s:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def dataset_config(k: KohyaSettings) -> str:
    lines = [
        "# kohya-ss sd-scripts dataset config (pass with --dataset_config), written by cleanplate export-lora.",
        "# Paths are absolute: export again (or edit them) after moving this folder.",
        "[general]",
        'caption_extension = ".txt"',
        "shuffle_caption = false",
        "keep_tokens = 1",
        "flip_aug = false",
        "color_aug = false",
        "",
        "[[datasets]]",
        f"resolution = {k.resolution}",
        f"batch_size = {k.batch_size}",
        f"enable_bucket = {'true' if k.bucket else 'false'}",
    ]
    if k.bucket:
        lines += [f"min_bucket_reso = {k.min_bucket_reso}", f"max_bucket_reso = {k.max_bucket_reso}",
                  f"bucket_reso_steps = {k.bucket_reso_steps}", "bucket_no_upscale = true"]
    lines += [
        "",
        "  [[datasets.subsets]]",
        f"  image_dir = {toml_str(str(k.image_dir))}",
        f"  num_repeats = {k.repeats}",
        '  caption_extension = ".txt"',
    ]
    if k.mask_dir is not None:
        lines.append("  # loss masks: same file names as the images, white = train, black = ignore (the removed characters)")
        lines.append(f"  conditioning_data_dir = {toml_str(str(k.mask_dir))}")
    if k.alpha_mask:
        lines.append("  # loss mask in each image's alpha channel: 0 (the removed characters) is ignored")
        lines.append("  alpha_mask = true")
    return "\n".join(lines) + "\n"


def script_name(resolution: int) -> str:
    return "sdxl_train_network.py" if resolution >= 1024 else "train_network.py"


def train_command(k: KohyaSettings, root: Path) -> str:
    script = script_name(k.resolution)
    args = [
        '--pretrained_model_name_or_path="$MODEL"',
        '--dataset_config="$HERE/dataset_config.toml"',
        '--output_dir="$HERE/output"',
        f"--output_name={shlex.quote(k.concept)}",
        "--network_module=networks.lora", "--network_dim=32", "--network_alpha=16",
        "--learning_rate=1e-4", "--optimizer_type=AdamW8bit", "--lr_scheduler=cosine",
        "--max_train_epochs=10", "--save_every_n_epochs=2", "--save_model_as=safetensors",
        "--mixed_precision=bf16", "--cache_latents", "--gradient_checkpointing", "--sdpa", "--seed=0",
    ]
    if script.startswith("sdxl"):
        args.append("--network_train_unet_only")
    if k.mask_dir is not None:
        args.append("--masked_loss")
    body = " \\\n  ".join(args)
    return (
        "#!/usr/bin/env bash\n"
        f"# Train a background LoRA on this set with kohya-ss sd-scripts ({script}).\n"
        "# Run from your sd-scripts checkout: MODEL=/path/to/base_model.safetensors bash "
        f"{shlex.quote(str(root / 'train_command.sh'))}\n"
        "set -euo pipefail\n"
        'HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"\n'
        'MODEL="${MODEL:?set MODEL to the base model (.safetensors file or diffusers folder)}"\n'
        f"accelerate launch --num_cpu_threads_per_process 1 {script} \\\n  {body}\n"
    )


def readme(k: KohyaSettings, root: Path, counts: dict[str, int], example_caption: str) -> str:
    diffusers_script = "train_text_to_image_lora_sdxl.py" if k.resolution >= 1024 else "train_text_to_image_lora.py"
    masked = k.mask_dir is not None or k.alpha_mask
    what = ("original frames (characters still in them) with a loss mask that ignores the characters: "
            "the LoRA never sees an invented pixel" if masked else "clean plates (characters removed)")
    left = ", ".join(f"{v} {n.replace('_', '-')}" for n, v in counts.items() if n != "exported" and v)
    lines = [
        f"# {k.concept} - background LoRA training set (cleanplate export-lora)",
        "",
        f"- {counts.get('exported', 0)} images: {what}",
        f"- images and captions: `img/{k.image_dir.name}/` (`<name>.png|jpg` + `<name>.txt`, "
        f"`metadata.jsonl` for diffusers)",
    ]
    if k.mask_dir is not None:
        lines.append(f"- loss masks: `mask/{k.mask_dir.name}/` (same file names; white = train, black = ignore)")
    if k.alpha_mask:
        lines.append("- loss masks: the alpha channel of each PNG (0 = ignore)")
    lines += [
        f"- trigger word: `{k.trigger}`; caption example: `{example_caption}`",
        f"- left out: {left or 'nothing'}",
        "",
        "## kohya-ss sd-scripts",
        "",
        "`dataset_config.toml` is the dataset config; `train_command.sh` the matching command:",
        "",
        "```bash",
        "cd /path/to/sd-scripts",
        f"MODEL=/path/to/base_model.safetensors bash {shlex.quote(str(root / 'train_command.sh'))}",
        "```",
        "",
    ]
    if not masked:
        lines.append(f"Without the config, `--train_data_dir={root / 'img'}` reads the repeats ({k.repeats}) "
                     "from the folder name.")
    if masked:
        lines += ["", "Masked loss applies to the latents (1/8 of the image size): thin gaps near the characters "
                      "are learned coarsely. The config enables it; the command passes `--masked_loss` "
                      "for conditioning masks (`alpha_mask = true` needs no flag)."]
    lines += [
        "",
        "## diffusers",
        "",
        "The image folder has a `metadata.jsonl` (`file_name`, `text`), so the diffusers example script reads "
        "it as an `imagefolder` dataset. It has no repeats: scale the epochs instead.",
        "",
        "```bash",
        f"accelerate launch examples/text_to_image/{diffusers_script} \\",
        "  --pretrained_model_name_or_path=$MODEL \\",
        f"  --train_data_dir={shlex.quote(str(k.image_dir))} \\",
        "  --image_column=image --caption_column=text \\",
        f"  --resolution={k.resolution} --train_batch_size={k.batch_size} \\",
        f"  --num_train_epochs={10 * k.repeats} --checkpointing_steps=500 \\",
        "  --learning_rate=1e-4 --lr_scheduler=cosine --lr_warmup_steps=0 --rank=32 \\",
        "  --mixed_precision=bf16 --seed=0 --output_dir=lora-output",
        "```",
    ]
    if masked:
        lines += ["", "The diffusers example scripts have no masked loss: for them, export without --masked-loss "
                      "(clean plates)."]
    return "\n".join(lines) + "\n"
