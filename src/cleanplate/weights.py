"""Registry of published model weights: name -> file, official URLs, checksum, size, licence.

Look-up order for :func:`resolve`:

1. an explicit ``checkpoint`` path (the user's own file: no checksum check),
2. folders listed in ``$CLEANPLATE_WEIGHTS`` (``os.pathsep``-separated), then weights bundled
   with the package,
3. the user cache: ``$CLEANPLATE_HOME/weights`` or the XDG cache dir (``~/.cache/cleanplate/weights``),
4. download from the official URLs with a progress callback, checksum verification and an atomic
   rename into the cache — unless offline (``$CLEANPLATE_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``).

Every failure is a :class:`~cleanplate.errors.WeightsError` whose one-line message names the file,
its URL and where to put it.
"""

from __future__ import annotations

import http.client
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from platformdirs import user_cache_dir

from cleanplate import hashes
from cleanplate.errors import WeightsError
from cleanplate.hashes import file_digest

ProgressFn = Callable[[int, int | None], None]
"""Called as ``progress(bytes_done, bytes_total_or_None)`` while downloading."""


@dataclass(frozen=True)
class WeightsSpec:
    """A published weights file (or, with ``hf_repo``, a Hugging Face model repository)."""

    name: str
    filename: str
    urls: tuple[str, ...]
    license: str
    description: str
    kind: str
    sha256: str | None = None
    md5: str | None = None
    size: int | None = None
    bundled: bool = False
    hf_repo: str | None = None
    hf_files: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class WeightsUse:
    """Weights a backend actually loaded, for run.json."""

    name: str
    path: str
    sha256: str | None
    source: str  # checkpoint | env | bundled | cache | download | hf-cache


REGISTRY: dict[str, WeightsSpec] = {}


def register(spec: WeightsSpec) -> WeightsSpec:
    REGISTRY[spec.name] = spec
    return spec


def get_spec(name: str) -> WeightsSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise WeightsError(f"unknown weights '{name}' (known: {', '.join(sorted(REGISTRY))})") from None


def list_specs(kind: str | None = None) -> list[WeightsSpec]:
    return [s for _, s in sorted(REGISTRY.items()) if kind is None or s.kind == kind]


# --- locations ---------------------------------------------------------------------------------

def home_dir() -> Path:
    env = os.environ.get("CLEANPLATE_HOME")
    return Path(env).expanduser() if env else Path(user_cache_dir("cleanplate", appauthor=False))


def cache_dir() -> Path:
    return home_dir() / "weights"


def env_dirs() -> list[Path]:
    raw = os.environ.get("CLEANPLATE_WEIGHTS", "")
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()]


def bundled_dir() -> Path:
    return Path(str(resources.files("cleanplate") / "models"))


def offline() -> bool:
    truthy = {"1", "true", "yes", "on"}
    return (
        os.environ.get("CLEANPLATE_OFFLINE", "").lower() in truthy
        or os.environ.get("HF_HUB_OFFLINE", "").lower() in truthy
    )


# --- checksums ---------------------------------------------------------------------------------
# Each weights file is hashed once: digests are cached (cleanplate/hashes.py) in
# ``$CLEANPLATE_HOME/weight-hashes.json`` and trusted only while the file is unchanged.

ALLOW_UNVERIFIED_ENV = "CLEANPLATE_ALLOW_UNVERIFIED"
"""Set to 1 to download a registry entry that has no published checksum (explicit user override)."""


def hash_cache_path() -> Path:
    return home_dir() / "weight-hashes.json"


def cached_digest(path: Path, algo: str = "sha256") -> str:
    """``file_digest`` of ``path``, from the hash cache when the file is unchanged since it was hashed."""
    return hashes.cached_digest(path, algo, hash_cache_path())


