"""options.py: the report's figures built for direct drawing carry the bokeh options HoloViews
would give them, without HoloViews' bokeh backend (its plotting classes and panel)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import holoviews as hv
import numpy as np
import pytest
from conftest import benchmark_module
from holoviews.plotting.util import process_cmap
from test_phase import synthetic
from test_report import make_archive, make_results

from rnnlab.analysis.report import build, inloop_figures, inputs, options, page, phase, widgets
from rnnlab.analysis.report import style as plot_style
from rnnlab.analysis.report.inputs import report_inputs

content = benchmark_module("figure_content")
GROUPS = ("style", "plot")


def _plain(value):
    """An option value comparable with ==: a Cycle as such (its colours are those of the
    backends loaded when it was made; bokeh_draw and png.py take none)."""
    return "Cycle" if isinstance(value, hv.Cycle) else value


def _plain_dict(opts: dict) -> dict:
    return {k: _plain(v) for k, v in opts.items()}


def _parts(fig) -> list:
    """Every object of a figure that can carry options: the figure, its frames and layers."""
    if isinstance(fig, widgets.Frames):
        fig = fig.holomap()
    return fig.traverse(lambda x: x)


def _report_makers():
    ds = make_archive()
    res = make_results(ds)
    _, arch, res = report_inputs(ds, res)
    makers = dict(build.figure_makers(arch, res))
    archive, results, *_ = synthetic()
    makers.update(phase.plot_makers(inputs.phase_data(archive, results)))
    no_outlier = res.copy()
    no_outlier["ladder_measured"] = no_outlier["ladder_measured"] * np.nan  # its note instead
    makers["ladder_without_outliers"] = lambda: inloop_figures.ladder(no_outlier)
    return makers


def test_every_figure_carries_the_options_holoviews_gives_it():
    """Each figure of a run's report and of a sweep's phase diagram, built twice: for HoloViews
    (its lookup) and for direct drawing (options.py); every part, both option groups alike."""
    makers = _report_makers()
    compared, kinds = 0, set()
    for name, make in makers.items():
        theirs = _parts(make())
        with options.direct_drawing():
            mine = _parts(make())
            assert len(mine) == len(theirs), name
            for a, b in zip(theirs, mine, strict=True):
                assert type(a) is type(b), name
                if isinstance(a, hv.HoloMap):
                    continue
                for g in GROUPS:
                    expected = _plain_dict(hv.Store.lookup_options("bokeh", a, g).kwargs)
                    got = _plain_dict(plot_style.bokeh_options(b, g))
                    assert got == expected, f"{name} {type(a).__name__} {g}"
                compared += 1
                kinds.add(type(a).__name__)
    assert compared > 300
    assert kinds >= {"Overlay", "Curve", "Path", "Points", "Scatter", "ErrorBars", "HeatMap",
                     "Labels", "Text"}  # fmt: skip


def test_the_defaults_are_holoviews_own():
    for kind, groups in options.BOKEH_DEFAULTS.items():
        tree = hv.Store.options(backend="bokeh")[kind]
        for g in GROUPS:
            expected = _plain_dict(tree.groups[g].kwargs)
            assert _plain_dict(groups.get(g, {})) == expected, f"{kind} {g}"


def test_unstyled_parts_get_the_defaults():
    with options.direct_drawing():
        el = hv.Scatter([1, 2])
        assert plot_style.bokeh_options(el, "style")["size"] == pytest.approx(6**0.5)
        assert plot_style.bokeh_options(el, "plot") == {}


@pytest.mark.parametrize("cmap", ["viridis", "RdBu_r", "magma", "Blues", "coolwarm", "kbc_r",
                                  "Category10"])  # fmt: skip
@pytest.mark.parametrize("n", [256, 11])
def test_palettes_are_holoviews_own(cmap, n):
    assert options.palette(cmap, n) == process_cmap(cmap, n)


def test_later_options_go_over_earlier_ones_and_leave_the_others_alone():
    with options.direct_drawing():
        a = plot_style.style(hv.Scatter([1, 2], label="s"), color="#0a0b0c", size=6, marker="x")
        b = plot_style.style(hv.Scatter([1, 2], label="s"), color="#0a0b0c", size=6, marker="x")
        first = a.id
        plot_style.both(a, {"line_width": 3, "size": 9}, {})  # in place, as HoloViews' .opts
        assert a.id != first
        style_a = plot_style.bokeh_options(a, "style")
        style_b = plot_style.bokeh_options(b, "style")
        assert (style_a["size"], style_a["line_width"], style_a["color"]) == (9, 3, "#0a0b0c")
        assert style_b["size"] == 6 and "line_width" not in style_b
        assert a.clone().id == a.id and plot_style.bokeh_options(a.clone(), "style") == style_a
    assert not options.drawing_directly()


def test_holoviews_draws_what_it_must_with_the_options_kept_here():
    """A figure HoloViews draws after all (here: bars, which bokeh_draw does not know) gets the
    options kept here first: the same plot as that figure built for HoloViews."""

    def bars():
        el = plot_style.both(hv.Bars([("a", 1.0), ("b", 2.0)], label="n"), {"color": "#d62728"},
                             {})  # fmt: skip
        return plot_style.frame(hv.Overlay([el]), title="T", xlabel="x", ylabel="y", legend=False)

    def seen(fig) -> tuple:
        glyphs = [(type(r.glyph).__name__, r.glyph.fill_color) for r in fig.renderers]
        legends = [(len(lg.items), lg.visible) for lg in fig.legend]
        return fig.title.text, fig.frame_width, glyphs, legends

    theirs = seen(hv.render(bars(), backend="bokeh"))
    with options.direct_drawing():
        mine = seen(page._draw(bars()))
    assert mine == theirs
    assert mine[:3] == ("T", 420, [("VBar", "#d62728")])


PROBE = """
import sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from test_report import make_archive, make_results
from rnnlab.analysis.report import build, style
ds = make_archive()
build.write_report(ds, make_results(ds), sys.argv[3], png=True, quiet=True)
print(sorted(m for m in ("panel", "holoviews.plotting", "holoviews.plotting.bokeh")
             if m in sys.modules))
import holoviews as hv
styled = style.style(hv.Curve([1, 2]), color="#123456")  # as a notebook builds a figure
print(sorted(hv.Store.renderers), hv.Store.lookup_options("bokeh", styled, "style").kwargs["color"])
"""


def test_the_report_needs_no_holoviews_plotting_classes_and_a_notebook_still_gets_them(tmp_path):
    """write_report (as each plotting process of `rnnlab analyze`) draws the page and the PNGs
    without importing HoloViews' plotting classes or panel; a figure styled outside it, as in a
    notebook, still carries HoloViews' bokeh options. In a fresh interpreter."""
    here = Path(__file__).parent
    out = subprocess.run([sys.executable, "-c", PROBE, str(here), str(here.parent),
                          str(tmp_path / "report")], capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 0, out.stderr
    imported, notebook = out.stdout.splitlines()
    assert imported == "[]"
    assert notebook == "['bokeh'] #123456"
    assert (tmp_path / "report" / "report.html").stat().st_size > 100_000
    assert len(list((tmp_path / "report" / "figures").glob("*.png"))) == 3
