"""Compute lazy analysis results on a chosen dask scheduler, with a small netCDF chunk cache in
this process, every process-pool worker and every distributed worker, and one OpenBLAS thread per
task (the policies themselves: rnnlab.runtime).
"""

from __future__ import annotations

import contextlib
from typing import Any

import dask
from dask.base import named_schedulers

from rnnlab.analysis._common import AnalysisError
from rnnlab.runtime import (
    CHUNK_CACHE_BYTES,
    blas_env,
    is_address,
    limit_blas_threads,
    make_client,
    register_chunk_cache,
    set_blas_threads,
    set_chunk_cache,
)

__all__ = ["CHUNK_CACHE_BYTES", "set_chunk_cache", "compute", "make_client"]

LOCAL = ("threads", "threading", "processes", "multiprocessing", "sync", "synchronous")


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
        register_chunk_cache(client, chunk_cache)
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
        # dask's own function for the name: given a name, dask imports distributed (0.2 s) to
        # look for a client first, which a named local scheduler does not use
        kwargs: dict[str, Any] = {"scheduler": named_schedulers[scheduler]}
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
    if scheduler == "distributed" or is_address(scheduler) or _is_client(scheduler):
        return _compute_distributed(obj, scheduler, progress, chunk_cache)
    raise AnalysisError(
        f"scheduler must be one of {LOCAL}, 'distributed', an address or a Client, "
        f"got {scheduler!r}"
    )


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
