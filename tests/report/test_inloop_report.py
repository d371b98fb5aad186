"""The report's additions for the in-loop analyses: the verdict, the bulk-edge definition, the
random-matrix reference, readable ticks, legends, and the widgets' frames (hand-built inputs of
test_report, whose numbers are known)."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pytest
from test_report import MSE_OPT, SEEDS, N, make_archive, make_results

from rnnlab.analysis.report import figures as plots
from rnnlab.analysis.report import headline as summary
from rnnlab.analysis.report import inloop_figures, verdict
from rnnlab.analysis.report.inputs import prepare


@pytest.fixture(scope="module")
def prepared():
    archive = make_archive()
    return prepare(archive, make_results(archive))


@pytest.fixture(scope="module")
def blocks(prepared):
    arch, res = prepared
    return verdict.verdict(summary.headline(arch, res), res)


def answer(blocks, start: str) -> str:
    (found,) = [a for q, a in blocks[0]["items"] if q.startswith(start)]
    return found


def test_verdict_answers_each_question_with_n(blocks):
    assert len(blocks) == 1 and blocks[0]["n"] == 3
    md = verdict.markdown(blocks)
    assert md.startswith("## Verdict (n = 3 seeds)")
    learned = answer(blocks, "Did the network learn")
    # seed 0 sits at the optimum, seed 1 1% above (< 2 SE), seed 2 20% above (20 SE)
    assert "+0.0% ± 0.8% (seed 0)" in learned and "+20.0% ± 1.0% (seed 2)" in learned
    assert "2 of 3 within 2 SE of the optimum; above it by more than 2 SE: seed 2" in learned
    low = answer(blocks, "Did ΔJ become low-rank")
    assert "from R = 2–40 on (functional rank, median 2)" in low and low.startswith(
        "functionally yes"
    )
    pred = answer(blocks, "Which prediction matches")
    assert "(rank-2 fit)" in pred and "from R = 2 (seed 0), 2 (seed 1), 2 (seed 2)" in pred
    assert "ΔJ_R alone (mean field) at no R" in pred
    assert "median 60%" in answer(blocks, "Does ΔJ work without its own J0")
    fixed = answer(blocks, "Fixed points")
    assert "seed 2: 3 at epochs 80, 100 (off the origin at |u_1ᵀh*| = 0.4)" in fixed


def test_verdict_names_a_network_below_the_optimum(prepared):
    arch, res = prepared
    res = res.copy()
    res["mse"] = res["mse"].copy(data=MSE_OPT * np.array([[0.9], [1.0], [1.0]]))
    blocks = verdict.verdict(summary.headline(arch, res), res)
    assert "BELOW it by more than 2 SE: seed 0" in answer(blocks, "Did the network learn")


def test_verdict_per_run(prepared):
    arch, res = prepared
    runs = ("seed", ["a", "a", "b"])
    arch, res = arch.assign_coords(run=runs), res.assign_coords(run=runs)
    blocks = verdict.verdict(summary.headline(arch, res), res)
    assert [(b["run"], b["n"]) for b in blocks] == [("a", 2), ("b", 1)]
    assert "## Verdict (run b, n = 1 seed)" in verdict.markdown(blocks)


def test_one_bulk_edge_definition(prepared):
    arch, res = prepared
    frame = inloop_figures.spectrum(arch, res).last
    circle = frame.get(0)
    assert circle.label == "bulk edge g(1 + 2/√N)"
    radius = np.hypot(circle.dimension_values(0), circle.dimension_values(1))
    np.testing.assert_allclose(radius, float(res["bulk_radius"].isel(seed=-1)))
    assert "|λ| = g " not in summary.DEFINITIONS and "g (1 + 2/√N)" in summary.DEFINITIONS


def test_spectrum_and_heatmaps_have_a_frame_per_seed(prepared):
    arch, res = prepared
    hmap = inloop_figures.spectrum(arch, res)
    assert [d.name for d in hmap.kdims] == ["member", "epoch"]
    assert {k[0] for k in hmap.keys()} == {f"seed {s}" for s in SEEDS}
    heat = inloop_figures.block_heatmaps(res)
    assert [k for k in heat.keys()] == [f"seed {s}" for s in SEEDS]
    # one colour scale for all seeds
    lims = {h.get(0).opts.get().kwargs["clim"] for h in heat.values()}
    assert len(lims) == 1


def test_random_matrix_reference_is_the_quarter_circle():
    rng = np.random.default_rng(0)
    n = 400
    x = rng.normal(size=(n, n)) * 0.3
    sv = np.linalg.svd(x, compute_uv=False)
    ref = inloop_figures.quarter_circle_sv(n, float(np.linalg.norm(x)), 50)
    np.testing.assert_allclose(ref, sv[:50], rtol=0.03)  # within a few % of a real draw
    assert ref[0] <= 2 * np.linalg.norm(x) / np.sqrt(n)


def test_learning_curve_ticks_are_readable():
    ticks = inloop_figures.log_ticks(0.2, 1.5, mark=0.2358)
    values = [v for v, _ in ticks]
    assert 0.2358 in values and 0.3 in values and 1 in values and len(ticks) <= 13
    assert all(label == f"{v:g}" or v == 0.2358 for v, label in ticks)
    assert inloop_figures.log_ticks(0.0, 1.0) == []


def test_stability_panel_has_legends(prepared):
    _, res = prepared
    for fig in (plots.outlier_re(res), plots.jacobian_re(res)):
        model = hv.render(fig, backend="bokeh")
        labels = [getattr(item.label, "value", item.label) for item in model.legend[0].items]
        assert any("stability edge" in str(lab) for lab in labels), labels
    model = hv.render(plots.outlier_re(res), backend="bokeh")
    labels = [str(getattr(item.label, "value", item.label)) for item in model.legend[0].items]
    assert "mean-field (rank-2 fit)" in labels and "exact (rank-2 fit)" in labels


def test_inloop_plots_use_the_results(prepared):
    arch, res = prepared
    figs = inloop_figures.extra_figures(arch, res)
    assert set(figs) == {"functional_rank", "ladder", "fixed_points", "fixed_point_counts"}
    fr = figs["functional_rank"]
    first = fr.get(0)  # seed 0's loss curve over the rungs
    np.testing.assert_allclose(first.dimension_values(1), res["loss"].isel(seed=0, eval_epoch=0))
    assert fr.opts.get().kwargs["xticks"] == [(0, "0"), (1, "1"), (2, "2"), (3, str(N))]
    plain = res.drop_vars(["loss", "fp_u1"])
    assert set(inloop_figures.extra_figures(arch, plain)) == {"ladder"}


@pytest.mark.parametrize("name", ["block_J", "spectrum"])
def test_holomap_frames_read_fast_are_the_plotted_frames(prepared, name):
    """The page's HoloMaps read every frame's data from its elements (a HeatMap's cells through
    its plot's own get_data) instead of updating HoloViews' plot to each frame: same columns,
    same values, same titles, frame by frame."""
    from rnnlab.analysis.report import build, widgets

    arch, res = prepared
    hmap = build.figures(arch, res)[name]
    keys = list(hmap.keys())
    one = hv.renderer("bokeh").get_plot(hmap.clone({keys[0]: hmap[keys[0]]}))
    fast = widgets._fast_frames(hmap, keys, one)
    assert fast is not None
    _, frames = fast
    _, _, plotted, titles = widgets._plotted_frames(hmap)
    assert len(frames) == len(plotted) == len(keys) > 1
    for mine, theirs in zip(frames, plotted, strict=True):
        # the plotted sources come in creation order, the same as the layers here
        assert [sorted(d) for d in mine] == [sorted(d) for d in theirs]
        for a, b in zip(mine, theirs, strict=True):
            for column in a:
                np.testing.assert_array_equal(a[column], b[column], err_msg=column)
    assert [str(hmap[k].opts.get().kwargs.get("title", "")) for k in keys] == titles
