"""png.py: the PNG figures drawn by matplotlib show the archive's numbers, labels and styles."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pytest
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.colors import to_hex
from test_report import make_archive, make_results

from rnnlab.analysis.report import build, png
from rnnlab.analysis.report import style as plot_style
from rnnlab.analysis.report.inputs import report_inputs
from rnnlab.errors import ReportError


@pytest.fixture(scope="module")
def inputs():
    ds = make_archive()
    res = make_results(ds)
    _, arch, res = report_inputs(ds, res)
    return arch, res


def _figure(name: str, arch, res):
    obj = build.figure_makers(arch, res)[name]()
    return png.draw(build.png_object(obj)), obj


def test_learning_curve_shows_each_seed_and_the_mean(inputs):
    arch, res = inputs
    fig, _ = _figure("learning_curve", arch, res)
    ax = fig.axes[0]
    mse = arch["mse_curve"].values  # 200 epochs: not decimated
    ys = [line.get_ydata() for line in ax.get_lines()]
    for i in range(mse.shape[0]):  # the thin line of every seed, in its seed colour
        line = next(ln for ln, y in zip(ax.get_lines(), ys, strict=True)
                    if len(y) == mse.shape[1] and np.allclose(y, mse[i]))  # fmt: skip
        assert to_hex(line.get_color()) == plot_style.seed_color(i)
    assert any(len(y) == mse.shape[1] and np.allclose(y, mse.mean(0)) for y in ys)
    assert ax.get_yscale() == "log" and ax.get_title() == "Learning curve (thin: seeds)"
    assert ax.get_xlabel() == "epoch (optimizer steps)"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:2] == ["loss (mean)", "MSE (mean)"] and "fresh-trial MSE ± 2 SE" in legend


def test_spectrum_shows_the_last_epochs_eigenvalues(inputs):
    arch, res = inputs
    fig, _ = _figure("spectrum", arch, res)
    ax = fig.axes[0]
    eig = arch["eigvals"].isel(seed=0, epoch=-1).values
    eig = eig[np.isfinite(eig)]
    offsets = [c.get_offsets() for c in ax.collections if isinstance(c, PathCollection)]
    drawn = next(o for o in offsets if len(o) == eig.size)
    got = np.sort_complex(drawn[:, 0] + 1j * drawn[:, 1])
    np.testing.assert_allclose(got, np.sort_complex(eig), rtol=1e-6, atol=1e-9)
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    assert x1 - x0 == pytest.approx(y1 - y0)  # an equal-span frame, as on the page
    assert ax.get_box_aspect() == pytest.approx(1.0)
    assert ax.get_ylabel() == "Im λ(J) (dimensionless)"


def test_styles_follow_the_bokeh_options():
    dotted = plot_style.lines([([0, 1], [0, 1]), ([0, 1], [1, 2])], ["x", "y"], "two",
                              color="#123456", width=2, dash="dotted")  # fmt: skip
    marks = plot_style.style(hv.Scatter([(0, 1)], label="m"), color="#abcdef", size=8,
                             marker="diamond")  # fmt: skip
    frame = plot_style.frame(hv.Overlay([*dotted, marks]), title="T", xlabel="a", ylabel="b",
                             logy=True, legend="right", size=(300, 200))  # fmt: skip
    ax = png.draw(frame).axes[0]
    curve = ax.get_lines()[0]
    assert curve.get_linestyle() == ":" and curve.get_linewidth() == pytest.approx(1.5)
    path = next(c for c in ax.collections if isinstance(c, LineCollection))
    assert path.get_linestyle()[0][1] is not None  # the Path's "2 4" pattern: dotted, not solid
    dots = next(c for c in ax.collections if isinstance(c, PathCollection))
    assert to_hex(dots.get_facecolor()[0]) == "#abcdef"
    assert ax.get_box_aspect() == pytest.approx(200 / 300) and ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["two", "m"]


def test_an_unknown_layer_is_refused(tmp_path):
    with pytest.raises(ReportError, match="Bars"):
        png.save_png(hv.Overlay([hv.Bars([("a", 1)])]), tmp_path / "x.png", 100)
    assert not (tmp_path / "x.png").exists()
