"""Temporal clean plates (``fill.method: temporal+<inpainter>``): real pixels from other frames first.

In a shot the set stays while characters move, so most of what a character hides in one frame
another frame shows. For each frame the filler takes its neighbours in the same shot (the
``window`` frames each side, plus ``keyframes`` further away), warps them onto it along the shot
model's registration (``SequenceFrame.shot``, built once per window by the pipeline: the pair's
direct link for neighbours up to ``shots.direct_links`` apart, else the chain; frames that
come without one are registered here), and fills every masked pixel with the per-pixel median of the neighbours that show
scenery there, after per-channel gain compensation and a check of each neighbour against the
unmasked ring around each hole. Only what no neighbour saw goes to the inner inpainter, which gets
the frame with the borrowed pixels already in place. What no frame saw is invented once
(``fill.temporal.carry_invented``): what the shot's frames invented is kept on one layer, in
the coordinates of the frame where it started, and warped into each next frame's unknown pixels
along the frame-to-frame registrations composed, each refined on the ring around the frame's holes
(``carry_ring``: in a set with depth, the ground at a character's feet moves otherwise than the
far wall); the inner inpainter invents only what is new there, and that joins the layer. The
invented region moves with the set instead of flickering (a character who stands still for the
whole shot), and each invented pixel is resampled once into the layer and once out of it,
however long the shot. The layer also keeps the set as each frame showed it
(``carry_seen``), over what was invented there: a point hidden now and seen some frames ago,
beyond the neighbours' reach, comes back as it was seen. On resume, the context frames before a frame to
do are filled again in memory (not written) so the carried pixels are those of an uninterrupted
run. Shots come with the frames
(``SequenceFrame.shot_id``, set by the pipeline's shots stage); nothing is borrowed across a cut.
Memory is bounded: the filler holds the frames within its reach and one layer (a canvas of
four frames' size) only.

Per-frame metadata (``FillResult.extra``): ``shot_id``, ``temporal_fraction`` and
``inpainted_fraction`` (shares of the masked area; ``carried_seen_fraction`` the share of real pixels
the shot's layer gave, counted in ``temporal_fraction``; ``carried_fraction`` the share of invented pixels carried from
the layer), ``registration_error`` (median reprojection
error of the used neighbours, px), ``photometric_error`` (their median ring difference, levels),
``neighbours_used`` (count), ``neighbour_ids``, ``neighbours_rejected`` ({frame id: reason}),
``inner_method`` and ``temporal_timings`` (seconds of registration, fusion, inner inpaint).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from cleanplate import masks as M
from cleanplate.config import Config, TemporalConfig
from cleanplate.errors import FrameError
from cleanplate.fill.base import INPAINTERS, Inpainter
from cleanplate.motion.registration import (
    FrameFeatures,
    Registrar,
    Registration,
    refine_near,
    shift_matrix,
    snapped,
    warp_into,
    warp_mask_into,
)
from cleanplate.motion.shot_model import ShotModel
from cleanplate.records import FillResult, SequenceFrame
from cleanplate.weights import WeightsUse

PREFIX = "temporal+"
_MAX_GAIN = 1.5  # per-channel gains are clipped to [1/_MAX_GAIN, _MAX_GAIN]
_GAIN_EPS = 0.01  # gains closer to 1 than this are not applied, so identical scenery is copied exactly
_MIN_RING = 20  # ring pixels needed to judge a neighbour for a hole


@dataclass
class FrameFill:
    """Pixels borrowed from neighbours for one frame, before the inner inpainter.

    ``fill`` HxWx3 uint8 RGB (meaningful where ``known``), ``known`` HxW bool (masked pixels some
    neighbour showed), ``used`` indices of the neighbours that gave pixels, ``errors`` each
    neighbour's median ring difference (levels; None when it could not be measured).
    """

    fill: np.ndarray
    known: np.ndarray
    used: list[int]
    errors: list[float | None]


def _roi(mask: np.ndarray, margin: int) -> tuple[int, int, int, int]:
    x, y, w, h = cv2.boundingRect(mask.astype(np.uint8))
    H, W = mask.shape
    return max(x - margin, 0), max(y - margin, 0), min(x + w + margin, W), min(y + h + margin, H)


def fuse(image: np.ndarray, mask: np.ndarray,
         neighbours: Sequence[tuple[np.ndarray, np.ndarray, Registration]], tc: TemporalConfig) -> FrameFill:
    """Fill ``mask`` (HxW bool) of ``image`` (HxWx3 uint8 RGB) from registered neighbours.

    ``neighbours``: (image HxWx3 uint8 RGB, scenery HxW bool, registration onto ``image``).
    Each hole (connected component of the mask) takes a neighbour only when the neighbour, warped
    and gain-compensated, matches the frame on the unmasked ring around that hole (median
    difference <= ``border_tolerance``); each pixel is the median of the accepted candidates.
    """
    h, w = mask.shape
    fill = np.zeros((h, w, 3), np.uint8)
    known = np.zeros((h, w), bool)
    errors: list[float | None] = [None] * len(neighbours)
    if not mask.any() or not neighbours:
        return FrameFill(fill, known, [], errors)
    x0, y0, x1, y1 = roi = _roi(mask, tc.ring + 1)
    m = mask[y0:y1, x0:x1]
    img = image[y0:y1, x0:x1].astype(np.float32)
    n_lab, lab = cv2.connectedComponents(m.astype(np.uint8), connectivity=8)
    ring = cv2.dilate(lab.astype(np.float32), M.ellipse_kernel(tc.ring)).astype(np.int64)
    ring[m] = 0
    ring_size = np.bincount(ring.ravel(), minlength=n_lab)
    sel = np.nonzero(m)
    cands = np.full((len(neighbours), len(sel[0]), 3), np.nan, np.float32)
    for k, (nimg, scenery, reg) in enumerate(neighbours):
        px, valid = warp_into(nimg, scenery, reg, roi)
        cand = px.astype(np.float32)
        on_ring = valid & (ring > 0)
        if tc.gain and on_ring.sum() >= _MIN_RING:
            gain = img[on_ring].sum(0) / np.maximum(cand[on_ring].sum(0), 1.0)
            gain = np.clip(gain, 1 / _MAX_GAIN, _MAX_GAIN)
            if np.abs(gain - 1).max() >= _GAIN_EPS:
                cand = np.clip(cand * gain, 0, 255)
        diff = np.abs(img - cand).mean(-1)
        if on_ring.sum() >= _MIN_RING:
            errors[k] = round(float(np.median(diff[on_ring])), 3)
        # median diff <= tol  <=>  at most half of the ring pixels differ by more than tol
        bad = on_ring & (diff > tc.border_tolerance)
        seen = np.bincount(ring[on_ring], minlength=n_lab)
        n_bad = np.bincount(ring[bad], minlength=n_lab)
        judged = seen >= np.maximum(_MIN_RING, 0.25 * ring_size)
        comp_ok = judged & (n_bad * 2 <= seen)
        if errors[k] is not None and errors[k] <= tc.border_tolerance:  # too little ring seen: judge globally
            comp_ok |= ~judged
        comp_ok[0] = False
        ok = valid & comp_ok[lab]
        vals = cand[sel]
        vals[~ok[sel]] = np.nan
        cands[k] = vals
    count = (~np.isnan(cands[..., 0])).sum(0)
    has = count > 0
    used = [k for k in range(len(neighbours)) if bool((~np.isnan(cands[k, :, 0])).any())]
    if has.any():
        srt = np.sort(cands[:, has], axis=0)  # NaN sorts last
        c = count[has]
        lo = np.take_along_axis(srt, ((c - 1) // 2)[None, :, None].repeat(3, 2), 0)[0]
        hi = np.take_along_axis(srt, (c // 2)[None, :, None].repeat(3, 2), 0)[0]
        med = np.clip(np.rint((lo + hi) / 2), 0, 255).astype(np.uint8)
        ys, xs = sel[0][has] + y0, sel[1][has] + x0
        fill[ys, xs] = med
        known[ys, xs] = True
    return FrameFill(fill, known, used, errors)


def _sane(f: SequenceFrame) -> bool:
    """HxWx3 uint8 image with an HxW mask: the only frames registration and fusion take."""
    im, m = f.image, f.mask
    return im.ndim == 3 and im.shape[2] == 3 and im.dtype == np.uint8 and m.shape == im.shape[:2]


@dataclass
class _Entry:
    pos: int
    frame: SequenceFrame
    shot_key: int = -1
    shot_id: str = ""
    features: FrameFeatures | None = None


_LAYER_MARGIN = 0.5  # the invented layer's canvas reaches this share of the first frame beyond each side


@dataclass
class _Layer:
    """What the shot has invented so far, kept on one canvas in the coordinates of the frame where it
    started, with the canvas's registration onto the last frame filled (``to_frame``, 3x3; the
    frame-to-frame registrations, each refined around the holes, composed).

    A pixel invented in some frame is resampled once on its way into the canvas and once on its way
    out into each later frame, however long it is carried: warped from plate to plate, it was
    resampled once per frame, and over a long shot bicubic resampling sharpened it into ringing (its
    gradient energy grew 1.7x in 48 frames of a slow pan). ``image`` CHxCWx3 uint8 RGB and ``valid``
    CHxCW bool hold the invented pixels; the canvas reaches ``_LAYER_MARGIN`` of the first frame's
    size beyond each side (what falls outside it is not carried).
    """

    image: np.ndarray
    valid: np.ndarray
    to_frame: np.ndarray
    real: np.ndarray

    @classmethod
    def start(cls, plate: np.ndarray, invented: np.ndarray) -> _Layer:
        h, w = invented.shape
        ox, oy = int(round(w * _LAYER_MARGIN)), int(round(h * _LAYER_MARGIN))
        image = np.zeros((h + 2 * oy, w + 2 * ox, 3), np.uint8)
        valid = np.zeros(image.shape[:2], bool)
        image[oy:oy + h, ox:ox + w][invented] = plate[invented]
        valid[oy:oy + h, ox:ox + w] = invented
        return cls(image, valid, shift_matrix(-ox, -oy), np.zeros_like(valid))

    def add_real(self, plate: np.ndarray, seen: np.ndarray) -> None:
        """Put the set's real pixels ``seen`` (HxW bool) of ``plate`` (the frame the canvas is registered
        onto) into the canvas, over what was invented there or seen before."""
        back = Registration("homography", self.to_frame).inverse()
        h, w = seen.shape
        box = self._box(back, (0, 0, w, h))
        if box is None:
            return
        x0, y0, x1, y1 = box
        px, ok = warp_into(plate, seen, back, box)
        self.image[y0:y1, x0:x1][ok] = px[ok]
        self.valid[y0:y1, x0:x1] |= ok
        self.real[y0:y1, x0:x1] |= ok

    def _box(self, back: Registration, rect: tuple[int, int, int, int]) -> tuple[int, int, int, int] | None:
        """The canvas box (x0, y0, x1, y1) that frame rectangle ``rect`` (x0, y0, x1, y1) lands in
        along ``back`` (frame -> canvas), a little grown for the resampling; None outside the canvas."""
        assert back.matrix is not None
        x, y, x1, y1 = rect
        corners = np.array([[x, y], [x1, y], [x1, y1], [x, y1]], np.float64).reshape(-1, 1, 2)
        pts = cv2.perspectiveTransform(corners, back.matrix).reshape(-1, 2)
        lo, hi = np.floor(pts.min(0)).astype(int) - 2, np.ceil(pts.max(0)).astype(int) + 3
        ch, cw = self.valid.shape
        box = (max(int(lo[0]), 0), max(int(lo[1]), 0), min(int(hi[0]), cw), min(int(hi[1]), ch))
        return box if box[2] > box[0] and box[3] > box[1] else None

    def onto(self, step: Registration, shape: tuple[int, int], snap_px: float) -> Registration:
        """The canvas onto the next frame, ``step`` registering the last frame onto it; a whole-pixel
        shift (within ``snap_px``) stays one, so its pixels are copied, not resampled."""
        m = (step.matrix if step.matrix is not None else shift_matrix(*step.shift)) @ self.to_frame
        return snapped(m / m[2, 2], shape, snap_px)

    def add(self, plate: np.ndarray, new: np.ndarray, unknown: np.ndarray, onto: Registration) -> None:
        """Put the pixels of ``new`` (HxW bool) that ``plate`` (HxWx3 uint8 RGB, the frame the canvas
        is registered onto by ``onto``) invented into the canvas, where it holds nothing yet; the
        canvas is registered onto that frame from now on. ``unknown`` (HxW bool: ``new`` and what was
        carried around it) may be read to resample them, so a strip a few pixels wide is not lost to
        the resampling's support."""
        assert onto.matrix is not None
        self.to_frame = onto.matrix
        if not new.any():
            return
        back = onto.inverse()  # frame -> canvas
        x, y, w, h = cv2.boundingRect(new.astype(np.uint8))
        box = self._box(back, (x, y, x + w, y + h))
        if box is None:
            return
        x0, y0, x1, y1 = box
        px, ok = warp_into(plate, unknown, back, box)
        assert back.matrix is not None
        m = shift_matrix(-x0, -y0) @ back.matrix
        fresh = cv2.warpPerspective(new.astype(np.uint8), m, (x1 - x0, y1 - y0), flags=cv2.INTER_NEAREST) > 0
        sub = ok & fresh & ~self.valid[y0:y1, x0:x1]
        self.image[y0:y1, x0:x1][sub] = px[sub]
        self.valid[y0:y1, x0:x1] |= sub