def _verify(spec: WeightsSpec, path: Path, *, cached: bool = True) -> tuple[str | None, str]:
    """(None or the reason ``path`` does not match the spec's size and checksum, its sha256)."""
    digest = cached_digest if cached else file_digest
    size = path.stat().st_size
    if spec.size is not None and size != spec.size:
        return f"size {size} B, expected {spec.size} B", ""
    sha = digest(path, "sha256")
    if spec.sha256 is not None and sha != spec.sha256:
        return f"sha256 {sha[:12]}..., expected {spec.sha256[:12]}...", sha
    if spec.sha256 is None and spec.md5 is not None:
        got = digest(path, "md5")
        if got != spec.md5:
            return f"md5 {got}, expected {spec.md5}", sha
    return None, sha


def check_file(spec: WeightsSpec, path: Path) -> str | None:
    """Return None when ``path`` matches the spec's size and checksum, else the reason."""
    return _verify(spec, path)[0]


def _where_msg(spec: WeightsSpec, command: bool = True) -> str:
    dirs = [str(cache_dir())] + [str(d) for d in env_dirs()]
    url = spec.urls[0] if spec.urls else (f"https://huggingface.co/{spec.hf_repo}" if spec.hf_repo else "?")
    where = f"download {url} and put '{spec.filename}' in {' or '.join(dirs)} (or a folder listed in $CLEANPLATE_WEIGHTS)"
    if command and spec.hf_repo and not spec.urls:  # a model folder: the CLI fetches the repository's files
        where = f"run `cleanplate weights download {spec.name}` on a connected machine, or {where}"
    return where


def how_to_get(spec: WeightsSpec) -> str:
    """How a user gets a missing file: the download command, and where to put it for offline use."""
    if not (spec.urls or spec.hf_repo):
        return _where_msg(spec)
    return f"get it with `cleanplate weights download {spec.name}`, or offline {_where_msg(spec, command=False)}"


# --- resolution --------------------------------------------------------------------------------

def candidates(spec: WeightsSpec) -> list[tuple[Path, str]]:
    """Places the file may already be, in look-up order, with their source label."""
    out: list[tuple[Path, str]] = [(d / spec.filename, "env") for d in env_dirs()]
    if spec.bundled:
        out.append((bundled_dir() / spec.filename, "bundled"))
    out.append((cache_dir() / spec.filename, "cache"))
    return out


def resolve(
    name: str,
    checkpoint: str | Path | None = None,
    *,
    download: bool = True,
    progress: ProgressFn | None = None,
) -> WeightsUse:
    """Find (or download) the weights called ``name``; return where they are.

    With ``checkpoint`` the user's own file is used as is (it must exist). Files found in the
    look-up folders are checked against the registry checksum; a mismatch is refused.
    """
    if checkpoint is not None:
        path = Path(checkpoint).expanduser()
        if not path.exists():
            raise WeightsError(f"checkpoint not found: {path}")
        return WeightsUse(name=name, path=str(path.resolve()), sha256=_sha_or_none(path), source="checkpoint")
    spec = get_spec(name)
    if spec.hf_repo and not spec.urls:
        return _resolve_hf(spec, download=download)
    for path, source in candidates(spec):
        if path.is_file():
            bad, sha = _verify(spec, path)
            if bad is not None:
                raise WeightsError(f"{path} is corrupt ({bad}); delete it, then {_where_msg(spec)}")
            return WeightsUse(name=spec.name, path=str(path), sha256=sha, source=source)
    if not download or offline():
        raise WeightsError(f"weights '{spec.name}' not found and offline: {how_to_get(spec)}")
    path = download_file(spec, progress=progress)
    return WeightsUse(name=spec.name, path=str(path), sha256=cached_digest(path), source="download")


def _sha_or_none(path: Path) -> str | None:
    """sha256 of a checkpoint file, or of the weights file in a checkpoint folder (None if none)."""
    if path.is_file():
        return cached_digest(path)
    return _hf_digest(path) if path.is_dir() else None


