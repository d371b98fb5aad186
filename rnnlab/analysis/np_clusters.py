"""NumPy kernels: deterministic k-means of neuron features (scipy's kmeans2, best of n_init
seeded starts, labels ordered) and block means of matrices."""

from __future__ import annotations

import numpy as np
from scipy.cluster.vq import ClusterError, kmeans2

__all__ = ["normalize_blocks", "kmeans", "kmeans_labels", "block_means", "block_stats"]


def normalize_blocks(x: np.ndarray, blocks: np.ndarray) -> np.ndarray:
    """Scale each block of feature columns of x (N, F) to unit mean squared norm per neuron.

    Blocks (e.g. all u loadings, all B columns) then weigh equally whatever their units, while
    the relative weights inside a block are kept. NaN features become 0.
    """
    x = np.nan_to_num(np.asarray(x, dtype=np.float64), nan=0.0)
    out = np.empty_like(x)
    blocks = np.asarray(blocks)
    for b in np.unique(blocks):
        sel = blocks == b
        scale = np.sqrt(np.mean(np.sum(x[:, sel] ** 2, axis=1)))
        out[:, sel] = x[:, sel] / scale if scale > 0 else 0.0
    return out


def kmeans(
    x: np.ndarray, k: int, seed: int = 0, n_init: int = 10, max_iter: int = 100
) -> np.ndarray:
    """Deterministic k-means (k-means++ init, best of n_init) of the rows of x (N, F).

    Labels are renumbered so that cluster 0 has the largest centroid in the first feature
    (ties: first appearance), making labels comparable across seeds.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"kmeans needs a 2-D (N, F) array, got shape {x.shape}")
    if not 1 <= k <= len(x):
        raise ValueError(f"k must be between 1 and the number of neurons {len(x)}, got {k}")
    rng = np.random.default_rng(seed)
    best, best_inertia = None, np.inf
    for _ in range(n_init):
        try:  # scipy's k-means++ and Lloyd iterations; a run that empties a cluster is dropped
            centers, labels = kmeans2(x, k, iter=max_iter, minit="++", missing="raise", seed=rng)
        except ClusterError:
            continue
        inertia = float(np.sum((x - centers[labels]) ** 2))
        if inertia < best_inertia:
            best, best_inertia = labels, inertia
    if best is None:  # every start emptied a cluster (duplicate points): one label per group
        best = np.minimum(np.unique(x, axis=0, return_inverse=True)[1].ravel(), k - 1)
    key = np.array([x[best == c, 0].mean() if x.shape[1] else 0.0 for c in range(k)])
    first = np.array([np.flatnonzero(best == c)[0] for c in range(k)])
    order = np.lexsort((first, -key))
    rank = np.empty(k, dtype=np.int64)
    rank[order] = np.arange(k)
    return rank[best]


def kmeans_labels(
    features: np.ndarray, blocks: np.ndarray, k: int, seed: int = 0, n_init: int = 10
) -> np.ndarray:
    """Labels (..., N) from features (..., N, F) with block ids (F,): one k-means per batch."""
    features = np.asarray(features)
    lead = features.shape[:-2]
    flat = features.reshape((-1,) + features.shape[-2:])
    out = np.empty(flat.shape[:2], dtype=np.int64)
    for i, f in enumerate(flat):
        out[i] = kmeans(normalize_blocks(f, blocks), k, seed=seed, n_init=n_init)
    return out.reshape(lead + features.shape[-2:-1])


def block_means(mat: np.ndarray, rows: np.ndarray, cols: np.ndarray, k: int) -> np.ndarray:
    """Mean of mat (..., N, P) over each block (row cluster a, column cluster b) -> (..., k, k).

    rows (..., N) and cols (..., P) hold labels in 0..k-1 and broadcast against mat; an empty
    block gives NaN.
    """
    mat = np.asarray(mat)
    onehot_r = (np.asarray(rows)[..., :, None] == np.arange(k)).astype(np.float64)
    onehot_c = (np.asarray(cols)[..., :, None] == np.arange(k)).astype(np.float64)
    sums = np.swapaxes(onehot_r, -1, -2) @ mat @ onehot_c
    counts = onehot_r.sum(axis=-2)[..., :, None] * onehot_c.sum(axis=-2)[..., None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, np.nan)


def block_stats(
    stored: np.ndarray, j0: np.ndarray, labels: np.ndarray, k: int, stored_is_dj: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Block means of J and dJ (..., k, k) from the stored matrix (dJ or J) and J0.

    Block means are linear, so block(J) = block(dJ) + block(J0) needs no full J or dJ.
    labels (..., N) cluster rows and columns alike.
    """
    b_stored = block_means(stored, labels, labels, k)
    b_j0 = block_means(j0, labels, labels, k)
    if stored_is_dj:
        return b_stored + b_j0, b_stored
    return b_stored, b_stored - b_j0