class TemporalFiller:
    """``temporal+<inner>``: borrow from the shot's other frames, the inner inpainter does the rest.

    Sequential (a :class:`~cleanplate.fill.base.SequentialInpainter`): the pipeline calls
    :meth:`fill_sequence` with a shot's frames. ``on_source_map``,
    when set, gets (frame id, HxW uint8 map: 0 kept, 1 from neighbours, 2 inner inpainter) per frame.
    """

    name = "temporal"
    frame_threads = False  # frames in order: a plate lends its pixels to the next ones
    inner_name = ""  # set on the registered subclasses (temporal+patchmatch, ...)

    def __init__(self, config: Config, device: str) -> None:
        self.tc = config.fill.temporal
        self.inner: Inpainter = INPAINTERS.get(self.inner_name)(config, device)
        self.shots = config.shots
        self.registrar = Registrar(config.shots)  # only for frames that come without a shot model
        k, stride = self.tc.window, self.tc.keyframe_stride
        offs = list(range(1, k + 1)) + [k + stride * i for i in range(1, self.tc.keyframes + 1)]
        self.offsets = [s * o for o in offs for s in (-1, 1)]  # nearest first
        self.reach = max(offs, default=0)
        self.on_source_map: Callable[[str, np.ndarray], None] | None = None
        self._pairs: dict[tuple[int, int], Registration] = {}
        self._carry: _Entry | None = None  # the last filled frame of the shot (its invented pixels lend on)
        self._layer: _Layer | None = None  # what the shot invented so far, in its anchor frame's coordinates

    def weights_used(self) -> list[WeightsUse]:
        return self.inner.weights_used()

    def fill(self, images: list[np.ndarray], masks: list[np.ndarray]) -> list[FillResult]:
        """A batch is taken as consecutive frames of a sequence; a frame's failure is raised."""
        ids = [f"{i:06d}" for i in range(len(images))]
        shot = ShotModel.build(images, self.shots, ids, masks, direct=True) if images and len({im.shape for im in images}) == 1 \
            else None
        frames = (SequenceFrame(ids[i], i, im, mk, shot=shot)
                  for i, (im, mk) in enumerate(zip(images, masks, strict=True)))
        out = []
        for _, res in self.fill_sequence(frames):
            if isinstance(res, BaseException):
                raise res
            out.append(res)
        return out

    def fill_sequence(self, frames: Iterable[SequenceFrame]
                      ) -> Iterator[tuple[SequenceFrame, FillResult | Exception]]:
        """One (frame, result or exception) per ``todo`` frame, in order; context frames only lend pixels.

        A change of ``shot_id`` from one frame to the next is a cut (None: same shot as the frame before).
        """
        buf: dict[int, _Entry] = {}
        queue: deque[int] = deque()
        self._pairs.clear()
        self._carry, self._layer = None, None
        key, shot_id = -1, "shot0000"
        for pos, frame in enumerate(frames):
            if pos == 0 or (frame.shot_id is not None and frame.shot_id != shot_id):
                key += 1
                shot_id = frame.shot_id if frame.shot_id is not None else shot_id
            entry = _Entry(pos, frame, key, shot_id)
            buf[pos] = entry
            if frame.todo or (frame.refill and self.tc.carry_invented):
                queue.append(pos)
            while queue and (pos - queue[0] >= self.reach or buf[queue[0]].shot_key != key):
                yield from self._result(buf, queue.popleft())
            self._evict(buf, (queue[0] if queue else pos) - self.reach)
        while queue:
            yield from self._result(buf, queue.popleft())
        self._pairs.clear()
        self._carry, self._layer = None, None

    def _evict(self, buf: dict[int, _Entry], lo: int) -> None:
        for p in [p for p in buf if p < lo]:
            del buf[p]
        for key in [key for key in self._pairs if min(key) < lo]:
            del self._pairs[key]

    def _result(self, buf: dict[int, _Entry], pos: int) -> Iterator[tuple[SequenceFrame, FillResult | Exception]]:
        frame = buf[pos].frame
        try:
            res: FillResult | Exception = self._fill_one(buf, pos)
        except Exception as exc:  # recorded as this frame's failure by the pipeline
            res = exc
        if frame.todo:
            yield frame, res

    def _features(self, e: _Entry) -> FrameFeatures:
        if e.features is None:
            e.features = self.registrar.features(e.frame.image, e.frame.mask)
        return e.features

    def _register(self, target: _Entry, source: _Entry) -> Registration:
        key = (target.pos, source.pos)
        shot = target.frame.shot
        if key not in self._pairs and shot is not None and source.frame.shot is shot:
            ti, si = shot.index(target.frame.frame_id), shot.index(source.frame.frame_id)
            if ti is not None and si is not None:  # read off the shot model: no registration here
                h, w = target.frame.image.shape[:2]
                self._pairs[key] = shot.registration(si, ti, (w, h))
        if key not in self._pairs:
            back = self._pairs.get((source.pos, target.pos))
            if back is not None:
                self._pairs[key] = back.inverse()
            elif not (_sane(target.frame) and _sane(source.frame)):
                self._pairs[key] = Registration("rejected", reason="unusable frame or mask")
            else:
                try:
                    self._pairs[key] = self.registrar.register(self._features(target), self._features(source))
                except (cv2.error, ValueError, np.linalg.LinAlgError) as exc:  # a bad pair only loses the pair
                    self._pairs[key] = Registration("rejected", reason=f"registration failed: {exc}"[:200])
        return self._pairs[key]

    def _carried(self, e: _Entry, unknown: np.ndarray, plate: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, Registration | None]:
        """Put into ``plate`` the pixels of ``unknown`` that the shot invented in earlier frames, from
        its invented layer (:class:`_Layer`) along the frame before's registration onto this frame,
        refined on the ring around this frame's holes (``fill.temporal.carry_ring``). Returns the
        HxW bool maps of the carried pixels and of those of them an earlier frame saw (real, not
        invented), and the layer's registration onto this frame (None: the layer starts again here)."""
        carried = np.zeros(unknown.shape, bool)
        real = np.zeros(unknown.shape, bool)
        prev, layer = self._carry, self._layer
        if not self.tc.carry_invented or prev is None or layer is None or prev.shot_key != e.shot_key \
                or prev.frame.image.shape != e.frame.image.shape:
            return carried, real, None
        step = self._register(e, prev)
        if not step.ok:
            return carried, real, None
        mask = e.frame.mask.astype(bool)
        side = min(mask.shape)
        width = int(round(self.tc.carry_ring * side))
        if width > 0 and mask.any():
            step = refine_near(e.frame.image, mask, prev.frame.image, ~prev.frame.mask.astype(bool), step, width,
                               self.tc.carry_ring_move * side, self.shots.snap_px)
        onto = layer.onto(step, mask.shape, self.shots.snap_px)
        if unknown.any():
            x0, y0, x1, y1 = roi = _roi(unknown, 0)
            px, valid = warp_into(layer.image, layer.valid, onto, roi)
            sub = unknown[y0:y1, x0:x1] & valid
            carried[y0:y1, x0:x1] = sub
            plate[y0:y1, x0:x1][sub] = px[sub]
            if layer.real.any():
                real[y0:y1, x0:x1] = sub & warp_mask_into(layer.real, onto, roi)
        return carried, real, onto

    def _fill_one(self, buf: dict[int, _Entry], pos: int) -> FillResult:
        t0 = time.perf_counter()
        e = buf[pos]
        if not _sane(e.frame):
            raise FrameError(f"frame {e.frame.image.shape} and mask {e.frame.mask.shape} do not fit together")
        image, mask = e.frame.image, e.frame.mask.astype(bool)
        regs: list[tuple[_Entry, Registration]] = []
        rejected: dict[str, str] = {}
        if mask.any():
            for off in self.offsets:
                n = buf.get(pos + off)
                if n is None or n.shot_key != e.shot_key or n.frame.image.shape != image.shape:
                    continue
                reg = self._register(e, n)
                if reg.ok:
                    regs.append((n, reg))
                else:
                    rejected[n.frame.frame_id] = reg.reason
        t1 = time.perf_counter()
        margin = self.tc.neighbour_margin
        ff = fuse(image, mask, [(n.frame.image, ~M.dilate(n.frame.mask.astype(bool), margin), r) for n, r in regs],
                  self.tc)
        for k, err in enumerate(ff.errors):
            if k not in ff.used:
                rejected[regs[k][0].frame.frame_id] = "no usable pixels" if err is None or \
                    err <= self.tc.border_tolerance else f"differs from the frame (ring {err:.1f})"
        t2 = time.perf_counter()
        unknown = mask & ~ff.known
        plate = image.copy()
        plate[ff.known] = ff.fill[ff.known]
        carried, seen, onto = self._carried(e, unknown, plate)
        new = unknown & ~carried
        extra: dict[str, object] = {}
        if new.any():
            res = self.inner.fill([plate], [new])[0]
            extra.update(res.extra)
            given, fixed = plate, ff.known | carried
            plate = np.array(res.plate, dtype=np.uint8, copy=True)
            plate[fixed] = given[fixed]  # borrowed and carried pixels stay as given to the inner fill
        if self.tc.carry_invented:
            self._carry = e
            if onto is not None and self._layer is not None:
                self._layer.add(plate, new, unknown, onto)
            else:  # the layer starts (again) in this frame's coordinates
                self._layer = _Layer.start(plate, unknown)
            if self.tc.carry_seen:  # the set as this frame shows it, and what it borrowed
                self._layer.add_real(plate, ff.known | ~M.dilate(mask, margin))
        t3 = time.perf_counter()
        known = ff.known | seen
        unknown &= ~seen
        carried &= ~seen
        src = np.zeros(mask.shape, np.uint8)
        src[known], src[unknown] = 1, 2
        if self.on_source_map is not None:
            self.on_source_map(e.frame.frame_id, src)
        area = int(mask.sum())
        used = [regs[k] for k in ff.used]
        reproj = [r.error for _, r in used]
        photo = [ff.errors[k] for k in ff.used if ff.errors[k] is not None]
        extra.update({
            "shot_id": e.shot_id,
            "temporal_fraction": round(int(known.sum()) / area, 4) if area else 0.0,
            "carried_seen_fraction": round(int(seen.sum()) / area, 4) if area else 0.0,
            "inpainted_fraction": round(int(unknown.sum()) / area, 4) if area else 0.0,
            "carried_fraction": round(int(carried.sum()) / area, 4) if area else 0.0,
            "registration_error": round(float(np.median(reproj)), 4) if reproj else None,
            "photometric_error": round(float(np.median(photo)), 3) if photo else None,
            "neighbours_used": len(used),
            "neighbour_ids": [n.frame.frame_id for n, _ in used],
            "neighbours_rejected": rejected,
            "inner_method": self.inner_name,
            "temporal_timings": {"registration": round(t1 - t0, 4), "fusion": round(t2 - t1, 4),
                                 "inpaint": round(t3 - t2, 4)},
        })
        return FillResult(plate, extra, source_map=src)


def mark_refill(frames: Sequence[SequenceFrame]) -> None:
    """Set ``refill`` on the context frames (``todo`` False) that come before a frame to do of
    their shot: what they invented is carried on to it, so they are filled again (not yielded)."""
    pending: list[SequenceFrame] = []
    shot_id: str | None = None
    for pos, f in enumerate(frames):
        if pos > 0 and f.shot_id is not None and f.shot_id != shot_id:
            pending = []  # a cut: nothing is carried across it
        shot_id = f.shot_id if f.shot_id is not None else shot_id
        if f.todo:
            for p in pending:
                p.refill = True
            pending = []
        else:
            pending.append(f)


def register_temporal() -> None:
    """Register ``temporal+<name>`` for every inpainter registered so far (idempotent)."""
    for name in INPAINTERS.names():
        if name.startswith(PREFIX) or PREFIX + name in INPAINTERS:
            continue
        cls = type(f"TemporalFiller_{name.replace('-', '_')}", (TemporalFiller,),
                   {"inner_name": name, "__doc__": f"Temporal fill; what no frame saw goes to {name}."})
        INPAINTERS.register(PREFIX + name)(cls)