def download_file(spec: WeightsSpec, progress: ProgressFn | None = None, dest_dir: Path | None = None,
                  *, allow_unverified: bool = False) -> Path:
    """Download ``spec`` to ``dest_dir`` (the cache) via a temp file, verify, rename atomically.

    An entry without a checksum (sha256 or md5) is refused unless ``allow_unverified`` or
    ``$CLEANPLATE_ALLOW_UNVERIFIED=1``: nothing unverified is downloaded by default.
    """
    if not spec.urls:
        raise WeightsError(f"weights '{spec.name}' have no download URL: {_where_msg(spec)}")
    if spec.sha256 is None and spec.md5 is None and not allow_unverified \
            and os.environ.get(ALLOW_UNVERIFIED_ENV, "").lower() not in {"1", "true", "yes", "on"}:
        raise WeightsError(
            f"weights '{spec.name}' have no published checksum, so a download cannot be verified; "
            f"set {ALLOW_UNVERIFIED_ENV}=1 to download it anyway, or {_where_msg(spec)}"
        )
    dest_dir = dest_dir or cache_dir()
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WeightsError(f"cannot create weights cache {dest_dir}: {exc.strerror}") from None
    errors = []
    for url in spec.urls:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{spec.filename}.", suffix=".part", dir=dest_dir)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=30) as resp:
                total = resp.headers.get("Content-Length")
                total_i = int(total) if total and total.isdigit() else spec.size
                done = 0
                for chunk in iter(lambda r=resp: r.read(1 << 20), b""):
                    out.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total_i)
                out.flush()
                os.fsync(out.fileno())
            if total and total.isdigit() and done != int(total):
                raise OSError(f"connection closed after {done} of {total} B")
            bad, _ = _verify(spec, tmp, cached=False)
            if bad is not None:
                errors.append(f"{url}: checksum mismatch ({bad})")
                tmp.unlink(missing_ok=True)
                continue
            final = dest_dir / spec.filename
            os.replace(tmp, final)
            return final
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            if isinstance(exc, urllib.error.HTTPError):
                reason = f"HTTP {exc.code} {exc.reason}"
            errors.append(f"{url}: {reason}")
            tmp.unlink(missing_ok=True)
    if any("checksum mismatch" in e for e in errors):
        raise WeightsError(f"download of '{spec.name}' refused: {errors[-1]}; {_where_msg(spec)}")
    raise WeightsError(f"cannot download '{spec.name}' ({errors[-1]}); {_where_msg(spec)}")


def _resolve_hf(spec: WeightsSpec, *, download: bool) -> WeightsUse:
    """Hugging Face repositories: a folder named like the file in the look-up dirs, else the hub cache."""
    for base, source in [(d, "env") for d in env_dirs()] + [(cache_dir(), "cache")]:
        folder = base / spec.filename
        if (folder / "config.json").is_file():
            return WeightsUse(name=spec.name, path=str(folder), sha256=_hf_digest(folder), source=source)
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise WeightsError(
            f"weights '{spec.name}' need huggingface_hub: pip install 'cleanplate[sam2]'"
        ) from None
    try:
        path = snapshot_download(
            spec.hf_repo,
            allow_patterns=list(spec.hf_files) or None,
            local_files_only=not download or offline(),
        )
    except Exception as exc:  # huggingface_hub raises many types; report in one line
        raise WeightsError(
            f"weights '{spec.name}' ({spec.hf_repo}) not available: {type(exc).__name__}; "
            f"on a connected machine run `cleanplate weights download {spec.name}`, or put the repository "
            f"files in {cache_dir() / spec.filename}"
        ) from None
    return WeightsUse(name=spec.name, path=str(path), sha256=_hf_digest(Path(path)), source="hf-cache")


def _hf_digest(folder: Path) -> str | None:
    """sha256 of the weights file in a model folder (safetensors or bin), for run.json."""
    for pattern in ("*.safetensors", "*.bin", "*.pt"):
        files = sorted(folder.glob(pattern))
        if files:
            return cached_digest(files[0])
    return None


