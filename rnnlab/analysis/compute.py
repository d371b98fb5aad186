"""Compute lazy analysis results on a chosen dask scheduler, with a small netCDF chunk cache.

netCDF-C keeps a 64 MiB chunk cache per variable per open file; on a lazy pass over an archive
that cache, not the data, set the peak memory. It is a per-process setting read when a file is
opened, so it is set here in this process, in every process-pool worker (initializer) and on
every distributed worker (a worker plugin), before any of them opens a file. Local schedulers
also run with one OpenBLAS thread per task (see rnnlab.blas); distributed's nanny already does that.
"""

from __future__ import annotations

import contextlib
from typing import Any

import dask
import netCDF4

from rnnlab.analysis._common import AnalysisError
from rnnlab.blas import blas_env, limit_blas_threads, set_blas_threads

__all__ = ["CHUNK_CACHE_BYTES", "set_chunk_cache", "compute", "make_client"]

CHUNK_CACHE_BYTES = 4 * 2**20
LOCAL = ("threads", "threading", "processes", "multiprocessing", "sync", "synchronous")


def set_chunk_cache(size: int = CHUNK_CACHE_BYTES, nelems: int = 61) -> None:
    """Set netCDF-C's default per-variable chunk cache of this process (files opened later)."""
    netCDF4.set_chunk_cache(size=size, nelems=nelems)


def _register(client: Any, size: int) -> None:
    """Register the chunk-cache worker plugin (idempotent: same name replaces it)."""
    from rnnlab.analysis._plugin import ChunkCachePlugin

    client.register_plugin(ChunkCachePlugin(size), name=ChunkCachePlugin.name)


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
    elif _is_address(address):
        client = Client(address, **kwargs)
    else:
        raise AnalysisError(f"address must be None, 'local', 'slurm' or a URL, got {address!r}")
    _register(client, chunk_cache)
    return client


def _compute_distributed(obj: Any, scheduler: Any, progress: bool, chunk_cache: int) -> Any:
    from distributed import Client, get_client
    from distributed import progress as dist_progress

    own = None
    if isinstance(scheduler, Client):
        client = scheduler
    elif scheduler == "distributed":
        try:
            client = get_client()
        except ValueError:
            client = own = make_client(chunk_cache=chunk_cache)
    else:
        client = own = Client(scheduler)
    try:
        _register(client, chunk_cache)
        future = client.compute(obj)
        if progress:
            dist_progress(future)
        return future.result()
    finally:
        if own is not None:
            cluster = own.cluster
            own.close()
            if cluster is not None:
                cluster.close()


def compute(
    obj: Any,
    scheduler: Any = "threads",
    progress: bool = True,
    *,
    num_workers: int | None = None,
    chunk_cache: int = CHUNK_CACHE_BYTES,
) -> Any:
    """Compute a lazy xarray/dask object and return the in-memory result.

    scheduler: "threads", "processes", "sync", "distributed" (the current client, else a new
    LocalCluster that is closed afterwards), a scheduler address ("tcp://host:8786") or a Client.
    progress shows dask's ProgressBar locally, distributed's progress bar for a cluster.
    """
    if not dask.is_dask_collection(obj):
        return obj.compute() if hasattr(obj, "compute") else obj
    set_chunk_cache(chunk_cache)
    if isinstance(scheduler, str) and scheduler in LOCAL:
        kwargs: dict[str, Any] = {"scheduler": scheduler}
        if num_workers is not None:
            kwargs["num_workers"] = num_workers
        if scheduler in ("processes", "multiprocessing"):
            kwargs["initializer"] = _ProcessInit(chunk_cache)
        with contextlib.ExitStack() as stack:
            if scheduler not in ("sync", "synchronous"):
                # one BLAS thread per task: parallel tasks already fill the cores
                stack.enter_context(limit_blas_threads(1))
                stack.enter_context(blas_env(1))  # for worker processes started now
            if progress:
                from dask.diagnostics import ProgressBar

                stack.enter_context(ProgressBar())
            return obj.compute(**kwargs)
    if scheduler == "distributed" or _is_address(scheduler) or _is_client(scheduler):
        return _compute_distributed(obj, scheduler, progress, chunk_cache)
    raise AnalysisError(
        f"scheduler must be one of {LOCAL}, 'distributed', an address or a Client, "
        f"got {scheduler!r}"
    )


def _is_address(obj: Any) -> bool:
    return isinstance(obj, str) and ("://" in obj or ":" in obj)


def _is_client(obj: Any) -> bool:
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - distributed is a dependency
        return False
    return isinstance(obj, Client)


class _ProcessInit:
    """Picklable initializer of process-pool workers: set the chunk cache."""

    def __init__(self, size: int):
        self.size = size

    def __call__(self) -> None:
        set_chunk_cache(self.size)
        set_blas_threads(1)  # for the life of the worker process
