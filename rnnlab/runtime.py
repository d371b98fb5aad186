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

Worker exit: a worker process that has trained (torch, numba, netCDF loaded) spent about a second
in the interpreter's final garbage collection, long enough on two busy cores for the nanny to
report "Worker process still alive after 4.0 seconds, killing" at the end of every sweep. The
WorkerSetupPlugin freezes the garbage collector at exit (atexit -> gc.freeze(): measured 1.1 s ->
0.2 s of teardown), and pins each worker of a local cluster to one GPU when tasks ask for GPUs.

Garbage collection (`fewer_collections`, around `rnnlab analyze`): Python's default thresholds,
(700, 10, 10), start a young collection every 700 new container objects, and HoloViews, bokeh,
xarray and dask allocate millions; each older collection also walks what torch and the plotting
libraries left behind. With (10000, 50, 100) the default run's analyses took ~0.3 s less in the
parent (base 1.8 -> 1.7 s, network 3.4 -> 3.1 s; 3 interleaved pairs) and its figures ~0.3 s
less in the plotting processes (drawing both groups in one process: 4.6 -> 4.3 s, 3 pairs);
gc.disable() gained no more. The outputs are the same; the garbage of reference cycles lives a
little longer (the default run's peak memory did not change: 510 MB in the parent, 223 MB in the
plotting processes, ru_maxrss).

HDF5 file locking is switched off when rnnlab is imported (rnnlab/__init__.py: HDF5 reads the
variable once, at start), so readers can open an archive while its run writes it.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import gc
import logging
import os
import signal
import sys
from collections.abc import Iterator
from typing import Any

from rnnlab.errors import AnalysisError

__all__ = [
    "CHUNK_CACHE_BYTES",
    "GC_THRESHOLDS",
    "blas_env",
    "fewer_collections",
    "limit_blas_threads",
    "make_client",
    "no_client_lookup",
    "set_blas_threads",
    "set_chunk_cache",
]

CHUNK_CACHE_BYTES = 4 * 2**20
GC_THRESHOLDS = (10_000, 50, 100)


@contextlib.contextmanager
def fewer_collections(thresholds: tuple[int, int, int] = GC_THRESHOLDS) -> Iterator[None]:
    """Run the block with the garbage collector's `thresholds` (processes forked inside it keep
    them), then restore the previous ones."""
    before = gc.get_threshold()
    gc.set_threshold(*thresholds)
    try:
        yield
    finally:
        gc.set_threshold(*before)


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


def no_client_lookup() -> contextlib.AbstractContextManager:
    """A block in which dask does not import `distributed` (0.1-0.2 s) only to look for a client:
    while it is not imported there can be none. dask looks when it computes on its default
    scheduler and when a rechunk picks its method; here the local answers are set instead (the
    threaded scheduler, the "tasks" method). Anything already set in dask's config, or an
    imported `distributed`, leaves dask its own choice."""
    import dask
    from dask.base import named_schedulers

    if "distributed" in sys.modules:
        return contextlib.nullcontext()
    # the scheduler function itself: given a name, dask looks for a client first
    local = {"scheduler": named_schedulers["threads"], "array.rechunk.method": "tasks"}
    unset = {k: v for k, v in local.items() if dask.config.get(k, None) is None}
    return dask.config.set(unset) if unset else contextlib.nullcontext()


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


def _setup_plugin_class() -> type:
    """WorkerSetupPlugin, built on first use."""
    from distributed import WorkerPlugin

    class WorkerSetupPlugin(WorkerPlugin):
        """A quick exit for every worker; for the workers of a local cluster (`local`): Ctrl-C
        left to the parent process, which closes the cluster (a terminal sends SIGINT to the
        whole process group), and with `gpus` CUDA_VISIBLE_DEVICES set to one of them by the
        worker's number (worker k gets gpus[k % len(gpus)]) before torch starts."""

        name = "rnnlab-worker-setup"

        def __init__(
            self, gpus: list[str] | None = None, local: bool = False, quiet_failures: bool = False
        ):
            self.gpus = list(gpus or [])
            self.local = local
            self.quiet_failures = quiet_failures

        def setup(self, worker: Any) -> None:
            atexit.register(gc.freeze)  # skip the final collection of a big heap (see above)
            if self.quiet_failures:  # the client reports each failed task in one line
                logging.getLogger("distributed.worker").addFilter(_no_compute_failed)
            if self.local:
                with contextlib.suppress(ValueError):  # (only possible in the main thread)
                    signal.signal(signal.SIGINT, signal.SIG_IGN)
            if self.gpus:
                gpu = self.gpus[worker_number(worker) % len(self.gpus)]
                os.environ["CUDA_VISIBLE_DEVICES"] = gpu

        def teardown(self, worker: Any) -> None:
            """Unregistered (a sweep leaving a shared cluster): its workers log as before."""
            logging.getLogger("distributed.worker").removeFilter(_no_compute_failed)

    return WorkerSetupPlugin