def verify(names: list[str] | None = None) -> list[tuple[WeightsSpec, str, str | None]]:
    """Check present files against the registry: (spec, status, path) with status ok/corrupt/missing."""
    out = []
    for spec in list_specs() if not names else [get_spec(n) for n in names]:
        if spec.hf_repo and not spec.urls:  # a model folder: present or not, no checksum
            try:
                out.append((spec, "ok", _resolve_hf(spec, download=False).path))
            except WeightsError:
                out.append((spec, "missing", None))
            continue
        found = None
        for path, _src in candidates(spec):
            if path.is_file():
                found = path
                break
        if found is None:
            out.append((spec, "missing", None))
            continue
        bad = check_file(spec, found)
        out.append((spec, "ok" if bad is None else f"corrupt: {bad}", str(found)))
    return out


def remove_partial_downloads(folder: Path | None = None) -> None:
    folder = folder or cache_dir()
    if folder.is_dir():
        for p in folder.glob(".*.part"):
            p.unlink(missing_ok=True)


# --- the registry ------------------------------------------------------------------------------
# Saliency (U²-Net family, rembg's official release assets): MD5s as rembg pins them; sizes as
# published with them by projects that mirror these files. Every entry with URLs has a checksum:
# download_file refuses one without (unless the user overrides it explicitly).
_REMBG = "https://github.com/danielgatis/rembg/releases/download/v0.0.0/"
register(WeightsSpec(
    name="u2netp", filename="u2netp.onnx", urls=(_REMBG + "u2netp.onnx",), kind="saliency",
    sha256="309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8", md5="8e83ca70e441ab06c318d82300c84806", size=4574861, bundled=True,
    license="Apache-2.0", description="U²-Net small: salient-object masks, 320x320, bundled (offline default)",
))
register(WeightsSpec(
    name="u2net", filename="u2net.onnx", urls=(_REMBG + "u2net.onnx",), kind="saliency",
    md5="60024c5c889badc19c04ad937298a77b", size=175997641,
    license="Apache-2.0", description="U²-Net full: more accurate salient-object masks, 320x320",
))
register(WeightsSpec(
    name="isnet-anime", filename="isnet-anime.onnx", urls=(_REMBG + "isnet-anime.onnx",), kind="saliency",
    md5="6f184e756bb3bd901c8849220a83e38e", size=176069933,
    license="Apache-2.0", description="IS-Net trained on anime characters (SkyTNT), 1024x1024",
))
register(WeightsSpec(
    name="birefnet-general", filename="BiRefNet-general-epoch_244.onnx",
    urls=(_REMBG + "BiRefNet-general-epoch_244.onnx",), kind="saliency",
    md5="7a35a0141cbbc80de11d9c9a28f52697", size=972666916,
    license="MIT", description="BiRefNet general dichotomous segmentation, 1024x1024 (slow on CPU)",
))
register(WeightsSpec(
    name="sam3", filename="sam3", urls=(), kind="sam3", license="SAM License (Meta)",
    description="SAM 3 (Meta): text-prompted detection + video tracking, transformers format; GATED on the hub: "
    "request access at https://huggingface.co/facebook/sam3 and log in (hf auth login) before downloading",
    hf_repo="facebook/sam3", hf_files=("*.json", "*.safetensors", "*.txt"),
))


# --- what a run needs --------------------------------------------------------------------------

@dataclass(frozen=True)
class Need:
    """One weights file a config needs: registry ``name``, or the user's own ``checkpoint`` path."""

    name: str
    why: str  # the config key that asks for it, e.g. "segment.saliency.model"
    checkpoint: str | None = None


def _sam2_name(model_type: str) -> str:
    """Registry name of a SAM2 ``model_type`` (``sam2.1_hiera_base_plus`` -> ``sam2.1-hiera-base-plus``)."""
    return model_type.replace("_hiera_", "-hiera-").replace("base_plus", "base-plus")


