"""Process-wide policy in one place: BLAS threads, netCDF's chunk cache, HDF5 file locking and the
dask.distributed client (LocalCluster, a scheduler address or SLURM) with its worker plugin.

BLAS threads (dask tasks, the archive writer thread): no oversubscription. Measured here (2 cores,
busy): a 500x500 SVD took 0.53 s with OpenBLAS's default 2 threads and 0.18 s with 1, because
parallel dask tasks and BLAS threads fight for the same cores. NumPy has no API for this, so the
OpenBLAS copies already loaded in this process are found in /proc/self/maps and their
`*set_num_threads*` entry points called through ctypes (what threadpoolctl does; not a dependency
here). Anything not found is silently left alone.

Chunk cache: netCDF-C keeps a 64 MiB chunk cache per variable per open file; on a lazy pass over
chunked archives that cache, not the data, set the peak memory. It is a per-process setting read
when a file is opened, so it is set in this process, in every process-pool worker and on every
distributed worker (ChunkCachePlugin) before any of them opens a file.

HDF5 file locking is switched off when rnnlab is imported (rnnlab/__init__.py: HDF5 reads the
variable once, at start), so readers can open an archive while its run writes it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterator
from typing import Any

from rnnlab.errors import AnalysisError

__all__ = [
    "CHUNK_CACHE_BYTES",
    "blas_env",
    "limit_blas_threads",
    "make_client",
    "set_blas_threads",
    "set_chunk_cache",
]

CHUNK_CACHE_BYTES = 4 * 2**20

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


def set_chunk_cache(size: int = CHUNK_CACHE_BYTES, nelems: int = 61) -> None:
    """Set netCDF-C's default per-variable chunk cache of this process (files opened later)."""
    import netCDF4

    netCDF4.set_chunk_cache(size=size, nelems=nelems)


def _plugin_class() -> type:
    """ChunkCachePlugin, built on first use (distributed is imported only by cluster users)."""
    from distributed import WorkerPlugin

    class ChunkCachePlugin(WorkerPlugin):
        """Set the chunk cache on every worker as it starts (and on running ones when
        registered)."""

        name = "rnnlab-chunk-cache"

        def __init__(self, size: int = CHUNK_CACHE_BYTES):
            self.size = size

        def setup(self, worker: Any) -> None:
            set_chunk_cache(self.size)

    return ChunkCachePlugin


def __getattr__(name: str) -> Any:
    if name == "ChunkCachePlugin":
        return _plugin_class()
    raise AttributeError(f"module 'rnnlab.runtime' has no attribute {name!r}")


def register_chunk_cache(client: Any, size: int = CHUNK_CACHE_BYTES) -> None:
    """Register the chunk-cache worker plugin (idempotent: the same name replaces it)."""
    plugin = _plugin_class()
    client.register_plugin(plugin(size), name=plugin.name)


def is_address(obj: Any) -> bool:
    """Whether obj looks like a scheduler address ("tcp://host:8786", "host:8786")."""
    return isinstance(obj, str) and ("://" in obj or ":" in obj)


def make_client(
    address: str | None = None,
    *,
    n_workers: int = 2,
    threads_per_worker: int = 1,
    memory_limit: str | float | None = "auto",
    chunk_cache: int = CHUNK_CACHE_BYTES,
    **kwargs: Any,
):
    """A distributed Client: None/"local" -> LocalCluster (worker processes), "slurm" ->
    dask_jobqueue.SLURMCluster(**kwargs) scaled to n_workers, else the scheduler at `address`.

    Every worker gets the small chunk cache (a worker plugin, so late workers too).
    """
    from distributed import Client, LocalCluster

    if address in (None, "local"):
        cluster = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=threads_per_worker,
            processes=True,
            memory_limit=memory_limit,
            dashboard_address=kwargs.pop("dashboard_address", None),
            **kwargs,
        )
        client = Client(cluster)
    elif address == "slurm":
        try:
            from dask_jobqueue import SLURMCluster
        except ImportError:
            raise AnalysisError(
                "address='slurm' needs dask-jobqueue (pip install dask-jobqueue)"
            ) from None
        cluster = SLURMCluster(**kwargs)
        cluster.scale(n_workers)
        client = Client(cluster)
    elif is_address(address):
        client = Client(address, **kwargs)
    else:
        raise AnalysisError(f"address must be None, 'local', 'slurm' or a URL, got {address!r}")
    register_chunk_cache(client, chunk_cache)
    return client
