"""A lazy result computed in a forked process while this one goes on: `rnnlab analyze` computes the
network analyses (torch, the re-simulations, the fixed points) this way while it computes the
others and the plotting processes draw, so that they no longer wait for each other on one core.

`Background.start(lazy, scheduler)` forks once the graph is built (no thread may run then: a
fork copies held locks), so the child inherits the graph and the opened archive; it computes
the graph with the same local scheduler and sends the result back, pickled, through a pipe.
`Background.fork(scheduler, imports)` forks before the work is known, so the child imports what
it will need (`rnnlab analyze`: torch and the compiled kernels, ~1.2 s) while this process opens
the archives and builds the graph; `submit(lazy)` then sends it the graph, pickled (its archives
are opened again there, as on a dask worker). `rnnlab analyze` of the default run (16
interleaved rounds, 2 busy cores): 6.55 -> 6.38 s median, faster in 12 of 16 rounds.

Its progress (tasks done of all) goes through a small shared memory block, so a child that
runs ahead never blocks on a parent that is busy; `result()` shows it as dask's ProgressBar does
while it waits. An exception in the child is raised again here; a child that dies is a
ReportError. The child is in its own process group and is killed when the parent leaves early.
"""

from __future__ import annotations

import mmap
import pickle
import struct
import time
import traceback
from importlib import import_module
from multiprocessing.connection import Pipe
from typing import Any

from rnnlab.analysis.report.forks import end_group, fork_group, fork_safe
from rnnlab.errors import ReportError

__all__ = ["Background"]

LOCAL_IN_PROCESS = ("threads", "threading", "sync", "synchronous")
_COUNTS = struct.Struct("qq")  # tasks done, tasks in all
_DIED = "the process computing the network analyses ended unexpectedly"


def _progress_callback(shared: mmap.mmap):
    """A dask callback that writes (done, total) into `shared` after every task."""
    from dask.callbacks import Callback

    class SharedProgress(Callback):
        def _start_state(self, dsk, state):
            self.done = len(state["finished"])
            self.total = self.done + sum(len(state[k]) for k in ("ready", "waiting", "running"))
            shared[:] = _COUNTS.pack(self.done, self.total)

        def _posttask(self, key, result, dsk, state, worker_id):
            self.done += 1
            shared[:] = _COUNTS.pack(self.done, self.total)

    return SharedProgress()


def _child(
    scheduler: str, conn, shared: mmap.mmap, imports: tuple[str, ...] = (), lazy: Any = None
) -> None:
    """The child: import `imports`, take `lazy` (None: its pickle, once `submit` sends it),
    compute it and send back the result, or the exception that the imports or it raised."""
    from rnnlab.analysis.compute import compute

    failed = None
    try:
        for name in imports:
            import_module(name)
    except BaseException as err:  # noqa: BLE001 (raised once the work arrives; it would fail too)
        failed = err
    payload = conn.recv_bytes() if lazy is None else None  # EOFError: the parent went on
    try:
        if failed is not None:
            raise failed
        if payload is not None:
            lazy = pickle.loads(payload)
        with _progress_callback(shared):
            result = compute(lazy, scheduler=scheduler, progress=False)
        message = pickle.dumps(("ok", result), protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException as err:  # noqa: BLE001 (anything: reported to the parent, which raises it)
        try:
            message = pickle.dumps(("error", err))
            pickle.loads(message)  # an exception that cannot be rebuilt goes as text
        except Exception:
            message = pickle.dumps(("text", traceback.format_exc()))
    conn.send_bytes(message)


def _forkable(scheduler: Any) -> bool:
    return isinstance(scheduler, str) and scheduler in LOCAL_IN_PROCESS and fork_safe()


def _shared_counts() -> mmap.mmap:
    shared = mmap.mmap(-1, _COUNTS.size)
    shared[:] = _COUNTS.pack(0, 0)
    return shared


def _bar(done: int, total: int, elapsed: float, width: int = 40) -> str:
    """One line of dask's ProgressBar."""
    from dask.utils import format_time

    frac = done / total if total else 0.0  # (0, 0): not started yet
    return f"\r[{'#' * int(width * frac):<{width}}] | {int(100 * frac)}% Completed | " + (
        format_time(elapsed)
    )


class Background:
    """A lazy result being computed in a forked process (`start`); `result()` waits for it."""

    def __init__(self, pid: int, conn, shared: mmap.mmap):
        self.pid = pid
        self.conn = conn
        self.shared = shared

    @classmethod
    def start(cls, lazy: Any, scheduler: Any = "threads") -> Background | None:
        """Fork a process that computes `lazy`, or None where computing it here is the better
        choice: no fork, threads running (a fork copies their held locks), a scheduler that
        is not one of this process's own (processes, a cluster)."""
        if not _forkable(scheduler):
            return None
        shared = _shared_counts()
        receive, send = Pipe(duplex=False)
        pid = fork_group(_child, scheduler, send, shared, (), lazy, close=(receive,))
        send.close()
        return cls(pid, receive, shared)

    @classmethod
    def fork(cls, scheduler: Any = "threads", imports: tuple[str, ...] = ()) -> Background | None:
        """Fork the process before its work is known (`submit` sends it): it imports the modules
        `imports` meanwhile. None where `start` would give None."""
        if not _forkable(scheduler):
            return None
        shared = _shared_counts()
        here, there = Pipe()
        pid = fork_group(_child, scheduler, there, shared, imports, close=(here,))
        there.close()
        return cls(pid, here, shared)

    def submit(self, lazy: Any) -> None:
        """Send the forked process (`fork`) what to compute: `lazy`, pickled (its archives are
        opened again there, as by a dask worker)."""
        try:
            self.conn.send_bytes(pickle.dumps(lazy, protocol=pickle.HIGHEST_PROTOCOL))
        except OSError as err:  # it died while importing
            self.close()
            raise ReportError(_DIED) from err

    def progress(self) -> tuple[int, int]:
        """(tasks done, tasks in all) so far; (0, 0) before the computation starts."""
        return _COUNTS.unpack(self.shared[:])

    def result(self, progress: bool = False, interval: float = 0.1) -> Any:
        """The computed result; with `progress`, a progress bar on stdout while waiting."""
        start = time.perf_counter()
        try:
            while not self.conn.poll(interval if progress else None):
                print(_bar(*self.progress(), time.perf_counter() - start), end="", flush=True)
            payload = self.conn.recv_bytes()
        except (EOFError, OSError) as err:
            raise ReportError(_DIED) from err
        finally:
            self.close()  # (it has sent all it will)
        kind, value = pickle.loads(payload)
        if progress:
            total = self.progress()[1]
            print(_bar(total, total, time.perf_counter() - start), flush=True)
        if kind == "error":
            raise value
        if kind == "text":
            raise RuntimeError(f"computing the network analyses failed:\n{value}")
        return value

    def close(self) -> None:
        """End the process, at once if it still runs (the parent is leaving early), and reap it."""
        if self.pid is None:
            return
        self.conn.close()
        end_group(self.pid)
        self.pid = None

    def __enter__(self) -> Background:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
