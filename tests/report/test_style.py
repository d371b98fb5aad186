"""style.both: elements styled alike share one options tree, and nothing leaks between them."""

from __future__ import annotations

import subprocess
import sys

import holoviews as hv

from rnnlab.analysis.report import style as plot_style


def _bokeh(el, group: str) -> dict:
    return hv.Store.lookup_options("bokeh", el, group).kwargs


def test_alike_elements_share_their_options():
    a = plot_style.style(hv.Curve([1, 2], label="x"), color="#123456", width=2, dash="dotted")
    b = plot_style.style(hv.Curve([3, 4], label="x"), color="#123456", width=2, dash="dotted")
    assert b.id == a.id and _bokeh(b, "style")["line_dash"] == "dotted"
    assert list(b.data["y"]) == [3, 4]  # the data stay the element's own


def test_unlike_elements_get_their_own_options():
    a = plot_style.style(hv.Curve([1, 2], label="x"), color="#654321", width=2)
    other_label = plot_style.style(hv.Curve([1, 2], label="y"), color="#654321", width=2)
    other_color = plot_style.style(hv.Curve([1, 2], label="x"), color="#111112", width=2)
    assert len({a.id, other_label.id, other_color.id}) == 3
    assert _bokeh(other_color, "style")["color"] == "#111112"


def test_later_opts_on_one_leave_the_others_alone():
    a = plot_style.style(hv.Scatter([1, 2], label="s"), color="#0a0b0c", size=6, marker="circle")
    b = plot_style.style(hv.Scatter([1, 2], label="s"), color="#0a0b0c", size=6, marker="circle")
    a.opts(line_width=5, backend="bokeh")  # in place, as figures do (fixed points)
    c = plot_style.style(hv.Scatter([5, 6], label="s"), color="#0a0b0c", size=6, marker="circle")
    assert _bokeh(a, "style")["line_width"] == 5
    for el in (b, c):
        assert "line_width" not in _bokeh(el, "style") and _bokeh(el, "style")["size"] == 6


def test_options_already_given_are_kept():
    base = hv.Points([(0, 0, 1.0)], vdims=["epoch"]).opts(alpha=0.3, backend="bokeh")
    el = plot_style.both(base, {"color": "epoch"}, {"color": "epoch"})
    assert _bokeh(el, "style")["alpha"] == 0.3 and _bokeh(el, "style")["color"] == "epoch"


def test_frame_options_reach_the_overlay_and_spare_its_layers():
    curve = plot_style.style(hv.Curve([1, 2], label="c"), color="#0d0e0f", width=3)
    framed = plot_style.frame(hv.Overlay([curve]), title="T", xlabel="x", ylabel="y")
    plot_opts = hv.Store.lookup_options("bokeh", framed, "plot").kwargs
    assert plot_opts["title"] == "T" and plot_opts["frame_width"] == 420
    layer = framed.values()[0]
    assert layer.id == curve.id and _bokeh(layer, "style")["line_width"] == 3
    assert "title" not in hv.Store.lookup_options("bokeh", layer, "plot").kwargs
    again = plot_style.frame(framed, title="U", xlabel="x", ylabel="y")  # options already given
    assert hv.Store.lookup_options("bokeh", again, "plot").kwargs["title"] == "U"


NOTEBOOK = """
import sys
import holoviews as hv
import numpy as np
from matplotlib.collections import PathCollection
from matplotlib.colors import to_hex
from rnnlab.analysis.report import style as plot_style

assert not plot_style.has_matplotlib()
plot_style.use_matplotlib()
assert plot_style.has_matplotlib()
dotted = plot_style.lines([([0, 1], [1, 2]), ([0, 1], [2, 3])], ["x", "y"], "two",
                          color="#123456", width=2, dash="dotted")
marks = plot_style.style(hv.Scatter([(0.5, 4)], label="m"), color="#abcdef", size=8,
                         marker="diamond")
fig = plot_style.frame(hv.Overlay([*dotted, marks]), title="T", xlabel="a", ylabel="b",
                       logy=True, legend="right", size=(300, 200))
ax = hv.render(fig, backend="matplotlib").axes[0]
curve = ax.get_lines()[0]
print("curve", curve.get_linestyle(), curve.get_linewidth(), to_hex(curve.get_color()))
dots = [c for c in ax.collections if isinstance(c, PathCollection)][0]
print("marks", to_hex(dots.get_facecolor()[0]), dots.get_sizes()[0])
print("frame", ax.get_yscale(), ax.get_title(), ax.get_xlabel(), ax.get_ylabel())
hv.save(fig, sys.argv[1], backend="matplotlib")
"""


def test_a_notebook_can_style_the_figures_for_matplotlib_too(tmp_path):
    """`use_matplotlib()` (docs/report.md): figures built after it carry matplotlib options
    translated from the same neutral style (line width in points = 0.75 x bokeh's pixels), so
    `hv.save(fig, backend="matplotlib")` draws them. In a fresh interpreter: loading HoloViews'
    matplotlib backend is global and would style every later figure of the test session."""
    png = tmp_path / "fig.png"
    out = subprocess.run([sys.executable, "-c", NOTEBOOK, str(png)], capture_output=True,
                         text=True)  # fmt: skip
    assert out.returncode == 0, out.stderr
    got = dict(line.split(" ", 1) for line in out.stdout.splitlines())
    assert got["curve"] == ": 1.5 #123456"  # dotted, 2 px -> 1.5 pt, the curve's colour
    assert got["marks"] == "#abcdef 36.0"  # 8 px -> (0.75 * 8)^2 pt^2
    assert got["frame"] == "log T a b"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
