"""A lazy result computed in a forked process while this one goes on: `rnnlab analyze` computes the
network analyses (torch, the re-simulations, the fixed points) this way while it computes the
others and the plotting processes draw, so that they no longer wait for each other on one core.

`Background.start(lazy, scheduler)` forks right after the analysis graph is built (no thread may
run then: a fork copies held locks), so the child inherits the graph and the opened archive; it
computes the graph with the same local scheduler and sends the result back, pickled, through a
pipe. Its progress (tasks done of all) goes through a small shared memory block, so a child that
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
from multiprocessing.connection import Pipe
from typing import Any

from rnnlab.analysis.report.forks import end_group, fork_group, fork_safe
from rnnlab.errors import ReportError

__all__ = ["Background"]

LOCAL_IN_PROCESS = ("threads", "threading", "sync", "synchronous")
_COUNTS = struct.Struct("qq")  # tasks done, tasks in all


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


def _compute(lazy: Any, scheduler: str, conn, shared: mmap.mmap) -> None:
    """The child: compute `lazy` and send back the result, or the exception it raised."""
    from rnnlab.analysis.compute import compute

    try:
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
        if not isinstance(scheduler, str) or scheduler not in LOCAL_IN_PROCESS or not fork_safe():
            return None
        shared = mmap.mmap(-1, _COUNTS.size)
        shared[:] = _COUNTS.pack(0, 0)
        receive, send = Pipe(duplex=False)
        pid = fork_group(_compute, lazy, scheduler, send, shared, close=(receive,))
        send.close()
        return cls(pid, receive, shared)

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
            raise ReportError(
                "the process computing the network analyses ended unexpectedly"
            ) from err
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
