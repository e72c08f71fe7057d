"""Registering a neighbour frame onto a target frame of the same shot, and warping it there.

Keypoints (ORB or SIFT) are found on unmasked pixels only, matched with a ratio test, and a
homography is fitted with RANSAC; ECC (``cv2.findTransformECC``, homography model, on downscaled
frames, characters masked out) refines it. A shot whose frames are the same outside the characters
registers as the identity without keypoints, and a warp within ``snap_px`` of a whole-pixel shift
becomes that shift, so its pixels are copied as they are, not resampled. A neighbour is rejected
(``Registration.ok`` False, with a reason) when it has too few keypoints or inliers, or the
homography folds or scales the frame implausibly.

Matrices map neighbour pixel coordinates (x, y) to target pixel coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from cleanplate import masks as M
from cleanplate.config import ShotsConfig

_FEATURE_MARGIN = 16  # px kept between keypoints and masks: an ORB patch is 31 px wide
_RATIO = 0.8  # Lowe's ratio test
_STATIC_MEAN = 1.0  # a neighbour is the same view when the mean |difference| of common scenery is below this
_STATIC_OUTLIERS = 0.01  # ... and at most this share of it differs by more than _STATIC_LEVEL
_STATIC_LEVEL = 6
_STILL_LEVEL = 1  # ... or, unmasked, this share of all pixels and of the textured ones is within 1 level
_STILL_SHARE = 0.8
_TEXTURE = 16.0  # |Sobel x| + |Sobel y| of a textured pixel (0-255 grey levels)
_TEXTURED = 0.1  # the textured pixels decide when they are at least this share of the frame


@dataclass
class FrameFeatures:
    """What registration needs of one frame: gray HxW uint8, scenery HxW bool (outside the mask),
    keypoints Nx2 float32 (x, y) with descriptors, and a downscaled float32 copy for ECC."""

    gray: np.ndarray
    scenery: np.ndarray
    points: np.ndarray
    descriptors: np.ndarray | None
    small: np.ndarray
    small_scenery: np.ndarray
    scale: float


@dataclass
class Registration:
    """A neighbour's warp onto the target. ``kind``: identity, shift, homography or rejected."""

    kind: str
    matrix: np.ndarray | None = None  # 3x3 float64, neighbour (x, y) -> target (x, y)
    shift: tuple[int, int] = (0, 0)  # (dx, dy) for identity / shift
    inliers: int = 0
    error: float = 0.0  # median reprojection error of the inliers, px
    reason: str = ""
    coarse: np.ndarray | None = None  # the keypoint fit before ECC refinement and snapping (None: = matrix)

    @property
    def ok(self) -> bool:
        return self.kind != "rejected"

    def inverse(self) -> Registration:
        """The target's warp onto the neighbour."""
        if not self.ok or self.matrix is None:
            return self
        inv = np.linalg.inv(self.matrix)
        return Registration(self.kind, inv / inv[2, 2], (-self.shift[0], -self.shift[1]),
                            self.inliers, self.error, self.reason)


def shift_matrix(dx: float, dy: float) -> np.ndarray:
    """The 3x3 homography of a translation by (dx, dy) px."""
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


def _corners(shape: tuple[int, ...]) -> np.ndarray:
    h, w = shape[:2]
    return np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1], [(w - 1) / 2, (h - 1) / 2]], np.float64)


