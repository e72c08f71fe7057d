"""Exemplar fill (``fill.method: exemplar``): structure first, then real texture, coarse to fine.

Made for large holes that no other frame shows (a character standing still for a whole shot),
where PatchMatch's voting averages the hole into a smear. Each hole is solved in a crop around it
(:mod:`cleanplate.fill.crop`'s planning), in three steps:

1. **Structure, at the coarse level.** The crop is shrunk until it has about ``coarse_pixels``
   pixels and the hole is filled from its border inward in Criminisi et al.'s priority order
   (confidence x data term: edges and lines that meet the hole border are continued first), each
   step copying the best-matching whole patch of the known region (``cv2.matchTemplate`` over the
   known pixels, masked SSD).
2. **Texture, at finer levels.** The coarse nearest-neighbour field (for every hole pixel, the
   source pixel it was copied from) is upsampled level by level and refined PatchMatch-style
   (propagation from the four neighbours, random search around the current match); each hole
   pixel is then the vote of the patches over it, weighted by how well they match (Wexler et al.,
   Newson et al.), so coherent copies stay sharp and a lone bad match is outvoted. The structure
   laid down at the coarse level seeds every finer level: no level starts from a blurred average,
   which is where PatchMatch's smear comes from.
3. **Full size.** Above ``work_pixels`` the field is upsampled once more and the crop's own
   full-resolution pixels it points at are copied; their detail (the copy minus its own low-pass)
   is added to the upsampled work-size fill, so the texture keeps its full-resolution grain.

Candidate patches come from the frame's unmasked pixels and, optionally, from extra sources: other
frames of the shot already warped onto this frame, each with the map of its valid (scenery, inside
the frame) pixels. Unmasked pixels are never changed; with the same input and ``fill.seed`` the
plate is the same, byte for byte.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage

from cleanplate.config import Config
from cleanplate.errors import FrameError
from cleanplate.fill.base import INPAINTERS
from cleanplate.fill.crop import CropSettings, plan_crops
from cleanplate.records import FillResult
from cleanplate.weights import WeightsUse

Source = tuple[np.ndarray, np.ndarray]
"""An extra source: (HxWx3 uint8 RGB image warped onto the frame, HxW bool valid pixels)."""

_GAP = 2  # invalid rows between sources stacked in the atlas (plus the patch half-width)


@dataclass(frozen=True)
class ExemplarSettings:
    """Knobs of the exemplar fill."""

    coarse_pixels: int = 12_000
    """The structure step runs on the crop shrunk to about this many pixels."""
    work_pixels: int = 100_000
    """Texture refinement runs up to this many pixels per crop; above, the field is only upsampled."""
    coarse_patch: int = 13
    """Patch side of the structure step (odd)."""
    patch: int = 5
    """Patch side of the refinement (odd)."""
    iterations: int = 3
    """Refinement iterations per level."""
    seed: int = 0


# ------------------------------------------------------------------------------------ the atlas

@dataclass
class _Atlas:
    """The frame's known pixels and the extra sources stacked vertically, at one level.

    ``image`` float32 (rows, w, 3); ``pixel`` bool: the pixel is a usable source pixel;
    ``centre`` bool: the whole patch (``half`` each side) around it is usable; ``stride`` rows per
    source (source k starts at row k * stride); ``near_pixel`` / ``near_centre``: for every atlas
    position the (row, col) of the nearest usable pixel / centre.
    """

    image: np.ndarray
    pixel: np.ndarray
    centre: np.ndarray
    stride: int
    half: int
    near_pixel: tuple[np.ndarray, np.ndarray]
    near_centre: tuple[np.ndarray, np.ndarray]


def _nearest(ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if not ok.any():
        raise FrameError("no pixels to fill from")
    _, idx = ndimage.distance_transform_edt(~ok, return_indices=True)
    return idx[0].astype(np.int32), idx[1].astype(np.int32)


def _build_atlas(images: list[np.ndarray], valid: list[np.ndarray], half: int) -> _Atlas:
    h, w = valid[0].shape
    stride = h + _GAP + 2 * half
    rows = stride * len(images)
    image = np.zeros((rows, w, 3), np.float32)
    pixel = np.zeros((rows, w), bool)
    for k, (im, ok) in enumerate(zip(images, valid, strict=True)):
        image[k * stride:k * stride + h] = im
        pixel[k * stride:k * stride + h] = ok
    side = 2 * half + 1
    centre = cv2.erode(pixel.astype(np.uint8), np.ones((side, side), np.uint8),
                       borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)
    if not centre.any():  # no whole patch anywhere: fall back to single pixels
        centre = pixel.copy()
        centre[:half], centre[-half or rows:], centre[:, :half], centre[:, w - half:] = False, False, False, False
        if not centre.any():
            centre = pixel
    return _Atlas(image, pixel, centre, stride, half, _nearest(pixel), _nearest(centre))


def _level(image: np.ndarray, hole: np.ndarray, own_valid: np.ndarray, sources: Sequence[Source],
           size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """The crop and its sources resized to ``size`` (w, h): a small pixel touching the hole is hole,
    a small pixel is a valid source pixel only when all its pixels are."""
    h, w = hole.shape
    if (w, h) == size:
        ims = [image.astype(np.float32)] + [s[0].astype(np.float32) for s in sources]
        return ims[0], hole.copy(), ims, [own_valid.copy()] + [s[1].astype(bool) for s in sources]

    def shrink(a: np.ndarray) -> np.ndarray:
        return cv2.resize(a.astype(np.float32), size, interpolation=cv2.INTER_AREA)

    small_hole = shrink(hole) > 1e-6
    ims = [shrink(image)] + [shrink(s[0]) for s in sources]
    valid = [(shrink(own_valid) > 1 - 1e-6) & ~small_hole] + [shrink(s[1]) > 1 - 1e-6 for s in sources]
    return ims[0], small_hole, ims, valid


# ----------------------------------------------------------------------- structure: Criminisi

def _criminisi(target: np.ndarray, hole: np.ndarray, atlas: _Atlas) -> tuple[np.ndarray, np.ndarray]:
    """Fill ``hole`` of ``target`` (hxwx3 float32) in priority order from ``atlas``.

    Returns the filled image and the nearest-neighbour field: hxwx2 int32 atlas (row, col) of the
    pixel each hole pixel was copied from (known pixels: themselves).
    """
    h, w = hole.shape
    r = atlas.half
    side = 2 * r + 1
    pad = ((r, r), (r, r))
    img = np.pad(target, pad + ((0, 0),), mode="edge")
    todo = np.pad(hole, pad, constant_values=False)
    known = np.pad(~hole, pad, constant_values=False)
    conf = known.astype(np.float32)
    nnf = np.stack(np.mgrid[-r:h + r, -r:w + r], -1).astype(np.int32)
    centre_ok = atlas.centre[r:atlas.image.shape[0] - r, r:atlas.image.shape[1] - r]
    big = np.float32(np.finfo(np.float32).max)
    box = (side, side)
    kernel3 = np.ones((3, 3), np.uint8)
    while todo.any():
        k8 = known.astype(np.uint8)
        front = todo & cv2.dilate(k8, kernel3).astype(bool)
        if not front.any():
            break
        # confidence: share of the patch known (weighted by the confidence it was filled with)
        c = cv2.boxFilter(conf, -1, box, normalize=True, borderType=cv2.BORDER_CONSTANT)
        # data term: strength of the known structure along the border normal (structure tensor)
        gray = img.mean(-1)
        gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
        solid = cv2.erode(k8, kernel3, borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(np.float32)
        gx, gy = gx * solid, gy * solid
        jxx = cv2.boxFilter(gx * gx, -1, box)
        jxy = cv2.boxFilter(gx * gy, -1, box)
        jyy = cv2.boxFilter(gy * gy, -1, box)
        km = cv2.GaussianBlur(k8.astype(np.float32), (0, 0), 1.5)
        nx = cv2.Sobel(km, cv2.CV_32F, 1, 0, ksize=3)
        ny = cv2.Sobel(km, cv2.CV_32F, 0, 1, ksize=3)
        norm = np.sqrt(nx * nx + ny * ny) + 1e-6
        nx, ny = nx / norm, ny / norm
        # energy of the gradient across the normal = structure that runs into the hole
        along = jxx * ny * ny - 2 * jxy * nx * ny + jyy * nx * nx
        data = np.sqrt(np.maximum(along, 0)) / 1020.0
        prio = np.where(front, c * (data + 0.01), -1.0)
        py, px = np.unravel_index(int(np.argmax(prio)), prio.shape)
        tpl = np.ascontiguousarray(img[py - r:py + r + 1, px - r:px + r + 1])
        tmask = known[py - r:py + r + 1, px - r:px + r + 1]
        if tmask.any():
            m3 = np.repeat(tmask[..., None], 3, 2).astype(np.float32)
            res = cv2.matchTemplate(atlas.image, tpl, cv2.TM_SQDIFF, mask=m3)
            res = np.where(centre_ok, res, big)
            j = int(np.argmin(res))
            cy, cx = divmod(j, res.shape[1])
            cy, cx = cy + r, cx + r
        else:  # nothing known around it (cannot happen on the front): the nearest usable centre
            cy, cx = int(atlas.near_centre[0][0, 0]), int(atlas.near_centre[1][0, 0])
        win = (slice(py - r, py + r + 1), slice(px - r, px + r + 1))
        put = todo[win]
        img[win][put] = atlas.image[cy - r:cy + r + 1, cx - r:cx + r + 1][put]
        grid = np.stack(np.mgrid[cy - r:cy + r + 1, cx - r:cx + r + 1], -1).astype(np.int32)
        nnf[win][put] = grid[put]
        conf[win][put] = c[py, px]
        known[win] |= put
        todo[win] &= ~put
    return img[r:r + h, r:r + w], nnf[r:r + h, r:r + w]


# --------------------------------------------------------------------------- texture: refine

def _upsample_field(nnf: np.ndarray, atlas_from: _Atlas, shape_to: tuple[int, int], atlas_to: _Atlas,
                    near: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The field of a coarser level carried to a finer one: offsets scaled, the source kept."""
    hc, wc = nnf.shape[:2]
    hf, wf = shape_to
    sy, sx = hf / hc, wf / wc
    ys, xs = np.mgrid[0:hf, 0:wf]
    yc = np.minimum((ys / sy).astype(np.int32), hc - 1)
    xc = np.minimum((xs / sx).astype(np.int32), wc - 1)
    rows, cols = nnf[yc, xc, 0], nnf[yc, xc, 1]
    k, ry = np.divmod(rows, atlas_from.stride)
    fy = np.rint(ys + (ry - yc) * sy).astype(np.int32)
    fx = np.rint(xs + (cols - xc) * sx).astype(np.int32)
    fy = np.clip(fy, 0, hf - 1) + k * atlas_to.stride
    fx = np.clip(fx, 0, wf - 1)
    return np.stack([near[0][fy, fx], near[1][fy, fx]], -1)


