"""Per-plate features for dedupe and organize: perceptual hashes, sharpness, colour/texture
histograms and (when its weights are here) CLIP image/text embeddings, with an on-disk cache.

All functions take HxWx3 uint8 RGB arrays. CLIP (``transformers``' ``CLIPModel``) is optional
and imported lazily; without it the steps use the hand-made colour/texture features.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from cleanplate.dataset.plates import Plate
from cleanplate.errors import BackendUnavailableError, WeightsError
from cleanplate.io.outputs import atomic_write_bytes, read_image_rgb
from cleanplate.weights import WeightsSpec, WeightsUse, register, resolve

CLIP_WEIGHTS = "clip-vit-b-32"
register(WeightsSpec(
    name=CLIP_WEIGHTS, filename="clip-vit-base-patch32", urls=(), kind="clip", license="MIT",
    description="OpenAI CLIP ViT-B/32 (transformers): plate embeddings for dedupe and zero-shot scene labels",
    hf_repo="openai/clip-vit-base-patch32",
    hf_files=("config.json", "preprocessor_config.json", "tokenizer.json", "tokenizer_config.json", "vocab.json",
              "merges.txt", "special_tokens_map.json", "model.safetensors"),
))


# ------------------------------------------------------------------------- hashes, sharpness

def perceptual_hashes(rgb: np.ndarray) -> tuple[str, str]:
    """64-bit pHash and dHash of an image, as hex strings (imagehash)."""
    import imagehash
    from PIL import Image

    im = Image.fromarray(rgb)
    return str(imagehash.phash(im)), str(imagehash.dhash(im))


_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], np.uint8)


def hash_array(hashes: Sequence[tuple[str, str]]) -> np.ndarray:
    """Nx2 uint64: the (pHash, dHash) hex pairs as integers."""
    return np.array([[int(a, 16), int(b, 16)] for a, b in hashes], dtype=np.uint64).reshape(-1, 2)


def hash_distances(one: np.ndarray, many: np.ndarray) -> np.ndarray:
    """Mean Hamming distance (0..64) of pHash and dHash between ``one`` (2,) and each row of ``many`` (Mx2)."""
    x = np.ascontiguousarray(np.bitwise_xor(many, one[None, :]))
    bits = _POPCOUNT[x.view(np.uint8)].reshape(len(many), 2, 8).sum(-1)
    return bits.mean(axis=1)


def sharpness(rgb: np.ndarray, width: int = 512) -> float:
    """Variance of the Laplacian of the grey image scaled to ``width`` px wide (comparable across sizes)."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    h, w = gray.shape
    if w != width:
        gray = cv2.resize(gray, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


# ------------------------------------------------------------------------- colour / texture

def _hellinger(hist: np.ndarray) -> np.ndarray:
    hist = np.asarray(hist, np.float64).ravel()
    s = hist.sum()
    return np.sqrt(hist / s) if s > 0 else np.zeros_like(hist)


def _lbp_hist(gray: np.ndarray) -> np.ndarray:
    """10-bin histogram of 8-neighbour local binary patterns: uniform patterns by their count of ones, then the rest."""
    c = gray[1:-1, 1:-1]
    offsets = [(0, 0), (0, 1), (0, 2), (1, 2), (2, 2), (2, 1), (2, 0), (1, 0)]
    bits = np.stack([gray[dy:dy + c.shape[0], dx:dx + c.shape[1]] >= c for dy, dx in offsets], 0).astype(np.int32)
    transitions = (bits != np.roll(bits, 1, axis=0)).sum(0)
    ones = bits.sum(0)
    code = np.where(transitions <= 2, ones, 9)
    return np.bincount(code.ravel(), minlength=10)[:10]


def colour_texture(rgb: np.ndarray) -> np.ndarray:
    """Scene descriptor: HSV joint histogram (8x4x4), gradient orientation and magnitude histograms and
    an LBP histogram, each block square-rooted and unit length (Hellinger). float32, 154 values."""
    small = cv2.resize(rgb, (128, 128), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    colour = cv2.calcHist([hsv], [0, 1, 2], None, [8, 4, 4], [0, 180, 0, 256, 0, 256])
    gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    g = gray.astype(np.float32)
    gx, gy = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    mag = np.hypot(gx, gy)
    ang = np.mod(np.arctan2(gy, gx), np.pi)
    orient = np.histogram(ang, bins=8, range=(0, np.pi), weights=mag)[0]
    magnitude = np.histogram(np.log1p(mag), bins=8, range=(0.0, float(np.log1p(1443.0))))[0]
    texture = [_hellinger(orient), _hellinger(magnitude), _hellinger(_lbp_hist(gray))]
    vec = np.concatenate([_hellinger(colour)] + [t / np.sqrt(3.0) for t in texture])
    return vec.astype(np.float32)


# ------------------------------------------------------------------------- CLIP

class ClipEmbedder:
    """A loaded CLIP model with its processor. Embeddings are float32 rows of unit length."""

    def __init__(self, model: Any, processor: Any, device: str, use: WeightsUse) -> None:
        self.model, self.processor, self.device, self.use = model, processor, device, use

    @property
    def key(self) -> str:
        return f"clip:{self.use.sha256 or self.use.path}"

    def _features(self, out: Any) -> np.ndarray:
        feats = out if hasattr(out, "norm") else out.pooler_output  # transformers 4.x: tensor; 5.x: model output
        feats = feats / feats.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return feats.detach().float().cpu().numpy()

    def images(self, rgbs: Sequence[np.ndarray]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            batch = self.processor(images=list(rgbs), return_tensors="pt").to(self.device)
            return self._features(self.model.get_image_features(pixel_values=batch["pixel_values"]))

    def texts(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            batch = self.processor(text=list(texts), return_tensors="pt", padding=True, truncation=True).to(self.device)
            return self._features(self.model.get_text_features(input_ids=batch["input_ids"],
                                                               attention_mask=batch["attention_mask"]))


def load_clip(checkpoint: str | Path | None = None, *, download: bool = False, device: str = "auto") -> ClipEmbedder:
    """Build a :class:`ClipEmbedder` from ``checkpoint`` (a transformers CLIP folder) or the registry weights.

    Raises BackendUnavailableError without torch/transformers, WeightsError without the weights.
    """
    try:
        import torch
        from transformers import CLIPModel, CLIPProcessor
    except ImportError:
        raise BackendUnavailableError("CLIP embeddings need torch and transformers: pip install torch transformers") from None
    from cleanplate.devices import resolve_device

    use = resolve(CLIP_WEIGHTS, checkpoint, download=download)
    dev = resolve_device(device)
    try:
        model = CLIPModel.from_pretrained(use.path).to(dev).eval()
        processor = CLIPProcessor.from_pretrained(use.path)
    except Exception as exc:  # transformers raises many types for a bad folder
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise WeightsError(f"cannot load CLIP from {use.path}: {msg}") from None
    torch.manual_seed(0)
    return ClipEmbedder(model, processor, dev, use)


def maybe_clip(mode: bool | None, checkpoint: str | Path | None = None,
               device: str = "auto") -> tuple[ClipEmbedder | None, str]:
    """``mode`` True: CLIP or an error; False: never; None (auto): CLIP when its weights are here (no download).

    Returns the embedder (or None) and a line saying what was used and why.
    """
    if mode is False:
        return None, "off (--no-embeddings)"
    if mode is None and checkpoint is None:
        try:
            emb = load_clip(None, download=False, device=device)
        except (WeightsError, BackendUnavailableError) as exc:
            return None, f"not available ({str(exc).splitlines()[0]})"
    else:
        emb = load_clip(checkpoint, download=True, device=device)
    return emb, f"CLIP {emb.use.name} from {emb.use.path}"


# ------------------------------------------------------------------------- cache

def cached_features(cache: Path, key: str, plates: Sequence[Plate],
                    compute: Callable[[list[np.ndarray]], np.ndarray], *, batch: int = 1,
                    tick: Callable[[str, str, str | None], None] | None = None) -> tuple[list[Plate], np.ndarray]:
    """Feature rows for ``plates``, computing only those whose plate file changed since the cache at
    ``cache`` was written with the same ``key``. ``compute`` maps a list of RGB arrays to rows.

    Returns the plates that could be read (in order) and their rows; an unreadable plate is left
    out and reported to ``tick(frame_id, "failed", reason)``.
    """
    old: dict[str, tuple[list[int], np.ndarray]] = {}
    try:
        with np.load(cache, allow_pickle=False) as z:
            if str(z["key"]) == key:
                old = {str(i): (s.tolist(), f) for i, s, f in zip(z["ids"], z["stamps"], z["feats"], strict=True)}
    except (OSError, ValueError, KeyError):
        old = {}
    rows: dict[str, np.ndarray] = {}
    todo: list[Plate] = []
    for p in plates:
        hit = old.get(p.frame_id)
        if hit is not None and hit[0] == p.stamp():
            rows[p.frame_id] = hit[1]
            if tick:
                tick(p.frame_id, "skipped", None)
        else:
            todo.append(p)
    for k in range(0, len(todo), batch):
        chunk, images = [], []
        for p in todo[k:k + batch]:
            try:
                images.append(read_image_rgb(p.path))  # type: ignore[arg-type]
                chunk.append(p)
            except OSError as exc:
                if tick:
                    tick(p.frame_id, "failed", f"unreadable plate: {exc}")
        if not chunk:
            continue
        for p, f in zip(chunk, compute(images), strict=True):
            rows[p.frame_id] = np.asarray(f, np.float32)
            if tick:
                tick(p.frame_id, "ok", None)
    done = [p for p in plates if p.frame_id in rows]
    feats = np.stack([rows[p.frame_id] for p in done]) if done else np.zeros((0, 1), np.float32)
    if len(done) != len(old) or any(p.frame_id not in old for p in done) or todo:
        buf = io.BytesIO()
        np.savez(buf, key=np.array(key), ids=np.array([p.frame_id for p in done], dtype=str),
                 stamps=np.array([p.stamp() for p in done], np.int64).reshape(-1, 2), feats=feats)
        cache.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(cache, buf.getvalue())
    return done, feats
