"""Limit OpenBLAS threads at run time (dask tasks, the archive writer thread): no oversubscription.

Measured here (2 cores, busy): a 500x500 SVD took 0.53 s with OpenBLAS's default 2 threads and
0.18 s with 1, because parallel dask tasks and BLAS threads fight for the same cores. NumPy has
no API for this, so the OpenBLAS copies already loaded in this process are found in
/proc/self/maps and their `*set_num_threads*` entry points called through ctypes (what
threadpoolctl does; not a dependency here). Anything not found is silently left alone.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterator

__all__ = ["blas_threads", "set_blas_threads", "limit_blas_threads", "blas_env"]

_SYMBOLS = (
    "scipy_openblas_{}_num_threads64_",
    "scipy_openblas_{}_num_threads",
    "openblas_{}_num_threads64_",
    "openblas_{}_num_threads",
)


def _libraries() -> list[tuple]:
    """(set, get) function pairs of every OpenBLAS loaded in this process."""
    try:
        with open("/proc/self/maps") as fh:
            paths = {line.split()[-1] for line in fh if "openblas" in line.lower()}
    except OSError:
        return []
    found = []
    for path in sorted(p for p in paths if p.startswith("/")):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for pattern in _SYMBOLS:
            setter = getattr(lib, pattern.format("set"), None)
            getter = getattr(lib, pattern.format("get"), None)
            if setter is not None and getter is not None:
                getter.restype = ctypes.c_int
                found.append((setter, getter))
                break
    return found


def blas_threads() -> list[int]:
    """Current thread count of each loaded OpenBLAS (empty if none is found)."""
    return [int(get()) for _, get in _libraries()]


def set_blas_threads(n: int) -> None:
    """Set the thread count of every loaded OpenBLAS (for the rest of the process)."""
    for setter, _ in _libraries():
        setter(ctypes.c_int(n))


@contextlib.contextmanager
def limit_blas_threads(n: int = 1) -> Iterator[None]:
    """Run the block with at most n OpenBLAS threads, then restore the previous counts."""
    libs = _libraries()
    before = [int(get()) for _, get in libs]
    for setter, _ in libs:
        setter(ctypes.c_int(n))
    try:
        yield
    finally:
        for (setter, _), count in zip(libs, before, strict=True):
            setter(ctypes.c_int(count))


@contextlib.contextmanager
def blas_env(n: int = 1) -> Iterator[None]:
    """Set *_NUM_THREADS=n in os.environ for processes started inside the block."""
    names = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
    old = {k: os.environ.get(k) for k in names}
    os.environ.update({k: str(n) for k in names})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
