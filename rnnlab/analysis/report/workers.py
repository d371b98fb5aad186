"""Two plotting processes for `rnnlab analyze`: they import the plotting stack while the analyses
compute, then render the two halves of the report's figures at once.

Building the figures is pure Python under the GIL (HoloViews and bokeh: ~5 s for the default run,
plus ~1.6 s to import them), so threads cannot share it; processes can. `RenderWorkers.start()`
forks one process before anything is computed; it imports HoloViews, bokeh (and matplotlib for
the PNGs), then forks the second, which inherits those imports. `early()` sends both the results
without the network analyses (`analyze_in_steps`) as soon as they are computed: each draws the
figures of its group that do not show those (`build.GroupRenderer`) while the parent computes
them. `submit()` sends the final inputs (small, loaded datasets: `inputs.report_inputs`); each
draws the rest, the first also writes the PNGs and then the page from both parts, and
`collect()` waits for the files (`write()`: both). The files are
those `build.write_report` writes in one process (the page's figures and ids alike; tested).

The plotting processes run at a lower priority (`NICENESS`) than the parent, which computes
the analyses they wait for.

Where a fork is unsafe or pointless (no `os.fork`, threads running, one usable core),
`start()` returns None and the caller renders in-process. The processes form their own process
group: a Ctrl-C in the terminal reaches only the parent, which kills the group on the way out.
"""

from __future__ import annotations

import gc
import os
import pickle
import traceback
from multiprocessing.connection import Connection, Pipe
from pathlib import Path
from typing import TYPE_CHECKING

from rnnlab.analysis.report.forks import end_group, fork_group, fork_safe, run_child
from rnnlab.errors import ReportError

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["NICENESS", "RenderWorkers", "usable_cores"]

# The plotting processes yield the CPU to the parent: its analyses come first on the way to the
# report (the network analyses, the last of them, are the longest step), and the figures that
# wait for them are few. At equal priority the three processes shared the two cores and the
# network analyses ended last; so the default run's `analyze` took 8.8 s, now 7.7 s (medians
# of 3, /usr/bin/time; niceness 5: 7.9 s). Raising one's own niceness needs no privilege.
NICENESS = 10


def usable_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover (no sched_getaffinity: macOS, Windows)
        return os.cpu_count() or 1


def _plotting_imports(png: bool) -> None:
    from rnnlab.analysis.report import build  # noqa: F401  (holoviews, bokeh)

    if png:  # what report/png.py draws the PNGs with
        import matplotlib.backends.backend_agg  # noqa: F401
        import matplotlib.figure  # noqa: F401


def _serve(conn: Connection, index: int) -> None:
    """A plotting process: draw group `index` of the figures, early ones as soon as their inputs
    arrive ("early"), the rest with the final inputs ("write"); group 0 then writes the page
    from both parts (the other part arrives through the parent) and the PNGs."""
    from rnnlab.analysis.report import build

    renderer = None
    while True:
        try:
            message = conn.recv()
        except EOFError:  # the parent ended without a report
            return
        if message is None:
            return
        kind, job = message
        try:
            if kind == "early":
                grid, arch, res, figdir = job
                renderer = build.GroupRenderer(index, figdir)
                renderer.draw(arch, res, grid, late=False)
                continue
            grid, arch, res, attrs, outdir, figdir = job
            renderer = renderer or build.GroupRenderer(index, figdir)
            renderer.draw(arch, res, grid, late=False)  # all, if there was no early step
            renderer.draw(arch, res, grid, late=True)
            if index == 1:  # pickled here: the parent passes the bytes on without bokeh
                conn.send(("ok", pickle.dumps((renderer.parts, renderer.pngs))))
                return
            other, other_pngs = pickle.loads(conn.recv())
            parts, all_pngs = renderer.parts + other, {**renderer.pngs, **other_pngs}
            written = build.finish_report(arch, res, grid, attrs, outdir, parts, all_pngs)
            conn.send(("ok", written))
            return
        except Exception:  # reported to the parent, which raises it
            conn.send(("error", traceback.format_exc()))
            return


