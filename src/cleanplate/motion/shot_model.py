"""The shot model: every frame of a shot window registered once, shared by every stage that reads a shot.

Each frame of a shot window is registered once onto the frame before it, at ``shots.work_side``,
with what is known of its characters kept out of the keypoints (:func:`register_chain`: the
shot-model stage after the per-frame detector, or :meth:`ShotModel.build` for direct callers).
:meth:`ShotModel.from_links` chains those links into matrices onto the first frame of each
registered run, so any frame maps onto any other of its run without registering again. The characters stage (background model), the temporal fill
(borrowed pixels) and the checks (background evidence) read those matrices, at the resolution
they work at; :meth:`ShotModel.background` makes the run's background estimate in the run's
reference frame: the median of the frames' scenery and, per pixel, how many frames saw it (what a
fill can invent once for the whole shot and warp back to each frame).

A chain adds up its links' errors: Sintel neighbours 2-5 frames apart were misregistered by
14-31 px at the corners. Where a temporal fill reads the model, each frame is also registered
directly onto the ``shots.direct_links`` frames before it (:func:`register_direct`, with the
features the chain found), and :meth:`ShotModel.registration` reads a pair's direct link when it
has one; the characters stage and the checks keep reading the chain's keypoint fits.

Matrices are 3x3 float64 in full-resolution pixel coordinates (x, y) of the frames; a frame that
failed to decode or to register starts a new run.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from cleanplate.config import ShotsConfig
from cleanplate.motion.registration import FrameFeatures, Registrar, Registration, shift_matrix, snapped

MAX_CANVAS = 4.0
"""The background estimate's canvas holds at most this many frames' area (a long pan is clipped
around the run's reference frame)."""


def small_frame(image: np.ndarray, side: int) -> np.ndarray:
    """``image`` (HxWx3 uint8 RGB) scaled so its longer side is at most ``side`` (area interpolation)."""
    h, w = image.shape[:2]
    f = side / max(h, w)
    if f >= 1:
        return image
    return cv2.resize(image, (max(8, round(w * f)), max(8, round(h * f))), interpolation=cv2.INTER_AREA)


def median_of_valid(stack: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Per-pixel median over the valid layers of ``stack`` (NxHxWx3 uint8), ``valid`` NxHxW bool: HxWx3 uint8.

    An even count averages the two middle values (rounded down), like ``np.nanmedian``; a pixel no
    layer saw is 0. A sort of the few layers, not a masked-array median (10x faster, no warnings).
    """
    v = np.where(valid[..., None], stack, np.uint16(256)).astype(np.uint16)  # invalid sorts last
    v.sort(axis=0)
    count = valid.sum(axis=0)[None, ..., None].astype(np.intp)
    lo = np.take_along_axis(v, np.maximum(count - 1, 0) // 2, axis=0)[0]
    hi = np.take_along_axis(v, count // 2, axis=0)[0]  # the same layer as lo for an odd count
    out = (lo + hi) // 2
    return np.where(count[0] > 0, out, 0).astype(np.uint8)


def _scale_matrix(sx: float, sy: float) -> np.ndarray:
    return np.diag([sx, sy, 1.0])


@dataclass(frozen=True)
class Link:
    """A frame's registration onto the frame before it, in full-resolution pixels.

    ``kind``: identity, shift, homography or rejected (then ``reason`` says why); ``matrix`` maps
    this frame's (x, y) into the previous frame's (ECC-refined, snapped to a whole-pixel shift when
    within ``shots.snap_px``: what borrowing pixels needs); ``coarse`` the keypoint fit alone (what
    the background model of the characters stage and the checks were tuned on); ``error`` the
    median reprojection error (px).
    """

    kind: str
    matrix: np.ndarray | None = None
    error: float = 0.0
    reason: str = ""
    previous: str | None = None  # the frame id it registers onto
    coarse: np.ndarray | None = None
    model: bool = False  # made for the shot model (characters kept out); stored with the frame's masks

    @property
    def ok(self) -> bool:
        return self.kind != "rejected" and self.matrix is not None

    def record(self) -> dict[str, object]:
        """JSON-ready, exact (floats as Python writes them, so a rerun reads the same matrices)."""
        return {"kind": self.kind, "previous": self.previous, "error": self.error, "reason": self.reason,
                "matrix": None if self.matrix is None else [float(v) for v in self.matrix.ravel()],
                "coarse": None if self.coarse is None else [float(v) for v in self.coarse.ravel()]}

    @classmethod
    def from_record(cls, rec: dict[str, object]) -> Link | None:
        """The link a segment record stored (None when it holds none or is malformed)."""
        try:
            m, c = rec.get("matrix"), rec.get("coarse")
            return cls(str(rec["kind"]), None if m is None else np.array(m, np.float64).reshape(3, 3),
                       float(rec.get("error", 0.0)), str(rec.get("reason", "")),  # type: ignore[arg-type]
                       None if rec.get("previous") is None else str(rec["previous"]),
                       None if c is None else np.array(c, np.float64).reshape(3, 3), True)
        except (KeyError, TypeError, ValueError):
            return None


def link(registrar: Registrar, previous: FrameFeatures, current: FrameFeatures,
         full_shape: tuple[int, int], previous_id: str | None = None) -> Link:
    """Register ``current`` onto ``previous`` (features at work scale) and lift it to full resolution."""
    try:
        reg = registrar.register(previous, current)
    except (cv2.error, ValueError, np.linalg.LinAlgError) as exc:
        return Link("rejected", reason=f"registration failed: {exc}"[:200], previous=previous_id)
    if not reg.ok or reg.matrix is None:
        return Link("rejected", reason=reg.reason, previous=previous_id)
    h, w = full_shape
    sh, sw = current.gray.shape
    s = _scale_matrix(sw / w, sh / h)
    m = np.linalg.inv(s) @ reg.matrix @ s
    m /= m[2, 2]
    c = m if reg.coarse is None else np.linalg.inv(s) @ reg.coarse @ s
    return Link(reg.kind, m, round(reg.error * w / sw, 4), "", previous_id, c / c[2, 2])


Frame = tuple[np.ndarray, "np.ndarray | None"]
"""A frame to register: work-scale HxWx3 uint8 RGB image, and its characters (HxW bool) or None."""


class FeatureCache:
    """Each frame's keypoint features, found once however many pairs it is in: with its characters
    kept out of the keypoints, and with every pixel (the retry). Shared by the chain and the direct
    links of one window (:func:`register_chain`, :func:`register_direct`)."""

    def __init__(self, registrar: Registrar, frames: list[Frame]) -> None:
        self.registrar = registrar
        self.frames = frames
        self._found: dict[tuple[int, bool], FrameFeatures] = {}

    def get(self, k: int, keep_out: bool) -> FrameFeatures:
        if (k, keep_out) not in self._found:
            image, mask = self.frames[k]
            self._found[(k, keep_out)] = self.registrar.features(
                image, mask if keep_out and mask is not None else np.zeros(image.shape[:2], bool))
        return self._found[(k, keep_out)]


def _pair(features: FeatureCache, later: int, earlier: int, shape: tuple[int, int], earlier_id: str) -> Link:
    """Frame ``later`` registered onto frame ``earlier`` with the characters kept out of the keypoints
    and, when that fails and some character is known, once more with every pixel."""
    reg, frames = features.registrar, features.frames
    lk = link(reg, features.get(earlier, True), features.get(later, True), shape, earlier_id)
    if not lk.ok and not (frames[earlier][1] is None and frames[later][1] is None):
        again = link(reg, features.get(earlier, False), features.get(later, False), shape, earlier_id)
        lk = again if again.ok else lk
    return replace(lk, model=True)


def register_chain(registrar: Registrar, frames: list[Frame], ids: list[str], shape: tuple[int, int],
                   follows: list[bool], stored: list[Link | None] | None = None,
                   features: FeatureCache | None = None) -> list[Link | None]:
    """Each frame's link onto the frame before it (None for the first, and where ``follows[k]`` is
    False: a failed frame between them, another size). A ``stored`` link made for the shot model
    onto the same previous frame is reused; otherwise the pair is registered with the characters
    kept out of the keypoints and, when that fails (a character covering much of a small frame
    leaves too few keypoints), once more with every pixel: an unmasked registration beats a broken
    chain. Each frame's features are found once, however many pairs it is in (``features``: a
    cache shared with :func:`register_direct`)."""
    features = features if features is not None else FeatureCache(registrar, frames)
    links: list[Link | None] = [None]
    for k in range(1, len(frames)):
        old = stored[k] if stored is not None else None
        if old is not None and old.model and old.previous == ids[k - 1]:
            links.append(old)  # registered when its masks were made: reused
            continue
        if not follows[k]:
            links.append(None)
            continue
        links.append(_pair(features, k, k - 1, shape, ids[k - 1]))
    return links


def register_direct(registrar: Registrar, frames: list[Frame], ids: list[str], shape: tuple[int, int],
                    follows: list[bool], depth: int, stored: list[list[Link]] | None = None,
                    features: FeatureCache | None = None) -> list[list[Link]]:
    """Each frame's direct links onto the frames 2 to ``depth`` before it (the link onto the frame
    right before is the chain's), in that order: registered pair by pair like the chain (characters
    kept out, then every pixel), so a neighbour a few frames away is not misregistered by the errors
    of the links between (chained, Sintel's 2-5 frames apart were 14-31 px off at the corners). Only
    frames that follow one another (``follows``: no failed frame between, one size) are paired. A
    ``stored`` link of the frame onto the same earlier frame, made for the shot model, is reused.
    Each link depends on its two frames alone: not on the window's other frames nor on the order
    frames were processed in."""
    features = features if features is not None else FeatureCache(registrar, frames)
    out: list[list[Link]] = []
    for k in range(len(frames)):
        old = {lk.previous: lk for lk in (stored[k] if stored is not None else []) if lk.model}
        mine: list[Link] = []
        for d in range(2, depth + 1):
            j = k - d
            if j < 0 or not all(follows[j + 1:k + 1]):
                break
            reused = old.get(ids[j])
            mine.append(reused if reused is not None else _pair(features, k, j, shape, ids[j]))
        out.append(mine)
    return out


@dataclass
class Background:
    """A run's background estimate in its reference frame, at work scale.

    ``image`` hxwx3 uint8 RGB (median of the frames' scenery), ``seen`` hxw uint16 (how many frames
    show scenery there; 0: no frame of the run saw it), ``offset`` (x, y) of the canvas origin in
    the reference frame's work-scale pixels, ``scale`` the work scale.
    """

    image: np.ndarray
    seen: np.ndarray
    offset: tuple[int, int]
    scale: float


@dataclass
class ShotModel:
    """One shot window: each frame registered onto its run's first frame (see the module doc).

    ``frame_ids`` in order; ``shape`` the frames' (H, W); ``to_ref[i]`` full-resolution 3x3 matrix
    frame i -> first frame of its run; ``run[i]`` the run id; ``kinds[i]`` / ``errors[i]`` /
    ``reasons[i]`` its link onto frame i-1 ("start" for a run's first frame); ``small[i]`` the frame
    at ``scale`` (work scale). ``direct[(i, j)]`` (i > j + 1): frame i registered directly onto
    frame j (:func:`register_direct`), which :meth:`registration` reads instead of the chain.
    """

    frame_ids: list[str]
    shape: tuple[int, int]
    scale: float
    to_ref: list[np.ndarray]
    run: list[int]
    kinds: list[str]
    errors: list[float]
    reasons: list[str]
    small: list[np.ndarray] = field(default_factory=list, repr=False)
    snap_px: float = 0.15
    to_ref_coarse: list[np.ndarray] = field(default_factory=list, repr=False)
    direct: dict[tuple[int, int], Link] = field(default_factory=dict, repr=False)
    _index: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._index = {fid: i for i, fid in enumerate(self.frame_ids)}
        if not self.to_ref_coarse:
            self.to_ref_coarse = list(self.to_ref)

    # ------------------------------------------------------------------------------- building
    @classmethod
    def from_links(cls, frame_ids: list[str], links: list[Link | None], small: list[np.ndarray],
                   shape: tuple[int, int], snap_px: float = 0.15,
                   direct: list[list[Link]] | None = None) -> ShotModel:
        """Chain each frame's link onto the frame before it (``links[i]`` None or not ok, or onto
        another frame than ``frame_ids[i-1]``: a new run starts at i). ``direct[i]``: frame i's
        direct links onto earlier frames (:func:`register_direct`); those that registered, onto a
        frame of ``frame_ids`` at least two before it, are kept."""
        to_ref: list[np.ndarray] = []
        coarse: list[np.ndarray] = []
        run: list[int] = []
        kinds: list[str] = []
        errors: list[float] = []
        reasons: list[str] = []
        for i, lk in enumerate(links):
            chained = i > 0 and lk is not None and lk.ok and lk.previous in (None, frame_ids[i - 1])
            if chained:
                assert lk is not None and lk.matrix is not None
                m = to_ref[-1] @ lk.matrix
                to_ref.append(m / m[2, 2])
                c = coarse[-1] @ (lk.coarse if lk.coarse is not None else lk.matrix)
                coarse.append(c / c[2, 2])
                run.append(run[-1])
                kinds.append(lk.kind)
                errors.append(lk.error)
                reasons.append("")
            else:
                to_ref.append(np.eye(3))
                coarse.append(np.eye(3))
                run.append(run[-1] + 1 if run else 0)
                kinds.append("start")
                errors.append(0.0)
                reasons.append("" if i == 0 or lk is None else lk.reason)
        scale = small[0].shape[1] / shape[1] if small else 1.0
        index = {fid: i for i, fid in enumerate(frame_ids)}
        pairs: dict[tuple[int, int], Link] = {}
        for i, mine in enumerate(direct or []):
            for lk in mine:
                j = index.get(lk.previous) if lk.previous is not None else None
                if lk.ok and j is not None and j < i - 1:
                    pairs[(i, j)] = lk
        return cls(list(frame_ids), shape, scale, to_ref, run, kinds, errors, reasons, list(small), snap_px, coarse,
                   pairs)

    @classmethod
    def build(cls, images: list[np.ndarray], sc: ShotsConfig | None = None,
              frame_ids: list[str] | None = None, masks: list[np.ndarray] | None = None,
              direct: bool = False) -> ShotModel:
        """Register ``images`` (HxWx3 uint8 RGB, one shot, in order) one after the other, what
        ``masks`` (HxW bool, the characters as far as known) cover kept out of the keypoints: for
        callers that have no shots stages upstream (the library's direct calls, the benchmarks).
        ``direct``: also register each frame directly onto the ``sc.direct_links`` frames before it
        (what the temporal fill reads; the chain alone serves every other reader)."""
        sc = sc or ShotsConfig()
        ids = frame_ids or [f"{i:06d}" for i in range(len(images))]
        small = [small_frame(im, sc.work_side) for im in images]
        shape = images[0].shape[:2] if images else (0, 0)

        def frame(i: int) -> Frame:
            h, w = small[i].shape[:2]
            if masks is None or masks[i].shape != images[i].shape[:2] or not masks[i].any():
                return small[i], None
            return small[i], cv2.resize(masks[i].astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0

        follows = [i > 0 and images[i].shape[:2] == shape and images[i - 1].shape[:2] == shape
                   for i in range(len(images))]
        registrar = Registrar(sc)
        frames = [frame(i) for i in range(len(images))]
        features = FeatureCache(registrar, frames)
        links = register_chain(registrar, frames, ids, shape, follows, features=features)
        pairs = register_direct(registrar, frames, ids, shape, follows, sc.direct_links, features=features) \
            if direct else None
        return cls.from_links(ids, links, small, shape, sc.snap_px, pairs)

    # ------------------------------------------------------------------------------- reading
    def __len__(self) -> int:
        return len(self.frame_ids)

    def index(self, frame_id: str) -> int | None:
        return self._index.get(frame_id)

    def _refs(self, coarse: bool) -> list[np.ndarray]:
        return self.to_ref_coarse if coarse else self.to_ref

    def _between(self, src: int, dst: int, s: np.ndarray, coarse: bool) -> np.ndarray | None:
        if self.run[src] != self.run[dst]:
            return None
        refs = self._refs(coarse)
        m = s @ np.linalg.inv(refs[dst]) @ refs[src] @ np.linalg.inv(s)
        return m / m[2, 2]

    def matrix(self, src: int, dst: int, scale: float = 1.0, coarse: bool = False) -> np.ndarray | None:
        """Homography from frame ``src`` to frame ``dst`` in pixels of frames scaled by ``scale``
        (1: full resolution), or None when they are not in one registered run. ``coarse``: chained
        from the keypoint fits (no ECC refinement, no snapping)."""
        return self._between(src, dst, _scale_matrix(scale, scale), coarse)

    def scaled(self, src: int, dst: int, size: tuple[int, int], coarse: bool = False) -> np.ndarray | None:
        """Like :meth:`matrix`, for frames resized to ``size`` (w, h) (per-axis scale)."""
        return self._between(src, dst, _scale_matrix(size[0] / self.shape[1], size[1] / self.shape[0]), coarse)

    def _chain_kinds(self, src: int, dst: int) -> list[str]:
        lo, hi = min(src, dst), max(src, dst)
        return self.kinds[lo + 1:hi + 1]

    def registration(self, src: int, dst: int, size: tuple[int, int] | None = None,
                     coarse: bool = False) -> Registration:
        """Frame ``src`` onto frame ``dst`` as a :class:`Registration` for
        :func:`~cleanplate.motion.registration.warp_into`, for frames of ``size`` (w, h; default
        full resolution): identity when every link between them is, a whole-pixel shift within
        ``snap_px``, else a homography. The pair's direct link when it has one (:attr:`direct`;
        it need not be in one registered run), else the chain; ``coarse``: the chained keypoint
        fits (see :meth:`matrix`), never the direct link."""
        size = size or (self.shape[1], self.shape[0])
        lo, hi = min(src, dst), max(src, dst)
        lk = None if coarse else self.direct.get((hi, lo))
        if lk is not None and lk.matrix is not None:
            s = _scale_matrix(size[0] / self.shape[1], size[1] / self.shape[0])
            m = lk.matrix if src == hi else np.linalg.inv(lk.matrix)
            m = s @ m @ np.linalg.inv(s)
            m /= m[2, 2]
            err = lk.error * size[0] / self.shape[1]
            kinds = [lk.kind]
        else:
            if self.run[src] != self.run[dst]:
                return Registration("rejected", reason="not in one registered run (a failed registration between)")
            m = self.scaled(src, dst, size, coarse)
            assert m is not None
            # the worst link between them: each link's median keypoint residual (px), not a sum
            err = float(max(self.errors[lo + 1:hi + 1], default=0.0)) * size[0] / self.shape[1]
            kinds = self._chain_kinds(src, dst)
        if all(k == "identity" for k in kinds):
            return Registration("identity", np.eye(3), (0, 0), 0, 0.0)
        return snapped(m, (size[1], size[0]), self.snap_px, 0, round(err, 4))

    def subset(self, frame_ids: list[str]) -> ShotModel:
        """The model of some of its frames (in order); frames keep their runs and matrices."""
        idx = [self._index[f] for f in frame_ids]
        at = {i: k for k, i in enumerate(idx)}
        direct = {(at[i], at[j]): lk for (i, j), lk in self.direct.items() if i in at and j in at}
        kinds = [self.kinds[i] if k > 0 and idx[k - 1] == i - 1 else "start" for k, i in enumerate(idx)]
        errors = [self.errors[i] if kinds[k] != "start" else 0.0 for k, i in enumerate(idx)]
        return ShotModel([self.frame_ids[i] for i in idx], self.shape, self.scale,
                         [self.to_ref[i] for i in idx], [self.run[i] for i in idx], kinds, errors,
                         [self.reasons[i] for i in idx], [self.small[i] for i in idx] if self.small else [],
                         self.snap_px, [self.to_ref_coarse[i] for i in idx], direct)

    def background(self, masks: list[np.ndarray] | None = None, run: int | None = None) -> Background:
        """The background estimate of one registered run (default: the longest) in its reference
        frame at work scale: the per-pixel median of its frames' scenery (outside ``masks``, HxW
        bool per frame, when given) and how many frames saw each pixel."""
        if not self.small:
            raise ValueError("this shot model holds no work-scale frames")
        runs = [run] if run is not None else [max(set(self.run), key=self.run.count)]
        members = [i for i, r in enumerate(self.run) if r == runs[0]]
        h, w = self.small[0].shape[:2]
        s = self.scale
        corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64).reshape(-1, 1, 2)
        pts = []
        mats = {}
        for i in members:
            m = _scale_matrix(s, s) @ self.to_ref[i] @ np.linalg.inv(_scale_matrix(s, s))
            mats[i] = m / m[2, 2]
            pts.append(cv2.perspectiveTransform(corners, mats[i]).reshape(-1, 2))
        allp = np.concatenate(pts)
        x0, y0 = np.floor(allp.min(0)).astype(int)
        x1, y1 = np.ceil(allp.max(0)).astype(int)
        limit = MAX_CANVAS * w * h
        if (x1 - x0) * (y1 - y0) > limit:  # clip a long pan around the reference frame
            grow = np.sqrt(limit / (w * h))
            cx, cy = w / 2, h / 2
            x0, x1 = max(x0, int(cx - grow * w / 2)), min(x1, int(cx + grow * w / 2))
            y0, y1 = max(y0, int(cy - grow * h / 2)), min(y1, int(cy + grow * h / 2))
        cw, ch = int(x1 - x0), int(y1 - y0)
        shift = shift_matrix(-x0, -y0)
        stack = np.zeros((len(members), ch, cw, 3), np.uint8)
        valid = np.zeros((len(members), ch, cw), bool)
        for k, i in enumerate(members):
            m = shift @ mats[i]
            stack[k] = cv2.warpPerspective(self.small[i], m, (cw, ch), flags=cv2.INTER_LINEAR)
            scenery = np.full((h, w), 255, np.uint8)
            if masks is not None:
                mk = cv2.resize(masks[i].astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
                scenery[mk] = 0
            cover = cv2.warpPerspective(scenery, m, (cw, ch), flags=cv2.INTER_NEAREST, borderValue=0)
            valid[k] = cover > 0
        image = median_of_valid(stack, valid)
        return Background(image, valid.sum(0).astype(np.uint16), (int(x0), int(y0)), s)


__all__ = ["Background", "FeatureCache", "Frame", "Link", "ShotModel", "link", "median_of_valid", "register_chain",
           "register_direct", "small_frame"]
