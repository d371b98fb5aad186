"""Write the analysis report of a run: report.html (offline), figures/*.png and summary.md.

`write_report` checks and loads only what the report shows (inputs.py), builds the figures
(figures.py: one HoloViews object per plot, styled by style.py; PNGs drawn from them by png.py),
the headline numbers (headline.py) and the page (page.py). The figures fall in two groups
(`GROUPS`), each rendered as one part of the page (`render_group`): `rnnlab analyze` renders them
in two processes at once (workers.py), `write_report` one after the other; the page is the same
either way.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

import holoviews as hv
import xarray as xr

from rnnlab.analysis.report import figures as plots
from rnnlab.analysis.report import headline as summary
from rnnlab.analysis.report import inloop_figures, options, phase, png, verdict
from rnnlab.analysis.report.inputs import prepare_outdir, report_inputs
from rnnlab.analysis.report.page import (
    PagePart,
    assemble,
    bokeh_roots,
    number_ids_from,
    serialize_part,
)
from rnnlab.analysis.report.widgets import Frames
from rnnlab.errors import ReportError

__all__ = [
    "GroupRenderer",
    "ReportError",
    "figures",
    "finish_report",
    "render_group",
    "write_report",
]

PNG_FIGURES = ("learning_curve", "spectrum", "outlier_re")
PNG_DPI = 150
MAX_FRAMES = 12
# The first group holds the figures that are also PNGs and four more, so that both groups take
# about as long (default run, CPU s, drawn directly: report/options.py), before the network
# analyses (0.75 and 0.72) and after them (0.29: the learning curve and its PNG; 0.30: the
# three other late ones; with the fixed-point counts in the first group, 0.37 and 0.22).
FIRST_GROUP = (*PNG_FIGURES, "trajectories", "jacobian_re", "explained", "align_u")
GROUPS = 2
# The figures that show the network analyses (learning curve: the MSE on fresh trials), drawn
# after the others: `rnnlab analyze` draws the others while those analyses compute.
LATE_FIGURES = ("learning_curve", "functional_rank", "fixed_points", "fixed_point_counts")


def figure_makers(
    archive: xr.Dataset, results: xr.Dataset, grid: xr.Dataset | None = None
) -> dict[str, Callable[[], object]]:
    """name -> function building that figure, for every figure of the page in page order: a
    sweep's phase plots (`grid`), then the run's plots; absent analyses: no plot."""
    n = archive.sizes["eig"]
    makers: dict[str, Callable[[], object]] = {}
    if grid is not None:
        makers.update(phase.plot_makers(grid))
    makers.update(
        {
            "learning_curve": partial(inloop_figures.learning_curve, archive, results),
            "trajectories": partial(plots.trajectories, archive),
            "spectrum": partial(
                inloop_figures.spectrum_frames, archive, results, max_frames=MAX_FRAMES
            ),
            "outlier_paths": partial(plots.outlier_paths, results),
            "outlier_re": partial(plots.outlier_re, results),
            "jacobian_re": partial(plots.jacobian_re, results),
            "singular_values": partial(inloop_figures.singular_values, results),
            "explained": partial(plots.explained, results),
            "align_u": partial(plots.alignment, results, "u", n_neuron=n, legend=False),
            "align_v": partial(plots.alignment, results, "v", n_neuron=n),
            "block_J": partial(inloop_figures.block_heatmaps, results, "block_J"),
            "block_dJ": partial(inloop_figures.block_heatmaps, results, "block_dJ"),
        }
    )
    makers.update(inloop_figures.extra_makers(archive, results))
    return makers


def is_png(name: str) -> bool:
    """Whether figure `name` is also written as figures/<name>.png."""
    return name in PNG_FIGURES or name.startswith("phase_")


def group(names: list[str], index: int) -> list[str]:
    """The figures of group `index` (0: FIRST_GROUP and every PNG figure, 1: the rest)."""
    first = [n for n in names if n in FIRST_GROUP or is_png(n)]
    return first if index == 0 else [n for n in names if n not in first]


def figures(archive: xr.Dataset, results: xr.Dataset) -> dict[str, object]:
    """All figures of a run's report by name (the spectrum is a HoloMap over epoch)."""
    figs = {name: make() for name, make in figure_makers(archive, results).items()}
    return {name: f.holomap() if isinstance(f, Frames) else f for name, f in figs.items()}


def png_object(obj: object) -> object:
    """What a PNG shows of a figure: a HoloMap's frame of the first member (if a kdim) at the
    last epoch, else the figure itself."""
    if isinstance(obj, hv.HoloMap | Frames):
        keys = list(obj.keys()) if isinstance(obj, hv.HoloMap) else obj.keys
        key = keys[0][:-1] + keys[-1][-1:] if isinstance(keys[0], tuple) else keys[-1]
        obj = obj[key] if isinstance(obj, hv.HoloMap) else obj.frame(key)
    return obj


