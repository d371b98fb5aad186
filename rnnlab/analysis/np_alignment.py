"""NumPy kernels: alignment (|cos|) of low-rank vectors with the task geometry, on the last axes."""

from __future__ import annotations

import numpy as np

__all__ = ["abs_cos", "task_vectors", "alignment"]


def abs_cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|cos| of the angle between a and b on the last axis (broadcasting; NaN for a zero vector)."""
    a = np.asarray(a)
    b = np.asarray(b)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.abs(np.sum(a * b, axis=-1)) / (
            np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
        )


def task_vectors(
    cols: np.ndarray, n_b: int, j0: np.ndarray | None = None, n: int | None = None
) -> np.ndarray:
    """Stack the task vectors (..., V, N) in the order B cols, w cols, ones, J0 B cols, J0^T w cols.

    cols: (..., N, C) with the first n_b columns from B and the rest from w. The J0 terms are
    left out when j0 is None; `n` gives N when there are no columns at all.
    """
    cols = np.asarray(cols)
    n = cols.shape[-2] if n is None else n
    bcols, wcols = cols[..., :n_b], cols[..., n_b:]
    lead = cols.shape[:-2]
    parts = [np.swapaxes(cols, -1, -2), np.ones(lead + (1, n), dtype=cols.dtype)]
    if j0 is not None:
        j0 = np.asarray(j0)
        parts.append(np.swapaxes(j0 @ bcols, -1, -2))
        parts.append(np.swapaxes(np.swapaxes(j0, -1, -2) @ wcols, -1, -2))
    shape = np.broadcast_shapes(*(q.shape[:-2] for q in parts))
    return np.concatenate([np.broadcast_to(q, shape + q.shape[-2:]) for q in parts], axis=-2)


def alignment(u: np.ndarray, v: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """|cos| of each u_r, v_r (..., R, N) with each task vector (..., V, N) -> two (..., R, V)."""
    vectors = np.asarray(vectors)[..., None, :, :]
    return abs_cos(np.asarray(u)[..., :, None, :], vectors), abs_cos(
        np.asarray(v)[..., :, None, :], vectors
    )