def _no_compute_failed(record: logging.LogRecord) -> bool:
    """A logging filter dropping distributed's "Compute Failed" task tracebacks."""
    return not str(record.msg).startswith("Compute Failed")


def worker_number(worker: Any) -> int:
    """A local worker's number (LocalCluster names its workers 0, 1, ...), else from its
    address."""
    name = getattr(worker, "name", None)
    try:
        return int(name)
    except (TypeError, ValueError):
        return sum(str(getattr(worker, "address", name)).encode())


def visible_gpus() -> list[str]:
    """The GPUs this process may use: CUDA_VISIBLE_DEVICES when set, else torch's count."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g.strip() for g in env.split(",") if g.strip()]
    try:
        import torch
    except ImportError:
        return []
    return [str(i) for i in range(torch.cuda.device_count())]


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
    n_workers: int | None = None,
    threads_per_worker: int = 1,
    memory_limit: str | float | None = "auto",
    chunk_cache: int = CHUNK_CACHE_BYTES,
    resources: dict[str, float] | None = None,
    gpus: list[str] | None = None,
    quiet_failures: bool = False,
    **kwargs: Any,
):
    """A distributed Client: None/"local" -> LocalCluster (worker processes), "slurm" ->
    dask_jobqueue.SLURMCluster(**kwargs) scaled to n_workers, else the scheduler at `address`.
    `n_workers` None: as many as the visible GPUs allow for a local cluster whose `resources`
    have "GPU" (each worker taking resources["GPU"] of them), else 2.

    Every worker gets the small chunk cache and a quick exit (worker plugins, so late workers
    too). `resources` ({"GPU": 1}): what each worker of a local cluster offers (dask worker
    resources), and on SLURM what each worker is started with; a scheduler at an address has
    its own workers. `gpus` (local cluster): worker k sees only gpus[k % len(gpus)] (default:
    every visible GPU when `resources` has "GPU"). `quiet_failures`: workers do not log the
    traceback of a failed task (for callers that report failures themselves).
    """
    from distributed import Client, LocalCluster

    local = address in (None, "local")
    local_gpus = local and bool(resources) and "GPU" in resources
    if local_gpus and gpus is None:
        gpus = visible_gpus()
    if n_workers is None:  # a local GPU cluster: one worker per share of the visible GPUs
        n_workers = max(1, len(gpus) // max(1, int(resources["GPU"]))) if local_gpus else 2
    if local:
        cluster = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=threads_per_worker,
            processes=True,
            memory_limit=memory_limit,
            dashboard_address=kwargs.pop("dashboard_address", None),
            resources=resources,
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
        if resources:  # each worker offers them (a GPU job: add --gres=gpu:1 yourself)
            extra = list(kwargs.pop("worker_extra_args", []))
            extra += ["--resources", ",".join(f"{k}={v:g}" for k, v in resources.items())]
            kwargs["worker_extra_args"] = extra
        cluster = SLURMCluster(**kwargs)
        cluster.scale(n_workers)
        client = Client(cluster)
    elif is_address(address):
        client = Client(address, **kwargs)
    else:
        raise AnalysisError(f"address must be None, 'local', 'slurm' or a URL, got {address!r}")
    register_chunk_cache(client, chunk_cache)
    plugin = _setup_plugin_class()
    setup = plugin(gpus if local else None, local, quiet_failures)
    client.register_plugin(setup, name=plugin.name)
    return client