def write_pngs(figs: dict[str, object], figdir: Path) -> dict[str, Path]:
    """figures/<name>.png of the figures in `figs` that are PNGs, drawn by matplotlib (png.py;
    spectrum: last epoch), the run's plots first, then a sweep's phase plots."""
    names = [n for n in PNG_FIGURES if n in figs] + [n for n in figs if n.startswith("phase_")]
    if not names:
        return {}
    return png.save_pngs({n: png_object(figs[n]) for n in names}, figdir, PNG_DPI)


class GroupRenderer:
    """Group `index` of the figures (`group`) drawn in steps: `draw` the figures whose inputs
    are there (with PNGs in `figdir`, if given), again once the network analyses are there
    (LATE_FIGURES). Each step's figures become one part of the page (a bokeh Document,
    serialised at once: while the network analyses compute, in `rnnlab analyze`). The steps run
    in that order (early, then late) wherever they run, so the bokeh ids, and the page, do not
    depend on it."""

    def __init__(self, index: int, figdir: Path | None = None):
        self.index, self.figdir = index, figdir
        self.drawn: set[str] = set()
        self.parts: list[PagePart] = []
        self.pngs: dict[str, Path] = {}
        number_ids_from(index)

    def draw(
        self, archive: xr.Dataset, results: xr.Dataset, grid: xr.Dataset | None, *, late: bool
    ) -> None:
        """Draw the figures of this group not drawn yet, as one more part: without `late`, those
        that do not show the network analyses (not in LATE_FIGURES); with it, all. Inputs: as
        `inputs.report_inputs` gives them."""
        makers = figure_makers(archive, results, grid)
        names = [n for n in group(list(makers), self.index) if n not in self.drawn]
        names = [n for n in names if late or n not in LATE_FIGURES]
        if not names:
            return
        with options.direct_drawing():  # no HoloViews bokeh backend needed (options.py)
            figs = {name: makers[name]() for name in names}
            self.parts.append(serialize_part(bokeh_roots(figs)))
            if self.figdir is not None:
                self.pngs.update(write_pngs(figs, self.figdir))
        self.drawn.update(names)


def render_group(
    archive: xr.Dataset,
    results: xr.Dataset,
    grid: xr.Dataset | None,
    index: int,
    figdir: Path | None = None,
) -> tuple[list[PagePart], dict[str, Path]]:
    """Group `index` of the figures as parts of the page and (with `figdir`) the PNGs of its
    figures written there, drawn in one go (`GroupRenderer`). Inputs: as `report_inputs`
    gives them."""
    renderer = GroupRenderer(index, figdir)
    renderer.draw(archive, results, grid, late=False)
    renderer.draw(archive, results, grid, late=True)
    return renderer.parts, renderer.pngs


def finish_report(
    archive: xr.Dataset,
    results: xr.Dataset,
    grid: xr.Dataset | None,
    attrs: dict,
    outdir: Path,
    parts: list[PagePart],
    pngs: dict[str, Path],
) -> dict[str, Path]:
    """Write summary.md and report.html (the page of `parts`) into `outdir`; the written paths
    keyed by their path relative to `outdir`, `pngs` (already written) last."""
    title = str(attrs.get("title", "rnnlab run"))
    first = {f"figures/{name}.png": i for i, name in enumerate(PNG_FIGURES)}
    pngs = dict(sorted(pngs.items(), key=lambda kv: first.get(kv[0], len(first))))  # stable
    head = summary.headline(archive, results)
    blocks = verdict.verdict(head, results)
    written = {}
    path = outdir / "summary.md"
    before = phase.markdown(grid) if grid is not None else ""
    path.write_text(summary.markdown(head, title, verdict.markdown(blocks), before), "utf-8")
    written["summary.md"] = path
    extra = []
    if grid is not None:
        extra = [phase.section(grid, [n for p in parts for n in p.roots if n.startswith("phase_")])]
    html = assemble(parts, head, attrs, title, verdict.html_block(blocks), extra)
    path = outdir / "report.html"
    path.write_text(html, encoding="utf-8")
    written["report.html"] = path
    return {**written, **pngs}


def write_report(
    archive: xr.Dataset,
    results: xr.Dataset,
    outdir: str | Path,
    *,
    png: bool = True,
    quiet: bool = False,
) -> dict[str, Path]:
    """Write report.html, summary.md and (if `png`) figures/*.png into `outdir`, in this process.

    Returns the written paths keyed by their path relative to `outdir`. A sweep's grid (swept
    settings as dims) adds the phase-diagram section (phase.py) and is otherwise shown flat.
    """
    grid, arch, res = report_inputs(archive, results)
    outdir = prepare_outdir(outdir)
    figdir = outdir / "figures" if png else None
    rendered = [render_group(arch, res, grid, k, figdir) for k in range(GROUPS)]
    parts = [part for group_parts, _ in rendered for part in group_parts]
    pngs = {key: path for _, written in rendered for key, path in written.items()}
    written = finish_report(arch, res, grid, dict(archive.attrs), outdir, parts, pngs)
    if not quiet:
        print(f"report: wrote {', '.join(written)} in {outdir}", file=sys.stderr)
    return written
