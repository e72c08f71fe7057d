"""Image measures behind the plate checks and the benchmark: PSNR, SSIM, flat blocks, seams, residue.

Everything is numpy + OpenCV. Images are HxWx3 uint8 RGB, masks HxW bool (True = removed and
filled), saliency maps HxW float32 in [0, 1]. Scores are plain floats; thresholds live in
:mod:`cleanplate.qa.checks`.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from cleanplate.masks import dilate

PSNR_CAP = 100.0
"""PSNR of identical regions (dB): a finite stand-in for infinity, so JSON stays valid."""


# ----------------------------------------------------------------------------------- regions

def ring(mask: np.ndarray, width: int) -> np.ndarray:
    """The band of pixels within ``width`` px outside an HxW bool mask (HxW bool)."""
    return dilate(mask, width) & ~mask.astype(bool)


def ring_width(mask: np.ndarray, lo: int = 8, hi: int = 48) -> int:
    """A ring width that grows with the mask: 10 % of the side of a square of the mask's area."""
    return int(np.clip(round(0.1 * math.sqrt(float(mask.sum()))), lo, hi))


def _interior(shape: tuple[int, int], margin: int) -> np.ndarray:
    """HxW bool: True except within ``margin`` px of the frame border."""
    out = np.zeros(shape, dtype=bool)
    h, w = shape
    if h > 2 * margin and w > 2 * margin:
        out[margin:h - margin, margin:w - margin] = True
    return out


# ------------------------------------------------------------------------------- PSNR / SSIM

def psnr(a: np.ndarray, b: np.ndarray, region: np.ndarray | None = None) -> float:
    """PSNR in dB of two uint8 images (any channels) over ``region`` (HxW bool; None = all).

    Identical pixels give :data:`PSNR_CAP`; an empty region gives NaN.
    """
    d = a.astype(np.float64) - b.astype(np.float64)
    if region is not None:
        d = d[region.astype(bool)]
    if d.size == 0:
        return float("nan")
    mse = float(np.mean(d * d))
    if mse <= 0.0:
        return PSNR_CAP
    return min(PSNR_CAP, 10.0 * math.log10(255.0 ** 2 / mse))


def ssim_map(a: np.ndarray, b: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    """Per-pixel SSIM (Wang et al. 2004) of two uint8 images, Gaussian window ``sigma``: HxW float32.

    Colour images are compared per channel and the channel maps averaged. Constants
    K1 = 0.01, K2 = 0.03 for an 8-bit range, window truncated at 3.5 sigma (11 px for 1.5).
    """
    x = a.astype(np.float32)
    y = b.astype(np.float32)
    if x.ndim == 2:
        x, y = x[..., None], y[..., None]
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    k = int(2 * round(3.5 * sigma) + 1)

    def blur(z: np.ndarray) -> np.ndarray:
        out = cv2.GaussianBlur(z, (k, k), sigma, borderType=cv2.BORDER_REFLECT)
        return out if out.ndim == 3 else out[..., None]

    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    num = (2 * mx * my + c1) * (2 * sxy + c2)
    den = (mx * mx + my * my + c1) * (sxx + syy + c2)
    return (num / den).mean(axis=2).astype(np.float32)


def ssim(a: np.ndarray, b: np.ndarray, region: np.ndarray | None = None) -> float:
    """Mean SSIM over ``region`` (HxW bool; None = the whole image); NaN for an empty region."""
    m = ssim_map(a, b)
    vals = m[region.astype(bool)] if region is not None else m.ravel()
    return float(vals.mean()) if vals.size else float("nan")


# -------------------------------------------------------------------------------- flat blocks

def texture_maps(image: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Local standard deviation and local mean gradient magnitude of the grey image (HxW float32 each).

    Both are in grey levels (0-255) over a ``window`` x ``window`` box; the gradient is the
    Sobel derivative scaled to grey levels per pixel.
    """
    g = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    mu = cv2.blur(g, (window, window))
    mu2 = cv2.blur(g * g, (window, window))
    sd = np.sqrt(np.maximum(mu2 - mu * mu, 0.0))
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    gm = cv2.blur(np.sqrt(gx * gx + gy * gy), (window, window))
    return sd, gm


def flat_score(plate: np.ndarray, mask: np.ndarray, level: float = 2.0) -> tuple[float, float, float]:
    """Share of the filled area made of flat patches, minus that share in the ring around it.

    A pixel is flat when the local standard deviation and the local mean gradient of its
    window are both under ``level`` grey levels (the window is ~1/150 of the longer side, at
    least 5 px). Scenery that is flat anyway (sky, a plain wall) is flat in the ring too and
    scores ~0; a smooth smear over textured scenery scores up to 1. Returns
    ``(score, flat share in the fill, flat share in the ring)``; the score is clipped at 0.
    """
    m = mask.astype(bool)
    if not m.any():
        return 0.0, 0.0, 0.0
    window = max(5, int(round(max(mask.shape) / 150)) | 1)
    sd, gm = texture_maps(plate, window)
    flat = (sd < level) & (gm < level)
    band = ring(m, ring_width(m))
    inside = float(flat[m].mean())
    around = float(flat[band].mean()) if band.any() else inside
    return max(0.0, inside - around), inside, around


# -------------------------------------------------------------------------------------- seams

def _unit_normals(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Signed distance to the mask border (positive outside) and its unit gradient (nx, ny)."""
    m = mask.astype(np.uint8)
    d_in = cv2.distanceTransform(m, cv2.DIST_L2, 5)
    d_out = cv2.distanceTransform(1 - m, cv2.DIST_L2, 5)
    signed = (d_out - d_in).astype(np.float32)
    smooth = cv2.GaussianBlur(signed, (0, 0), 2.0)
    nx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3)
    ny = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3)
    norm = np.sqrt(nx * nx + ny * ny) + 1e-6
    return signed, nx / norm, ny / norm


