"""k-means++ and the silhouette score in numpy (deterministic for a seed), for :mod:`organize`."""

from __future__ import annotations

import numpy as np

MAX_AUTO_K = 10


def _sqdist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """NxM squared Euclidean distances between the rows of ``a`` and ``b``."""
    d = (a * a).sum(1)[:, None] - 2.0 * a @ b.T + (b * b).sum(1)[None, :]
    return np.maximum(d, 0.0)


def kmeans(x: np.ndarray, k: int, seed: int = 0, n_init: int = 8, iters: int = 100) -> tuple[np.ndarray, float]:
    """k-means++ (numpy, deterministic for a seed). ``x`` is NxD float; returns labels (N,) and inertia."""
    n = len(x)
    k = max(1, min(k, n))
    rng = np.random.default_rng(seed)
    best: tuple[np.ndarray, float] | None = None
    for _ in range(n_init):
        centres = [x[rng.integers(n)]]
        for _ in range(1, k):
            d2 = _sqdist(x, np.stack(centres)).min(axis=1)
            probs = d2 / d2.sum() if d2.sum() > 0 else np.full(n, 1.0 / n)
            centres.append(x[rng.choice(n, p=probs)])
        c = np.stack(centres).astype(np.float64)
        for _ in range(iters):
            d = _sqdist(x, c)
            lab = d.argmin(1)
            new = c.copy()
            for j in range(k):
                members = x[lab == j]
                if len(members):
                    new[j] = members.mean(0)
                else:  # an empty cluster takes the point farthest from its centre
                    far = int(d[np.arange(n), lab].argmax())
                    new[j], lab[far] = x[far], j
            if np.allclose(new, c):
                break
            c = new
        d = _sqdist(x, c)
        lab = d.argmin(1)
        inertia = float(d[np.arange(n), lab].sum())
        if best is None or inertia < best[1] - 1e-12:
            best = (lab, inertia)
    assert best is not None
    return best


def silhouette(x: np.ndarray, lab: np.ndarray, max_n: int = 2000, seed: int = 0) -> float:
    """Mean silhouette coefficient (a sample of ``max_n`` points when there are more)."""
    if len(set(lab.tolist())) < 2:
        return -1.0
    idx = np.arange(len(x))
    if len(x) > max_n:
        idx = np.random.default_rng(seed).choice(len(x), max_n, replace=False)
    xs, ls = x[idx], lab[idx]
    d = np.sqrt(_sqdist(xs, xs))
    scores = []
    for i in range(len(xs)):
        same = ls == ls[i]
        if same.sum() <= 1:
            scores.append(0.0)
            continue
        a = d[i, same].sum() / (same.sum() - 1)
        b = min(d[i, ls == other].mean() for other in set(ls.tolist()) if other != ls[i])
        scores.append((b - a) / max(a, b) if max(a, b) > 0 else 0.0)
    return float(np.mean(scores))


def choose_k(x: np.ndarray, seed: int = 0) -> tuple[int, float | None]:
    n = len(x)
    if n < 3:
        return n, None
    best = (2, -2.0)
    for k in range(2, min(MAX_AUTO_K, n - 1) + 1):
        s = silhouette(x, kmeans(x, k, seed)[0], seed=seed)
        if s > best[1] + 1e-9:
            best = (k, s)
    return best[0], round(best[1], 4)
