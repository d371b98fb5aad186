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
import os
import pickle
import signal
import struct
import sys
import threading
import time
import traceback
from multiprocessing.connection import Pipe
from typing import Any

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


def _child(lazy: Any, scheduler: str, conn, shared: mmap.mmap) -> None:
    from rnnlab.analysis.compute import compute

    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and kills us
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        with _progress_callback(shared):
            result = compute(lazy, scheduler=scheduler, progress=False)
        conn.send_bytes(pickle.dumps(("ok", result), protocol=pickle.HIGHEST_PROTOCOL))
    except BaseException as err:  # noqa: BLE001 (anything: reported to the parent, which raises it)
        try:
            message = pickle.dumps(("error", err))
            pickle.loads(message)  # an exception that cannot be rebuilt goes as text
        except Exception:
            message = pickle.dumps(("text", traceback.format_exc()))
        try:
            conn.send_bytes(message)
        except OSError:
            code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


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
        if not isinstance(scheduler, str) or scheduler not in LOCAL_IN_PROCESS:
            return None
        if not hasattr(os, "fork") or threading.active_count() > 1:
            return None
        shared = mmap.mmap(-1, _COUNTS.size)
        shared[:] = _COUNTS.pack(0, 0)
        receive, send = Pipe(duplex=False)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            os.setpgid(0, 0)
            receive.close()
            _child(lazy, scheduler, send, shared)
        try:
            os.setpgid(pid, pid)
        except OSError:  # the child set it already, or has exited
            pass
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
            self._reap()
        kind, value = pickle.loads(payload)
        if progress:
            total = self.progress()[1]
            print(_bar(total, total, time.perf_counter() - start), flush=True)
        if kind == "error":
            raise value
        if kind == "text":
            raise RuntimeError(f"computing the network analyses failed:\n{value}")
        return value

    def _reap(self) -> None:
        self.conn.close()
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass
        self.pid = None

    def close(self) -> None:
        """Kill the process if it still runs (the parent is leaving early) and reap it."""
        if self.pid is None:
            return
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._reap()

    def __enter__(self) -> Background:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