def _patch_cost(tp: np.ndarray, ap: np.ndarray, ty: np.ndarray, tx: np.ndarray,
                ay: np.ndarray, ax: np.ndarray, r: int) -> np.ndarray:
    """SSD between target patches at (ty, tx) of the r-padded target ``tp`` and atlas patches at (ay, ax)."""
    tw, aw = tp.shape[1], ap.shape[1]
    tflat, aflat = tp.reshape(-1, 3), ap.reshape(-1, 3)
    tbase = (ty + r) * tw + (tx + r)
    abase = ay * aw + ax
    acc = np.zeros(len(ty), np.float32)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            d = tflat[tbase + (dy * tw + dx)] - aflat[abase + (dy * aw + dx)]
            acc += np.einsum("ij,ij->i", d, d)
    return acc


def _vote(atlas: _Atlas, ty: np.ndarray, tx: np.ndarray, ay: np.ndarray, ax: np.ndarray, cost: np.ndarray,
          index: np.ndarray) -> np.ndarray:
    """Each hole pixel as the weighted mean of what the overlapping hole patches' matches put there.

    Weights fall with the patch distance (Wexler / Newson): coherent matches agree and stay sharp,
    a lone bad match is outvoted. Returns (n, 3) float32.
    """
    r = atlas.half
    h, w = index.shape
    s = max(float(np.percentile(cost, 75)), 1.0)
    wt = np.exp(-cost / (2 * s)).astype(np.float32) + 1e-6
    acc = np.zeros((ty.size, 3), np.float32)
    wsum = np.zeros(ty.size, np.float32)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            qy, qx = ty - dy, tx - dx
            inb = (qy >= 0) & (qy < h) & (qx >= 0) & (qx < w)
            j = np.full(ty.size, -1, np.int64)
            j[inb] = index[qy[inb], qx[inb]]
            ok = j >= 0
            jj = j[ok]
            acc[ok] += wt[jj, None] * atlas.image[ay[jj] + dy, ax[jj] + dx]
            wsum[ok] += wt[jj]
    return acc / wsum[:, None]


