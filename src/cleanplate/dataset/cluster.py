"""Clustering for :mod:`organize`: scikit-learn's k-means++ and silhouette score, deterministic for a seed.

``CLUSTER_VERSION`` is part of organize's step hash: bump it whenever the labels a given input
gets may change (version 2: scikit-learn ``KMeans`` replaced the hand-written numpy k-means).
"""

from __future__ import annotations

import numpy as np

MAX_AUTO_K = 10
CLUSTER_VERSION = 2


def kmeans(x: np.ndarray, k: int, seed: int = 0, n_init: int = 8) -> tuple[np.ndarray, float]:
    """k-means++ (``sklearn.cluster.KMeans``, ``n_init`` starts). ``x`` is NxD float; returns labels
    (N,) int64 in 0..k-1 and the inertia (sum of squared distances to the centres)."""
    from sklearn.cluster import KMeans

    n = len(x)
    k = max(1, min(k, n))
    if k == 1:
        return np.zeros(n, np.int64), float(((x - x.mean(0)) ** 2).sum())
    km = KMeans(n_clusters=k, init="k-means++", n_init=n_init, random_state=seed).fit(x)
    return km.labels_.astype(np.int64), float(km.inertia_)


def silhouette(x: np.ndarray, lab: np.ndarray, max_n: int = 2000, seed: int = 0) -> float:
    """Mean silhouette coefficient (``sklearn.metrics.silhouette_score``) over a random sample of
    ``max_n`` points when there are more; -1.0 when it is undefined (fewer than two clusters)."""
    from sklearn.metrics import silhouette_score

    n_labels = len(np.unique(lab))
    if n_labels < 2 or n_labels >= len(x):
        return -1.0
    try:
        return float(silhouette_score(x, lab, sample_size=max_n if len(x) > max_n else None, random_state=seed))
    except ValueError:  # the sample drew a single cluster
        return -1.0


def choose_k(x: np.ndarray, seed: int = 0) -> tuple[int, float | None]:
    """The number of clusters (2..MAX_AUTO_K) with the best silhouette, and that score (4 decimals)."""
    n = len(x)
    if n < 3:
        return n, None
    best = (2, -2.0)
    for k in range(2, min(MAX_AUTO_K, n - 1) + 1):
        s = silhouette(x, kmeans(x, k, seed)[0], seed=seed)
        if s > best[1] + 1e-9:
            best = (k, s)
    return best[0], round(best[1], 4)
