"""Where a run writes: the archive, its `.partial`, its checkpoint and its lock, and the checks
made before anything is created (unwritable place, existing files, disk space, a second writer).
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import tempfile
from pathlib import Path

from rnnlab.errors import ArchiveError, RnnlabError

PARTIAL_SUFFIX = ".partial"
CHECKPOINT_SUFFIX = ".ckpt"
LOCK_SUFFIX = ".lock"


def partial_path(path: Path) -> Path:
    """runs/x.nc -> runs/x.nc.partial: the archive while its run is unfinished."""
    return path.with_name(path.name + PARTIAL_SUFFIX)


def checkpoint_path(path: Path) -> Path:
    """runs/x.nc -> runs/x.nc.ckpt: trainer state at the last commit, for --resume."""
    return path.with_name(path.name + CHECKPOINT_SUFFIX)


def lock_path(path: Path) -> Path:
    """runs/x.nc -> runs/x.nc.lock: held by the one run writing runs/x.nc."""
    return path.with_name(path.name + LOCK_SUFFIX)


def final_path(path: str | Path) -> Path:
    """The archive's final name, given it or its `.partial`."""
    path = Path(path)
    if path.name.endswith(PARTIAL_SUFFIX):
        return path.with_name(path.name.removesuffix(PARTIAL_SUFFIX))
    return path


def check_output_path(
    path: str | Path, overwrite: bool, resume: bool = False, *, locked: bool = False
) -> Path:
    """Refuse an output another run is writing, an existing archive or unfinished run (unless
    asked), or an unwritable place, touching nothing. `locked`: this process holds the lock."""
    path = Path(path)
    if path.is_dir():
        raise ArchiveError(f"output path {path} is a directory; give a file name like runs/x.nc")
    blocked = unwritable_ancestor(path.parent)
    if blocked is not None:
        raise ArchiveError(f"cannot write archive {path}: {blocked} is not a writable directory")
    partial = partial_path(path)
    holder = None if locked else lock_holder(path)
    if holder is not None:
        who = f" (pid {holder})" if holder > 0 else ""
        raise ArchiveError(
            f"another rnnlab run{who} is writing {path}; wait for it to finish or choose another -o"
        )
    if not overwrite and not resume:
        if path.exists():
            raise ArchiveError(f"archive {path} already exists; pass --overwrite to replace it")
        if partial.exists():
            raise ArchiveError(
                f"{partial} holds an unfinished run; continue it with --resume {partial} "
                "or start over with --overwrite"
            )
    for existing in (path, partial):
        if existing.exists() and not os.access(existing, os.W_OK):
            raise ArchiveError(f"cannot replace {existing}: it is not writable")
    return path


REPORT_FILES = ("report.html", "summary.md", "analysis.nc")


def check_report_dir(outdir: Path, overwrite: bool) -> None:
    """Refuse to mix a new report into an existing one unless asked, or an unwritable place."""
    if outdir.exists() and not outdir.is_dir():
        raise RnnlabError(f"output {outdir} exists and is not a directory")
    if outdir.is_dir() and not overwrite:
        clash = [name for name in REPORT_FILES if (outdir / name).exists()]
        if clash:
            raise RnnlabError(f"{outdir} already holds a report ({clash[0]}); pass --overwrite")
    blocked = unwritable_ancestor(outdir)
    if blocked is not None:
        raise RnnlabError(f"cannot write report to {outdir}: {blocked} is not a writable directory")


def unwritable_ancestor(directory: Path) -> Path | None:
    """The nearest existing ancestor of `directory` (itself included) if files cannot be created
    there, else None: what would stop `mkdir -p directory` and a file in it."""
    ancestor = directory.resolve()
    while not ancestor.exists():
        ancestor = ancestor.parent
    return None if ancestor.is_dir() and can_create_in(ancestor) else ancestor


def can_create_in(directory: Path) -> bool:
    """Probe by creating (and at once removing) a file: os.access lies for root and for /proc."""
    try:
        with tempfile.TemporaryFile(dir=directory):
            return True
    except OSError:
        return False


def megabytes(n: float) -> str:
    """A byte count for messages: '15.3 MB'."""
    return f"{n / 1e6:.1f} MB" if n < 1e9 else f"{n / 1e9:.2f} GB"


def human_bytes(n: float) -> str:
    """12.3 GB style (decimal units)."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000:
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return f"{n:.1f} EB"


def check_disk_space(path: Path, needed: int) -> None:
    """Refuse before creating anything when the file system of `path` cannot hold `needed`
    bytes (with 1% + 1 MB to spare): one line naming the path and both sizes."""
    ancestor = path.parent.resolve()
    while not ancestor.exists():
        ancestor = ancestor.parent
    free = shutil.disk_usage(ancestor).free
    if needed * 1.01 + 2**20 > free:
        raise ArchiveError(disk_full_message(path, needed, free))


def disk_full_message(path: Path, needed: int, free: int | None = None) -> str:
    """'not enough disk space for PATH: needs X, Y free' (free read now when not given)."""
    if free is None:
        ancestor = path.parent.resolve()
        while not ancestor.exists():
            ancestor = ancestor.parent
        free = shutil.disk_usage(ancestor).free
    return (
        f"not enough disk space for {path}: it needs {megabytes(needed)}, "
        f"{megabytes(free)} free on {path.parent}"
    )


def is_disk_full(exc: BaseException) -> bool:
    """Whether an exception (OSError, or netCDF's RuntimeError that lost errno) means a full
    disk or quota."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc)
    return "No space left" in text or "Disk quota" in text


class OutputLock:
    """An exclusive `flock` on PATH.lock for as long as one run writes PATH.

    The kernel drops it when the process dies (even by SIGKILL), so a killed run never leaves a
    stale lock; the file holds the writer's pid for the message a second writer gets.
    """

    def __init__(self, path: Path) -> None:
        self.path = lock_path(path)
        self.target = path
        self.fd: int | None = None

    def acquire(self) -> OutputLock:
        """Take the lock or raise ArchiveError naming the run that holds it."""
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_pid(fd)
                os.close(fd)
                who = f" (pid {holder})" if holder else ""
                raise ArchiveError(
                    f"another rnnlab run{who} is writing {self.target}; wait for it to finish "
                    "or choose another -o"
                ) from None
            # the holder may have unlinked the file between our open and our lock: retry then
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                self.fd = fd
                return self
            os.close(fd)

    def release(self) -> None:
        """Remove the lock file and drop the lock (unlink first: a waiter then retries)."""
        if self.fd is None:
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_holder(path: Path) -> int | None:
    """The pid of the run writing `path` now, or None when no run holds its lock."""
    lock = lock_path(path)
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:  # no lock file, or no such directory
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_pid(fd) or -1
    finally:
        os.close(fd)
    return None


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip() or 0) or None
    except (OSError, ValueError):
        return None