def _refine(target: np.ndarray, hole: np.ndarray, nnf: np.ndarray, atlas: _Atlas, iterations: int,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """PatchMatch-style refinement of the field at one level, then a weighted vote of the matches."""
    r = atlas.half
    ty, tx = np.nonzero(hole)
    if ty.size == 0:
        return target, nnf
    h, w = hole.shape
    img = target.copy()
    ay, ax = nnf[ty, tx, 0].copy(), nnf[ty, tx, 1].copy()
    ay, ax = atlas.near_centre[0][ay, ax], atlas.near_centre[1][ay, ax]
    img[ty, tx] = atlas.image[ay, ax]
    tp = np.pad(img, ((r, r), (r, r), (0, 0)), mode="edge")
    cost = _patch_cost(tp, atlas.image, ty, tx, ay, ax, r)
    rows, cols = atlas.image.shape[:2]
    radius = max(rows, cols)
    index = np.full(hole.shape, -1, np.int64)
    index[ty, tx] = np.arange(ty.size)
    for it in range(iterations):
        cands = []
        for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            ny, nx = np.clip(ty + dy, 0, h - 1), np.clip(tx + dx, 0, w - 1)
            j = index[ny, nx]
            # the neighbour's match shifted back; a known neighbour matches itself (the frame is block 0)
            my = np.where(j >= 0, ay[np.maximum(j, 0)], ny) - dy
            mx = np.where(j >= 0, ax[np.maximum(j, 0)], nx) - dx
            cands.append((my, mx))
        rad = max(1, radius >> (2 * it + 1))
        for _ in range(2):
            my = ay + rng.integers(-rad, rad + 1, ty.size)
            mx = ax + rng.integers(-rad, rad + 1, ty.size)
            cands.append((my, mx))
            rad = max(1, rad >> 2)
        for my, mx in cands:
            my, mx = np.clip(my, 0, rows - 1), np.clip(mx, 0, cols - 1)
            my, mx = atlas.near_centre[0][my, mx], atlas.near_centre[1][my, mx]
            c = _patch_cost(tp, atlas.image, ty, tx, my, mx, r)
            better = c < cost
            ay[better], ax[better], cost[better] = my[better], mx[better], c[better]
        img[ty, tx] = _vote(atlas, ty, tx, ay, ax, cost, index)
        tp[ty + r, tx + r] = img[ty, tx]
        if it + 1 < iterations:  # distances against the new estimate
            cost = _patch_cost(tp, atlas.image, ty, tx, ay, ax, r)
    out = nnf.copy()
    out[ty, tx, 0], out[ty, tx, 1] = ay, ax
    return img, out


# --------------------------------------------------------------------------------- one crop

def _sizes(h: int, w: int, s: ExemplarSettings) -> tuple[tuple[int, int], list[tuple[int, int]]]:
    """The work size and the pyramid (w, h) sizes below it, coarsest first."""
    f = min(1.0, (s.work_pixels / (h * w)) ** 0.5) if s.work_pixels > 0 else 1.0
    work = (max(8, round(w * f)), max(8, round(h * f)))
    levels = [work]
    while levels[-1][0] * levels[-1][1] > s.coarse_pixels and min(levels[-1]) >= 4 * s.coarse_patch:
        levels.append((max(8, (levels[-1][0] + 1) // 2), max(8, (levels[-1][1] + 1) // 2)))
    return work, levels[::-1]


def solve_crop(image: np.ndarray, hole: np.ndarray, sources: Sequence[Source] = (),
               settings: ExemplarSettings = ExemplarSettings(), valid: np.ndarray | None = None) -> np.ndarray:
    """Fill ``hole`` (hxw bool) of ``image`` (hxwx3 uint8 RGB); returns hxwx3 uint8 RGB.

    ``sources``: extra (hxwx3 uint8 RGB, hxw bool valid) images to copy patches from. ``valid``:
    the image's own pixels usable as sources (default: all but the hole). Pixels outside ``hole``
    are returned unchanged.
    """
    h, w = hole.shape
    rng = np.random.default_rng(settings.seed)
    own_valid = ~hole if valid is None else (valid & ~hole)
    srcs: list[Source] = list(sources)
    work, levels = _sizes(h, w, settings)
    field = None
    prev_atlas: _Atlas | None = None
    out: np.ndarray | None = None
    for n, size in enumerate(levels):
        half = (settings.coarse_patch if n == 0 else settings.patch) // 2
        tgt, lhole, ims, val = _level(image, hole, own_valid, srcs, size)
        atlas = _build_atlas(ims, val, half)
        if field is None:
            out, field = _criminisi(tgt, lhole, atlas)
            if n + 1 < len(levels) or settings.iterations > 0:
                out, field = _refine(out, lhole, field, atlas, 1, rng)
        else:
            assert prev_atlas is not None
            field = _upsample_field(field, prev_atlas, lhole.shape, atlas, atlas.near_centre)
            out, field = _refine(tgt, lhole, field, atlas, settings.iterations, rng)
        prev_atlas = atlas
    assert field is not None and prev_atlas is not None and out is not None
    result = image.copy()
    if work == (w, h):
        result[hole] = np.clip(np.rint(out[hole]), 0, 255).astype(np.uint8)
        return result
    # full size: carry the field up and copy the full-resolution pixels it points at
    ims = [image] + [s[0] for s in srcs]
    val = [own_valid] + [s[1].astype(bool) for s in srcs]
    full = _build_atlas([im.astype(np.float32) for im in ims], val, 0)
    f = _upsample_field(field, prev_atlas, (h, w), full, full.near_pixel)
    copy = full.image[f[..., 0], f[..., 1]]
    # low frequencies from the voted work-size fill, the detail from the copied full-size pixels
    wh = (hole.shape[1], hole.shape[0])
    base = cv2.resize(out, wh, interpolation=cv2.INTER_CUBIC)
    detail = copy - cv2.resize(cv2.resize(copy, work, interpolation=cv2.INTER_AREA), wh,
                               interpolation=cv2.INTER_CUBIC)
    fine = base + detail
    result[hole] = np.clip(np.rint(fine[hole]), 0, 255).astype(np.uint8)
    return result


# ------------------------------------------------------------------------------- whole frame

def exemplar_fill(image: np.ndarray, mask: np.ndarray, sources: Sequence[Source] = (),
                  settings: ExemplarSettings = ExemplarSettings(),
                  crop: CropSettings | None = CropSettings(), valid: np.ndarray | None = None) -> np.ndarray:
    """Fill ``mask`` (HxW bool, True = hole) of ``image`` (HxWx3 uint8 RGB), hole by hole.

    ``sources``: other frames of the shot warped onto this one, as (HxWx3 uint8 RGB, HxW bool
    valid). ``valid`` (HxW bool, optional): the frame's own pixels that may be copied (default:
    every unmasked pixel). ``crop``: how holes are grouped and cropped (None: the whole frame at
    once). Returns a new HxWx3 uint8 RGB array equal to ``image`` outside ``mask``.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[:2] != mask.shape:
        raise FrameError(f"expected an HxWx3 image and an HxW mask, got {image.shape} and {mask.shape}")
    for k, (im, ok) in enumerate(sources):
        if im.shape != image.shape or ok.shape != mask.shape:
            raise FrameError(f"source {k} has shape {im.shape} / {ok.shape}, the frame {image.shape}")
    mask = mask.astype(bool)
    out = image.copy()
    if not mask.any():
        return out
    usable = ~mask if valid is None else (valid.astype(bool) & ~mask)
    if not usable.any() and not any(ok.any() for _, ok in sources):
        raise FrameError("the mask covers the whole frame: no pixels to fill from")
    if crop is None:
        return solve_crop(image, mask, sources, settings, valid)
    crops, labels = plan_crops(mask, crop)
    todo = mask.copy()
    for c in crops:
        box = (slice(c.y0, c.y1), slice(c.x0, c.x1))
        crop_todo, own = todo[box], labels[box] == c.label
        crop_valid = usable[box] & ~crop_todo
        if not crop_valid.any() and not any(ok[box].any() for _, ok in sources):
            box = (slice(0, None), slice(0, None))
            crop_todo, own, crop_valid = todo, labels == c.label, usable & ~todo
        src = [(np.ascontiguousarray(im[box]), ok[box]) for im, ok in sources]
        filled = solve_crop(np.ascontiguousarray(out[box]), crop_todo, src, settings,
                            None if valid is None else crop_valid)
        region = out[box]
        region[own] = filled[own]
        todo[box][own] = False
    return out


@INPAINTERS.register("exemplar")
class ExemplarInpainter:
    """Exemplar fill, structure then texture (see the module docstring); no weights, CPU only."""

    name = "exemplar"
    frame_threads = False  # numpy-heavy Python loop: threads would mostly wait on the GIL

    def __init__(self, config: Config, device: str) -> None:
        self.settings = ExemplarSettings(work_pixels=config.fill.crop_work_pixels, seed=config.fill.seed)
        self.crop = CropSettings.from_config(config)

    def fill(self, images: list[np.ndarray], masks: list[np.ndarray],
             sources: Sequence[Sequence[Source]] | None = None) -> list[FillResult]:
        """Plates of HxWx3 uint8 RGB ``images`` under HxW bool ``masks``; ``sources[i]``: frame i's extra sources."""
        out = []
        for i, (image, mask) in enumerate(zip(images, masks, strict=True)):
            src = sources[i] if sources is not None else ()
            out.append(FillResult(exemplar_fill(image, mask, src, self.settings, self.crop),
                                  {"sources": len(src)}))
        return out

    def weights_used(self) -> list[WeightsUse]:
        return []


__all__ = ["ExemplarInpainter", "ExemplarSettings", "Source", "exemplar_fill", "solve_crop"]