def _apply(matrix: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return cv2.perspectiveTransform(pts.reshape(-1, 1, 2).astype(np.float64), matrix).reshape(-1, 2)


def as_shift(matrix: np.ndarray, shape: tuple[int, ...], tol: float) -> tuple[int, int] | None:
    """The whole-pixel shift (dx, dy) ``matrix`` is within ``tol`` px of over the frame, or None."""
    c = _corners(shape)
    d = _apply(matrix, c) - c
    t = np.round(d[-1])
    if np.abs(d - t).max() <= tol:
        return int(t[0]), int(t[1])
    return None


def snapped(matrix: np.ndarray, shape: tuple[int, ...], snap_px: float, inliers: int = 0, error: float = 0.0,
            reason: str = "", coarse: np.ndarray | None = None) -> Registration:
    """``matrix`` (3x3, neighbour -> target, over a frame of ``shape``) as a registration: an identity
    or whole-pixel shift when it is within ``snap_px`` px of one over the frame (its pixels are then
    copied, not resampled; 0: never), else a homography of ``matrix`` as given."""
    shift = as_shift(matrix, shape, snap_px) if snap_px > 0 else None
    if shift is not None:
        return Registration("identity" if shift == (0, 0) else "shift", shift_matrix(*shift), shift, inliers,
                            error, reason, coarse)
    return Registration("homography", matrix, (0, 0), inliers, error, reason, coarse)


def _plausible(matrix: np.ndarray, shape: tuple[int, ...]) -> bool:
    """The homography keeps the frame a convex quad of similar area (no fold, flip or blow-up)."""
    quad = _apply(matrix, _corners(shape)[:4]).astype(np.float32)
    if not np.isfinite(quad).all() or not cv2.isContourConvex(quad.reshape(-1, 1, 2)):
        return False
    h, w = shape[:2]
    ratio = abs(cv2.contourArea(quad)) / float((w - 1) * (h - 1))
    return 0.5 <= ratio <= 2.0


class Registrar:
    """Finds :class:`FrameFeatures` of frames and :class:`Registration` of neighbour onto target."""

    def __init__(self, tc: ShotsConfig) -> None:
        self.tc = tc
        if tc.features == "sift":
            self._detector = cv2.SIFT_create(nfeatures=tc.max_features)
            self._norm = cv2.NORM_L2
        else:
            self._detector = cv2.ORB_create(nfeatures=tc.max_features, fastThreshold=8)
            self._norm = cv2.NORM_HAMMING
        self._matcher = cv2.BFMatcher(self._norm)

    def features(self, image: np.ndarray, mask: np.ndarray) -> FrameFeatures:
        """Features of a frame (HxWx3 uint8 RGB) whose characters are ``mask`` (HxW bool)."""
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        scenery = ~mask.astype(bool)
        detect = (~M.dilate(mask, _FEATURE_MARGIN)).astype(np.uint8) * 255
        kps, desc = self._detector.detectAndCompute(gray, detect)
        points = np.array([k.pt for k in kps], np.float32).reshape(-1, 2)
        h, w = gray.shape
        scale = min(1.0, self.tc.ecc_max_side / max(h, w))
        size = (max(8, round(w * scale)), max(8, round(h * scale)))
        small = gray if scale == 1.0 else cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        small_scenery = scenery if scale == 1.0 else cv2.resize(
            scenery.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
        # keep ECC off the characters' edges too: erode the scenery a little
        small_scenery = ~M.dilate(~small_scenery, 2)
        return FrameFeatures(gray, scenery, points, desc, small.astype(np.float32),
                             small_scenery.astype(np.uint8) * 255, scale)

    def register(self, target: FrameFeatures, source: FrameFeatures) -> Registration:
        """Warp of ``source`` onto ``target`` (same shot, same frame size), or a rejection."""
        if target.gray.shape != source.gray.shape:
            return Registration("rejected", reason="frame size differs")
        if self._same_view(target, source):
            return Registration("identity", shift_matrix(0, 0))
        n_min = self.tc.min_inliers
        if min(len(target.points), len(source.points)) < n_min or target.descriptors is None \
                or source.descriptors is None:
            return Registration("rejected", reason="too few keypoints")
        pairs = self._matcher.knnMatch(target.descriptors, source.descriptors, k=2)
        good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < _RATIO * p[1].distance]
        if len(good) < n_min:
            return Registration("rejected", reason=f"{len(good)} matches")
        dst = target.points[[m.queryIdx for m in good]]
        src = source.points[[m.trainIdx for m in good]]
        thr = self.tc.max_reprojection_error
        matrix, inl = cv2.findHomography(src, dst, cv2.RANSAC, thr, maxIters=2000, confidence=0.995)
        if matrix is None or inl is None:
            return Registration("rejected", reason="no homography")
        inl = inl.ravel().astype(bool)
        n_inl = int(inl.sum())
        if n_inl < n_min:
            return Registration("rejected", inliers=n_inl, reason=f"{n_inl} inliers")
        if not _plausible(matrix, target.gray.shape):
            return Registration("rejected", inliers=n_inl, reason="implausible homography")
        coarse = matrix / matrix[2, 2]
        if self.tc.ecc:
            matrix = self._refine(target, source, matrix)
        error = float(np.median(np.linalg.norm(_apply(matrix, src[inl]) - dst[inl], axis=1)))
        return snapped(matrix / matrix[2, 2], target.gray.shape, self.tc.snap_px, n_inl, round(error, 4),
                       coarse=coarse)

    def _same_view(self, target: FrameFeatures, source: FrameFeatures) -> bool:
        """The scenery both frames show is (nearly) the same pixels: a locked-off camera."""
        both = target.scenery & source.scenery
        if both.mean() < 0.05:
            return False
        d = cv2.absdiff(target.gray, source.gray)[both]
        if float(d.mean()) <= _STATIC_MEAN and float((d > _STATIC_LEVEL).mean()) <= _STATIC_OUTLIERS:
            return True
        # frames registered with no mask (the shot model: characters not found yet): a locked-off
        # camera leaves most pixels, textured ones included, exactly as they were while a
        # character moves; any camera motion changes nearly every textured pixel
        still = d <= _STILL_LEVEL
        if float(still.mean()) < _STILL_SHARE:
            return False
        g = target.gray.astype(np.float32)
        texture = (np.abs(cv2.Sobel(g, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(g, cv2.CV_32F, 0, 1)))[both] >= _TEXTURE
        if texture.mean() < _TEXTURED:  # too little texture to tell: the still share decides
            return True
        return float(still[texture].mean()) >= _STILL_SHARE

    def _refine(self, target: FrameFeatures, source: FrameFeatures, matrix: np.ndarray) -> np.ndarray:
        """ECC refinement of ``matrix`` at ECC scale; the keypoint fit is kept when ECC fails or drifts."""
        s = np.diag([target.scale, target.scale, 1.0])
        warp = s @ np.linalg.inv(matrix) @ np.linalg.inv(s)  # ECC warps template (target) -> input coords
        warp = (warp / warp[2, 2]).astype(np.float32)
        criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 30, 1e-4)
        try:
            if hasattr(cv2, "findTransformECCWithMask"):
                _, warp = cv2.findTransformECCWithMask(target.small, source.small, target.small_scenery,
                                                       source.small_scenery, warp, cv2.MOTION_HOMOGRAPHY,
                                                       criteria, 5)
            else:  # older OpenCV: one mask, on the input image; map the target's characters into it
                h, w = source.small.shape
                tmask = cv2.warpPerspective(target.small_scenery, warp, (w, h), flags=cv2.INTER_NEAREST)
                _, warp = cv2.findTransformECC(target.small, source.small, warp, cv2.MOTION_HOMOGRAPHY,
                                               criteria, source.small_scenery & tmask, 5)
        except cv2.error:
            return matrix
        refined = np.linalg.inv(np.linalg.inv(s) @ warp.astype(np.float64) @ s)
        refined /= refined[2, 2]
        c = _corners(target.gray.shape)
        drift = np.abs(_apply(refined, c) - _apply(matrix, c)).max()
        if not np.isfinite(drift) or drift > 2 * self.tc.max_reprojection_error \
                or not _plausible(refined, target.gray.shape):
            return matrix
        return refined


Cut = tuple[tuple[slice, slice], tuple[slice, slice]]


def _shifted(shape: tuple[int, ...], shift: tuple[int, int], roi: tuple[int, int, int, int]) -> Cut | None:
    """For a whole-pixel ``shift`` (dx, dy) of a neighbour of ``shape`` (H, W): the neighbour's
    slices and the ``roi``-relative target slices they are copied to; None when none overlap."""
    x0, y0, x1, y1 = roi
    dx, dy = shift
    H, W = shape[:2]
    sx0, sy0 = max(x0 - dx, 0), max(y0 - dy, 0)
    sx1, sy1 = min(x1 - dx, W), min(y1 - dy, H)
    if sx1 <= sx0 or sy1 <= sy0:
        return None
    tx, ty = sx0 + dx - x0, sy0 + dy - y0
    return ((slice(sy0, sy1), slice(sx0, sx1)),
            (slice(ty, ty + sy1 - sy0), slice(tx, tx + sx1 - sx0)))


def warp_into(image: np.ndarray, scenery: np.ndarray, reg: Registration,
              roi: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A neighbour (HxWx3 uint8 RGB) and where it shows scenery, warped into the target's ``roi``.

    ``roi`` is (x0, y0, x1, y1) in target pixels. Returns the hxwx3 uint8 pixels and an hxw bool
    map of the pixels that come wholly from the neighbour's scenery, inside its frame
    (:func:`warp_mask_into`); everything else (its characters, outside its frame) is not valid.
    Identity and shifts copy pixels exactly.
    """
    x0, y0, x1, y1 = roi
    w, h = x1 - x0, y1 - y0
    if reg.kind in ("identity", "shift"):
        out = np.zeros((h, w, 3), np.uint8)
        if (cut := _shifted(scenery.shape, reg.shift, roi)) is not None:
            out[cut[1]] = image[cut[0]]
        return out, warp_mask_into(scenery, reg, roi)
    if reg.matrix is None:
        raise ValueError(f"cannot warp a {reg.kind} registration")
    m = shift_matrix(-x0, -y0) @ reg.matrix
    out = cv2.warpPerspective(image, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    return out, warp_mask_into(scenery, reg, roi)


def warp_mask_into(mask: np.ndarray, reg: Registration, roi: tuple[int, int, int, int]) -> np.ndarray:
    """The hxw bool map of the target's ``roi`` (x0, y0, x1, y1) whose pixels :func:`warp_into`
    takes wholly from ``mask`` (HxW bool, in the neighbour's frame): copied for identity and
    shifts; for a homography, only pixels whose whole bicubic support lies in the mask."""
    x0, y0, x1, y1 = roi
    w, h = x1 - x0, y1 - y0
    if reg.kind in ("identity", "shift"):
        valid = np.zeros((h, w), bool)
        if (cut := _shifted(mask.shape, reg.shift, roi)) is not None:
            valid[cut[1]] = mask[cut[0]]
        return valid
    if reg.matrix is None:
        raise ValueError(f"cannot warp a {reg.kind} registration")
    m = shift_matrix(-x0, -y0) @ reg.matrix
    cover = cv2.warpPerspective(mask.astype(np.uint8) * 255, m, (w, h), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    # bicubic reads a 4x4 neighbourhood: keep only pixels whose whole support is in the mask
    return cv2.erode((cover == 255).astype(np.uint8), np.ones((3, 3), np.uint8),
                     borderType=cv2.BORDER_CONSTANT, borderValue=1).astype(bool)


_NEAR_MIN_PIXELS = 200  # ring pixels (at the work scale) needed to refine a registration near a hole
_NEAR_SIDE = 480  # the ring's bounding box is refined at most this many px on its longer side


def refine_near(target: np.ndarray, hole: np.ndarray, source: np.ndarray, source_scenery: np.ndarray,
                reg: Registration, width: int, max_move: float, snap_px: float = 0.15) -> Registration:
    """``reg`` (``source`` onto ``target``) refined to the motion of the set right around ``hole``.

    A shot's homography is fitted to the whole frame; in a set with depth the ground beside a
    character moves otherwise than the far wall, and pixels carried into the character's hole along
    the whole-frame fit slide against their surroundings. Here an affine correction is fitted by ECC
    on the ring of ``width`` px around ``hole`` (HxW bool, target pixels): the target's own pixels
    there against the source warped by ``reg`` where it shows scenery (``source_scenery`` HxW bool).
    Nothing inside the hole is looked at. The correction is kept only when it lowers the ring's mean
    difference and moves some ring pixel more than ``snap_px`` but none more than ``max_move`` px;
    otherwise ``reg`` is returned as it is (also for rejected and identity registrations). A refined
    warp within ``snap_px`` of a whole-pixel shift becomes that shift (its pixels are copied, not
    resampled).
    """
    if not reg.ok or reg.kind == "identity" or width < 1 or not hole.any():
        return reg
    matrix = reg.matrix if reg.matrix is not None else shift_matrix(*reg.shift)
    band = M.dilate(hole, width) & ~hole
    x, y, w, h = cv2.boundingRect(band.astype(np.uint8))
    s = min(1.0, _NEAR_SIDE / max(w, h))
    to_small = np.diag([s, s, 1.0]) @ shift_matrix(-x, -y)
    sw, sh = max(int(round(w * s)), 1), max(int(round(h * s)), 1)
    m = to_small @ matrix
    warped = cv2.warpPerspective(source, m, (sw, sh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    seen = cv2.warpPerspective(source_scenery.astype(np.float32), m, (sw, sh), flags=cv2.INTER_LINEAR) > 0.999
    mine = cv2.warpAffine(band.astype(np.float32), to_small[:2], (sw, sh), flags=cv2.INTER_LINEAR) > 0.999
    small = cv2.warpAffine(target, to_small[:2], (sw, sh), flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    valid = (mine & seen).astype(np.uint8)
    if int(valid.sum()) < _NEAR_MIN_PIXELS:
        return reg
    a = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)
    b = cv2.cvtColor(warped, cv2.COLOR_RGB2GRAY).astype(np.float32)
    warp = np.eye(2, 3, dtype=np.float32)
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-5)
    try:
        _, warp = cv2.findTransformECC(a, b, warp, cv2.MOTION_AFFINE, criteria, valid, 5)
    except cv2.error:
        return reg
    affine = np.vstack([warp.astype(np.float64), [0.0, 0.0, 1.0]])  # target small -> warped source small
    before = float(np.abs(a - b)[valid > 0].mean())
    moved = cv2.warpAffine(b, warp, (sw, sh), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    back = cv2.warpAffine(valid, warp, (sw, sh), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP) > 0
    both = (valid > 0) & back
    if not both.any() or float(np.abs(a - moved)[both].mean()) >= before:
        return reg
    ys, xs = np.nonzero(valid)
    pts = np.stack([xs, ys], 1).astype(np.float64)
    move = np.abs(_apply(affine, pts) - pts).max() / s
    if not np.isfinite(move) or move > max_move or move <= snap_px:
        return reg
    refined = np.linalg.inv(to_small) @ np.linalg.inv(affine) @ to_small @ matrix
    refined /= refined[2, 2]
    return snapped(refined, hole.shape, snap_px, reg.inliers, reg.error, reg.reason)
