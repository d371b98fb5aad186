"""Forked helper processes of `rnnlab analyze` (report/workers.py, report/background.py): whether a
fork is safe here, a child in a process group of its own that runs one function and leaves
without the parent's exit handlers, and ending such a group."""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from typing import NoReturn

__all__ = ["end_group", "fork_group", "fork_safe", "run_child"]


def fork_safe() -> bool:
    """Whether this process may fork: POSIX, and no other thread running (a fork copies the
    locks they hold)."""
    return hasattr(os, "fork") and threading.active_count() == 1


def run_child(main: Callable, *args) -> NoReturn:
    """Run main(*args) in a forked child and leave without the parent's exit handlers."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and kills us
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler (`rnnlab run`)
        main(*args)
    except (EOFError, ConnectionError):  # the parent has gone: nothing to say, nobody to say it
        code = 1
    except BaseException:  # noqa: BLE001 (anything: the child must not return into the parent)
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def fork_group(main: Callable, *args, close: tuple = ()) -> int:
    """Fork a child that leads a process group of its own, closes `close` (the parent's ends of
    its pipes) and runs main(*args) (`run_child`); its pid, which is also its group's id."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.setpgid(0, 0)  # (also set from the parent below: whichever runs first)
        for end in close:
            end.close()
        run_child(main, *args)
    try:
        os.setpgid(pid, pid)
    except OSError:  # the child set it already, or has exited
        pass
    return pid


def end_group(pid: int) -> None:
    """Kill the process group `pid` at once, whatever it is doing, and reap its leader."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