CONCEPT_WEIGHTS = {"sam3": "sam3", "grounding-dino": "grounding-dino-tiny", "owlv2": "owlv2-base-ensemble"}
"""``segment.concept.model`` -> weights registry name (the entries register with their backends)."""


def needed_weights(config: Any) -> list[Need]:
    """Every weights file ``config`` (a :class:`cleanplate.config.Config`) loads, in the order a run loads them."""
    seg, needs = config.segment, []
    if seg.backend == "saliency":
        needs.append(Need(seg.saliency.model, "segment.saliency.model"))
    elif seg.backend == "sam2":
        needs.append(Need(_sam2_name(seg.sam2.model_type), "segment.sam2.model_type", seg.sam2.checkpoint))
        if seg.select == "salient" or getattr(seg, "prompts", None) == "salient-boxes":
            needs.append(Need(seg.saliency.model, "segment.saliency.model (character selection)"))
    shot = seg.shot.method
    if shot == "sam3":  # "auto" uses sam3 only when its weights are already here, so it needs nothing
        needs.append(Need("sam3", "segment.shot.method (sam3)", seg.sam3.checkpoint))
    elif shot == "sam2-video":
        needs.append(Need(_sam2_name(seg.sam2_video.model_type), "segment.sam2_video.model_type",
                          seg.sam2_video.checkpoint))
    concept = getattr(seg, "concept", None)  # "auto" uses what is on disk, so it needs nothing
    if concept is not None and concept.model in CONCEPT_WEIGHTS:
        checkpoint = {"sam3": seg.sam3.checkpoint, "grounding-dino": concept.grounding_dino_checkpoint,
                      "owlv2": concept.owlv2_checkpoint}[concept.model]
        needs.append(Need(CONCEPT_WEIGHTS[concept.model], f"segment.concept.model ({concept.model})", checkpoint))
    if "lama" in config.fill.method.split("+")[-1]:
        needs.append(Need(config.fill.lama.model, "fill.lama.model", config.fill.lama.checkpoint))
    if config.qa.enabled:
        needs.append(Need(config.qa.saliency_model, "qa.saliency_model"))
    seen: set[tuple[str, str | None]] = set()
    out = []
    for n in needs:
        if (n.name, n.checkpoint) not in seen:
            seen.add((n.name, n.checkpoint))
            out.append(n)
    return out


def check_available(config: Any) -> list[str]:
    """One line per weights file ``config`` needs that is missing, corrupt or unknown; [] when all are here.

    Looks only in the local places (explicit checkpoint, ``$CLEANPLATE_WEIGHTS``, bundled, cache,
    the Hugging Face cache); never downloads. A missing file is not a problem when it can still
    be downloaded (online and the entry has URLs); offline it is. The registries fill when the
    backends are imported (``import cleanplate.segment, cleanplate.fill``).
    """
    problems = []
    for need in needed_weights(config):
        if need.checkpoint is not None:
            if not Path(need.checkpoint).expanduser().exists():
                problems.append(f"{need.why}: checkpoint not found: {need.checkpoint}")
            continue
        if need.name not in REGISTRY:
            problems.append(f"{need.why}: unknown weights '{need.name}' (known: {', '.join(sorted(REGISTRY))})")
            continue
        spec, state, _path = verify([need.name])[0]
        if state.startswith("corrupt"):
            problems.append(f"{need.why}: '{spec.name}' is {state}; delete it, then {how_to_get(spec)}")
        elif state == "missing" and (offline() or not (spec.urls or spec.hf_repo)):
            problems.append(f"{need.why}: '{spec.name}' not found: {how_to_get(spec)}")
    return problems


def require_available(config: Any) -> None:
    """Raise one :class:`WeightsError` naming every weights file ``config`` needs that is not usable."""
    problems = check_available(config)
    if problems:
        raise WeightsError(f"{len(problems)} weights file(s) needed and not usable: " + "; ".join(problems))
