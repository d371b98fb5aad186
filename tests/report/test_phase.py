"""The phase-diagram section of a sweep's report: numbers per grid point against the inputs, one
plot per (metric, swept setting), and `rnnlab analyze` of a real sweep end to end."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from conftest import run_cli

from rnnlab.analysis.report import inputs, phase

G, PHI, SEEDS = [0.5, 1.0, 1.5], ["tanh", "relu"], [0, 1, 2]


def synthetic(optimum: float = 0.5):
    """A grid archive and results with known numbers; point (1.5, relu) has no archive."""
    rng = np.random.default_rng(0)
    shape = (len(G), len(PHI), len(SEEDS))
    coords = {"g": G, "phi": PHI, "seed": SEEDS}
    dims = ("g", "phi", "seed")
    mse = rng.uniform(0.6, 1.2, shape + (2,))
    mse[2, 1] = np.nan
    sv = np.zeros(shape + (2, 4))
    sv[..., -1, :] = [3.0, 1.0, 1.0, 1.0]  # R90 = 3 everywhere
    sv[0, 0, 0, -1] = [1.0, 0.0, 0.0, 0.0]  # R90 = 1 for one seed
    sv[2, 1] = np.nan
    outlier = np.full(shape + (2, 3), np.nan, complex)
    outlier[..., -1, 0] = 1.2 + 0.5j
    outlier[..., -1, 1] = rng.uniform(0.5, 1.5, shape)
    outlier[2, 1] = np.nan
    n_out = np.where(np.isnan(mse[..., -1]), np.nan, 2.0)[..., None].repeat(2, -1)
    crossing = rng.uniform(10, 20, shape)
    crossing[0, 0, 1] = np.nan  # never crossed
    crossing[2, 1] = np.nan
    archive = xr.Dataset(
        {
            "mse": ((*dims, "epoch"), mse),
            "mse_optimal": (dims, np.full(shape, optimum)),
        },
        coords={**coords, "epoch": [0, 10]},
    )
    results = xr.Dataset(
        {
            "sv": ((*dims, "epoch", "sv"), sv),
            "n_outliers": ((*dims, "epoch"), n_out),
            "outlier": ((*dims, "epoch", "outlier"), outlier),
            "crossing_epoch": (dims, crossing),
        },
        coords={**coords, "epoch": [0, 10]},
        attrs={"sweep_dims": "g phi", "sweep_keys": "model.g model.phi"},
    )
    return archive, results, mse, outlier, crossing


def test_phase_numbers_per_point_match_the_inputs():
    archive, results, mse, outlier, crossing = synthetic()
    assert inputs.is_grid(results) and not inputs.is_grid(archive)
    data = inputs.phase_data(archive, results)
    assert data.attrs["dims"] == ["g", "phi"] and data.attrs["ratio"]
    np.testing.assert_allclose(data["mse_ratio"].values, mse[..., -1] / 0.5)
    assert data["rank90"].values[0, 0].tolist() == [1, 3, 3]
    np.testing.assert_allclose(data["re_out"].values, np.maximum(1.2, outlier[..., -1, 1].real))
    header, body = phase.table(data)
    assert header == ["g", "phi", "seeds", "final MSE / optimum", "R for 90% of ‖ΔJ‖²",
                      "Re λ_out (measured)", "outliers of J", "crossing epoch"]  # fmt: skip
    rows = {(r[0], r[1]): r for r in body}
    assert len(rows) == 6
    ratio = mse[1, 0, :, -1] / 0.5
    expected = f"{ratio.mean():.4g} ± {ratio.std(ddof=1):.3g}"
    assert rows[("1.0", "tanh")][2:4] == ["3", expected]
    assert rows[("0.5", "tanh")][4] == "2.333 ± 1.15"
    c = crossing[0, 0, [0, 2]]
    # NaN ignored, and the n it rests on said
    assert rows[("0.5", "tanh")][7] == f"{c.mean():.4g} ± {c.std(ddof=1):.3g} (n = 2)"
    assert rows[("1.5", "relu")][2:] == ["0"] + ["–"] * 5  # no archive


def test_without_a_known_optimum_the_plain_final_mse_is_shown():
    archive, results, mse, _, _ = synthetic(optimum=0.0)  # the track task: MSE* = 0
    data = inputs.phase_data(archive, results)
    assert not data.attrs["ratio"]
    np.testing.assert_allclose(data["mse_ratio"].values, mse[..., -1])
    assert phase.table(data)[0][3] == "final MSE"
    assert "Each row: final MSE, " in phase.markdown(data)


def test_one_plot_per_metric_and_swept_setting():
    archive, results, *_ = synthetic()
    data = inputs.phase_data(archive, results)
    figs = phase.figures(data)
    assert list(figs) == [f"phase_{m}_{d}" for d in ("g", "phi") for m, _ in phase.METRICS]
    g_plot = figs["phase_mse_ratio_g"]
    assert g_plot.opts.get().kwargs["title"].startswith("final MSE / optimum vs g")
    curves = [el for el in g_plot if isinstance(el, phase.hv.Curve)]
    assert [c.label for c in curves] == ["phi = tanh", "phi = relu"]  # lines per phi
    mean = np.nanmean(data["mse_ratio"].sel(phi="tanh").values, axis=-1)
    np.testing.assert_allclose(curves[0].dimension_values(1), mean)
    # categorical settings are placed at 0, 1, ... and labelled with their values
    phi_plot = figs["phase_rank90_phi"]
    assert phi_plot.opts.get().kwargs["xticks"] == [(0, "tanh"), (1, "relu")]
    # a single swept setting: one line; a third one is pooled with the seeds
    one = inputs.phase_data(
        archive.isel(phi=0, drop=True), results.isel(phi=0, drop=True).assign_attrs(sweep_dims="g")
    )
    assert [el.label for el in phase.phase_plot(one, "rank90", "g")][0].startswith("mean ± sd")
    three = results.expand_dims(lr=[0.1, 0.2]).assign_attrs(sweep_dims="g phi lr")
    plot = phase.phase_plot(inputs.phase_data(archive.expand_dims(lr=[0.1, 0.2]), three),
                            "re_out", "lr")  # fmt: skip
    assert plot.opts.get().kwargs["title"].endswith("(mean ± sd over seeds, phi)")


@pytest.mark.slow
def test_analyze_a_sweep_writes_its_phase_diagram(phase_sweep, tmp_path):
    """`rnnlab analyze runs/phase/`: analysis.nc keeps the swept dims, summary.md has a row per
    grid point (numbers as from analysis.nc and the archives), report.html the section."""
    import rnnlab
    import rnnlab.analysis as ra

    out = tmp_path / "report"
    status, stdout, stderr = run_cli("analyze", str(phase_sweep.out), "-o", str(out))
    assert status == 0, stderr
    results = ra.open_analysis(out / "analysis.nc")
    assert results["m"].dims[:3] == ("g", "phi", "seed")
    assert results.attrs["sweep_dims"] == "g phi"
    # the network analyses (the default) ran on every point, each with its own config
    for name in ("mse", "functional_rank", "shuffle_lost", "n_fixed_points"):
        assert results[name].dims[:3] == ("g", "phi", "seed"), name
    assert np.isfinite(results["mse"].sel(g=1.5, phi="relu").values).all()
    with rnnlab.open_archive(phase_sweep.out) as ds:
        data = inputs.phase_data(ds, results)
        mse = ds["mse"].isel(epoch=-1).values / ds["mse_optimal"].values
    results.close()
    text = (out / "summary.md").read_text(encoding="utf-8")
    assert "## Phase diagram: headline numbers per grid point" in text
    block = text.split("## Phase diagram", 1)[1].split("\n## ", 1)[0]
    rows = [ln for ln in block.splitlines() if ln.startswith("| 1.5 | relu |")]
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    ratio = mse[1, 1]
    assert cells[2] == "2" and cells[3] == f"{ratio.mean():.4g} ± {ratio.std(ddof=1):.3g}"
    assert data["mse_ratio"].sel(g=1.5, phi="relu").values.tolist() == ratio.tolist()
    assert "Seeds: 8 from 4 runs." in text  # the per-seed tables: one member per (point, seed)
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "<h2>Phase diagram</h2>" in html and "<td>relu</td>" in html
    pngs = sorted(p.name for p in (out / "figures").glob("phase_*.png"))
    assert len(pngs) == 10 and all((out / "figures" / p).stat().st_size > 5000 for p in pngs)

    from browser import chromium_available, inspect_page

    if not chromium_available():
        pytest.skip("needs /usr/bin/chromium and the playwright package (CI installs both)")
    check = inspect_page(out / "report.html", move_slider=False)
    assert check.blocked == [] and check.console_errors == [] and check.page_errors == []
    plots = [p for p in check.plots if "(mean ± sd over" in p["title"]]
    assert len(plots) == 10 and all(p["points"] > 0 for p in plots), plots
    defined = [p for p in plots if p["title"].startswith(("final MSE", "R for 90%"))]
    assert len(defined) == 4 and all(p["ink"] > 100 for p in defined), defined