def _steps(image: np.ndarray, sel: np.ndarray, nx: np.ndarray, ny: np.ndarray, reach: float) -> np.ndarray:
    """Mean absolute colour difference between the points ``reach`` px either side, along the normal."""
    ys, xs = np.nonzero(sel)
    if len(xs) == 0:
        return np.zeros(0, np.float32)
    xs_f, ys_f = xs.astype(np.float32), ys.astype(np.float32)
    ax, ay = nx[sel] * reach, ny[sel] * reach
    n = len(xs)
    # cv2.remap wants maps no longer than 32767 per row: sample in rows of up to 32000 points.
    cols = 32000
    rows = (n + cols - 1) // cols
    pad = rows * cols - n

    def sample(dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
        mx = np.pad(xs_f + dx, (0, pad), mode="edge").reshape(rows, cols)
        my = np.pad(ys_f + dy, (0, pad), mode="edge").reshape(rows, cols)
        out = cv2.remap(image, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        return out.reshape(rows * cols, -1)[:n]

    return np.abs(sample(ax, ay) - sample(-ax, -ay)).mean(axis=1)


def seam_score(plate: np.ndarray, mask: np.ndarray, reach: float = 3.0, offset: float = 8.0) -> float:
    """How much stronger the colour step across the mask border is than the steps just beside it.

    For every pixel on the border, the colour difference between the points ``reach`` px in
    and out along the border normal is compared with the same measure on the two curves
    ``offset`` px inside and outside the border. The score is the larger of the mean ratio and
    the median ratio (the mean catches a seam along part of the border, the median a seam all
    round); both have 1 grey level added to their denominator. ~1 (or less) for a seamless
    fill, since the dilated border falls on scenery at random; an offset or brightened fill
    scores 1.5-3. Pixels near the frame edge are ignored.
    """
    m = mask.astype(bool)
    if not m.any() or m.all():
        return 0.0
    signed, nx, ny = _unit_normals(m)
    img = cv2.GaussianBlur(plate.astype(np.float32), (0, 0), 0.8)
    keep = _interior(m.shape, int(offset + reach + 2))
    border = (signed > -1.5) & (signed <= 0.5) & keep
    inner = (signed > -offset - 1) & (signed <= -offset) & keep
    outer = (signed > offset - 1) & (signed <= offset) & keep
    b = _steps(img, border, nx, ny, reach)
    ref = np.concatenate([_steps(img, inner, nx, ny, reach), _steps(img, outer, nx, ny, reach)])
    if b.size == 0 or ref.size == 0:
        return 0.0
    mean_ratio = float(b.mean()) / (float(ref.mean()) + 1.0)
    median_ratio = float(np.median(b)) / (float(np.median(ref)) + 1.0)
    return max(mean_ratio, median_ratio)


# ------------------------------------------------------------------------------------ residue

def residue_score(image: np.ndarray, plate: np.ndarray, mask: np.ndarray, sal_image: np.ndarray,
                  sal_plate: np.ndarray, *, kept_tolerance: int = 6, faint: float = 0.05,
                  salient: float = 0.15) -> tuple[float, float, float]:
    """Character-likeness the plate kept, as a fraction of the removed character's area.

    ``sal_image`` / ``sal_plate`` are the saliency maps (the detector that finds characters)
    of the original and the plate. Two parts, summed and capped at 1:

    * kept: inside the mask, the original's saliency that the plate kept unchanged (pixels
      within ``kept_tolerance`` grey levels of the original) and that the plate still finds
      salient, relative to the original's saliency inside the mask. 1 for a plate that is the
      original; ~0.01 for a real fill, whatever it invented.
    * left over: outside the mask, pixels that were faintly salient in the original (>=
      ``faint``: under the segmentation threshold, so not removed) and are salient in the
      plate (>= ``salient``) now the main character is gone: a missed hand, a second character.
      Counted as an area relative to the salient area of the original inside the mask.

    Returns ``(score, kept, left_over)``.
    """
    m = mask.astype(bool)
    if not m.any():
        return 0.0, 0.0, 0.0
    char_area = max(int(((sal_image >= 0.5) & m).sum()), max(int(m.sum()) // 4, 1))
    mass = float(sal_image[m].sum())
    same = np.abs(plate.astype(np.int16) - image.astype(np.int16)).max(axis=2) <= kept_tolerance
    kept = float((np.minimum(sal_image, sal_plate) * same)[m].sum()) / mass if mass > 0 else 0.0
    left = float(((~m) & (sal_image >= faint) & (sal_plate >= salient)).sum()) / char_area
    return min(1.0, kept + left), kept, left


__all__ = [
    "PSNR_CAP",
    "flat_score",
    "psnr",
    "residue_score",
    "ring",
    "ring_width",
    "seam_score",
    "ssim",
    "ssim_map",
    "texture_maps",
]