def _first(conns: list[Connection], png: bool) -> None:
    """The first plotting process: import, fork the second (it inherits the imports and the
    priority), serve."""
    try:
        os.nice(NICENESS)
    except OSError:  # not allowed here (a sandbox): drawn at the parent's priority, a little later
        pass
    try:
        _plotting_imports(png)
    except Exception:
        for conn in conns:
            conn.send(("error", traceback.format_exc()))
        return
    # the imported modules are long-lived: out of the collector's scans (a full one walked them
    # all, several times while drawing), and pages the second process shares without copying
    gc.freeze()
    pid = os.fork()
    if pid == 0:
        conns[0].close()
        run_child(_serve, conns[1], 1)
    conns[1].close()
    _serve(conns[0], 0)
    # closed before waiting: after a failure the parent may still send the final inputs, which
    # would fill the pipe and block it forever while this process waits for the second one
    conns[0].close()
    os.waitpid(pid, 0)


class RenderWorkers:
    """The two plotting processes; `write` renders a report with them, `close` ends them."""

    def __init__(self, pid: int, conns: list[Connection]):
        self.pid = pid
        self.conns = conns

    @classmethod
    def start(cls, png: bool = True) -> RenderWorkers | None:
        """Fork the plotting processes, or None where rendering in-process is the better choice:
        no fork (not POSIX), threads running here (a fork copies their held locks), one core."""
        if not fork_safe() or usable_cores() < 2:
            return None
        # xarray imports dask.array the first time it makes an array while dask is installed:
        # this process when it opens the archive, and each plotting process again when it builds
        # its figures (0.1-0.2 s each). Imported before the fork, it is imported once.
        import dask.array  # noqa: F401

        pairs = [Pipe() for _ in range(2)]
        pid = fork_group(_first, [child_end for _, child_end in pairs], png,
                         close=tuple(parent_end for parent_end, _ in pairs))  # fmt: skip
        for _, child_end in pairs:
            child_end.close()
        return cls(pid, [parent_end for parent_end, _ in pairs])

    def _receive(self, conn: Connection):
        try:
            status, value = conn.recv()
        except (EOFError, OSError) as err:
            raise ReportError("a plotting process of the report ended unexpectedly") from err
        if status != "ok":
            raise RuntimeError(f"rendering the report failed in a plotting process:\n{value}")
        return value

    def _send(self, conn: Connection, message) -> None:
        try:
            conn.send(message)
        except OSError:  # the process has ended; receiving from it says why
            pass

    def early(
        self, archive: xr.Dataset, results: xr.Dataset, outdir: Path, *, png: bool = True
    ) -> None:
        """Start drawing the figures that `results` (the analyses without the network ones:
        `analyze_in_steps`) already hold, PNGs into `outdir`/figures; `submit` sends the rest."""
        from rnnlab.analysis.report.inputs import report_inputs

        grid, arch, res = report_inputs(archive, results)
        figdir = Path(outdir) / "figures" if png else None
        for conn in self.conns:
            self._send(conn, ("early", (grid, arch, res, figdir)))

    def submit(
        self, archive: xr.Dataset, results: xr.Dataset, outdir: str | Path, *, png: bool = True
    ) -> None:
        """Send the final inputs: the plotting processes draw the rest of the figures and the
        first writes the page into `outdir` while this process goes on; `collect` waits."""
        from rnnlab.analysis.report.inputs import prepare_outdir, report_inputs

        grid, arch, res = report_inputs(archive, results)
        outdir = prepare_outdir(outdir)
        figdir = outdir / "figures" if png else None
        job = (grid, arch, res, dict(archive.attrs), outdir, figdir)
        for conn in self.conns:
            self._send(conn, ("write", job))

    def collect(self) -> dict[str, Path]:
        """The files written after `submit` (as `write` returns them), once they are written."""
        second = self._receive(self.conns[1])
        self._send(self.conns[0], second)
        return self._receive(self.conns[0])

    def write(
        self, archive: xr.Dataset, results: xr.Dataset, outdir: str | Path, *, png: bool = True
    ) -> dict[str, Path]:
        """What `build.write_report(archive, results, outdir, png=png, quiet=True)` writes, the
        two groups of figures drawn at once by the plotting processes (`submit`, `collect`)."""
        self.submit(archive, results, outdir, png=png)
        return self.collect()

    def close(self) -> None:
        """End the plotting processes (at once if they are still busy) and reap the first."""
        for conn in self.conns:
            self._send(conn, None)
            conn.close()
        end_group(self.pid)

    def __enter__(self) -> RenderWorkers:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
