"""The xarray analysis API: laziness, dask == NumPy, planted structure recovered, bad input."""

from __future__ import annotations

import dask
import numpy as np
import pytest
import scipy.linalg
import xarray as xr

import rnnlab.analysis as ra
from rnnlab.analysis._common import AnalysisError
from rnnlab.analysis.synthetic import Planted, planted, write_archive


def run(obj):
    """Compute with rnnlab's compute(): one BLAS thread per dask task (see rnnlab.runtime)."""
    return ra.compute(obj, progress=False)


def _raise(dsk, keys, **kwargs):
    raise RuntimeError("the analysis computed something before .compute()")


@pytest.fixture(scope="module")
def lazy():
    """Dask-backed archive: rank-1 two-cluster structure, shrinkage, noise, imposed m u v^T."""
    p = Planted(n=40, m=(3.0,), clusters=2, noise=0.1, kappa=0.2, align=True, m0=1.5)
    return p, planted(p, n_seed=2, epochs=(0, 4, 8))


@pytest.fixture(scope="module")
def eager(lazy):
    return run(lazy[1])


WRAPPERS = {
    "lowrank_fit": lambda ds: ra.lowrank_fit(ds.dJ, rank=2),
    "shrinkage": lambda ds: ra.shrinkage(ds.dJ, ds.J0, rank=2),
    "imposed_strength": lambda ds: ra.imposed_strength(
        ds.J0 + ds.dJ, ds.J0, ds.imposed_u, ds.imposed_v
    ).to_dataset(),
    "alignment": lambda ds: ra.alignment(ra.lowrank_fit(ds.dJ, rank=2), ds),
    "cluster_stats": lambda ds: ra.cluster_stats(ds, k=2),
    "across_seeds": lambda ds: ra.across_seeds(ra.lowrank_fit(ds.dJ, rank=2)),
    "outliers": lambda ds: ra.outliers(ds),
    "analyze": lambda ds: ra.analyze(ds, rank=2, k=2),
}


@pytest.mark.parametrize("name", list(WRAPPERS))
def test_lazy_until_compute_and_equal_to_numpy(name, lazy, eager):
    with dask.config.set(scheduler=_raise):
        res = WRAPPERS[name](lazy[1])
    for var in res.data_vars.values():
        if "seed" in var.dims and var.name not in ("row_mean", "col_mean"):
            assert var.chunks is not None, f"{name}: {var.name} is not dask-backed"
    with pytest.raises(RuntimeError, match="computed"), dask.config.set(scheduler=_raise):
        res.compute()
    computed = run(res)
    reference = WRAPPERS[name](eager)
    assert all(v.chunks is None for v in reference.data_vars.values())
    xr.testing.assert_allclose(computed, reference, rtol=1e-4, atol=1e-5)


def test_planted_rank2_recovered_through_xarray():
    p = Planted(n=120, m=(4.0, 2.5), noise=0.3)
    ds = planted(p, n_seed=2, epochs=(0, 5, 10), spectra=False)
    fit = run(ra.lowrank_fit(ds.dJ, rank=2))
    for s in range(2):
        truth = p.truth(s)
        last = fit.isel(seed=s, epoch=-1)
        assert np.allclose(last.m, [4.0, 2.5], atol=0.15)
        assert np.max(scipy.linalg.subspace_angles(last.u.values.T, truth["a"])) < 0.2
        assert np.max(scipy.linalg.subspace_angles(last.v.values.T, truth["c"])) < 0.2
        # dJ ramps linearly: half the strength at the middle epoch
        assert np.allclose(fit.m.isel(seed=s, epoch=1), [2.0, 1.25], atol=0.1)
    assert np.isnan(fit.explained.isel(epoch=0)).all()  # dJ = 0 at epoch 0
    assert list(fit["rank"].values) == [1, 2] and fit.sv.sizes["sv"] == 120


def test_shrinkage_recovers_planted_kappa_through_xarray():
    p = Planted(n=100, m=(2.0,), kappa=0.25, g=1.0)
    ds = planted(p, n_seed=2, epochs=(0, 5, 10), spectra=False)
    sh = run(ra.shrinkage(ds.dJ, ds.J0, rank=1))
    # kappa ramps with the epoch; error O(m / (g N^1.5))
    assert np.allclose(sh.kappa.isel(epoch=-1), 0.25, atol=0.01)
    assert np.allclose(sh.kappa.isel(epoch=1), 0.125, atol=0.01)
    assert np.allclose(sh.corr_m.isel(epoch=-1, rank=0), 2.0, atol=0.05)


def test_alignment_labels_and_planted_alignment(lazy):
    p, ds = lazy
    al = run(ra.alignment(ra.lowrank_fit(ds.dJ, rank=2), ds))
    assert list(al.vector.values) == [
        "B:stim1",
        "B:stim2",
        "w:out1",
        "ones",
        "J0B:stim1",
        "J0B:stim2",
        "J0Tw:out1",
    ]
    last = al.isel(epoch=-1)
    # align=True puts B:stim1 along a_1 and w:out1 along c_1 = a_1
    assert (last.align_u.sel(rank=1, vector="B:stim1") > 0.95).all()
    assert (last.align_v.sel(rank=1, vector="w:out1") > 0.95).all()
    # cluster indicators are centred: orthogonal to ones
    assert (last.align_u.sel(rank=1, vector="ones") < 0.1).all()


def test_cluster_stats_finds_planted_blocks(lazy):
    p, ds = lazy
    cs = run(ra.cluster_stats(ds, k=2))
    for s in range(2):
        truth = p.truth(s)
        lab = cs.cluster.isel(seed=s).values
        assert len(set(zip(lab, truth["labels"], strict=True))) == 2  # same partition
        # block means of the planted m a a^T - kappa J0 (exact at the last epoch, t = 1)
        a = truth["a"][:, 0]
        dj = 3.0 * np.outer(a, a) - 0.2 * truth["J0"]
        for x in range(2):
            for y in range(2):
                block = dj[np.ix_(lab == x, lab == y)].mean()
                assert np.isclose(cs.block_dJ.isel(seed=s, epoch=-1)[x, y], block, atol=0.01)
        j0_block = truth["J0"][np.ix_(lab == 0, lab == 1)].mean()
        assert np.isclose(cs.block_J.isel(seed=s, epoch=0)[0, 1], j0_block, atol=1e-5)
    assert "row_mean" in cs and "col_mean" in cs


def test_cluster_stats_user_labels_and_errors(eager):
    lab = np.arange(40) % 3
    cs = ra.cluster_stats(eager, k=3, labels=lab)
    assert np.array_equal(cs.cluster.values, lab)
    mean = eager.dJ.isel(seed=0, epoch=-1).values[np.ix_(lab == 2, lab == 1)].mean()
    assert np.isclose(cs.block_dJ.isel(seed=0, epoch=-1)[2, 1], mean)
    with pytest.raises(AnalysisError, match="labels must lie in 0..1"):
        ra.cluster_stats(eager, k=2, labels=lab)
    with pytest.raises(AnalysisError, match="neurons"):
        ra.cluster_stats(eager, k=2, labels=np.zeros(5, dtype=int))
    with pytest.raises(AnalysisError, match="k must be"):
        ra.cluster_stats(eager, k=0)
    with pytest.raises(AnalysisError, match="features"):
        ra.cluster_stats(eager, k=2, features=("x",))


def test_imposed_strength_planted_shift():
    p = Planted(n=60, m=(0.5,), m0=2.0, rho0=0.6, kappa=0.1)
    ds = planted(p, n_seed=2, epochs=(0, 10), spectra=False)
    got = run(ra.imposed_strength(ds.J0 + ds.dJ, ds.J0, ds.imposed_u, ds.imposed_v))
    for s in range(2):
        t = p.truth(s)
        u, v = t["u0"], t["v0"]
        expect = v @ p.delta(s, 1.0, 1) @ u / (v @ u)  # independent closed form
        assert np.isclose(got.isel(seed=s, epoch=-1), expect, atol=1e-4)
        # dominated by -kappa times the imposed outlier m0 (v.u)
        assert abs(expect + 0.1 * 2.0 * 0.6) < 0.1
    assert np.allclose(got.isel(epoch=0), 0, atol=1e-6)


def test_across_seeds_stats_and_grouping(eager):
    fit = ra.lowrank_fit(eager.dJ, rank=1)
    st = ra.across_seeds(fit)
    assert list(st.stat.values) == ["mean", "sd", "q05", "q50", "q95"]
    m = fit.m.isel(epoch=-1, rank=0).values
    assert np.isclose(st.m.sel(stat="mean").isel(epoch=-1, rank=0), m.mean())
    assert np.isclose(st.m.sel(stat="sd").isel(epoch=-1, rank=0), m.std(ddof=1))
    assert "seed" not in st.dims
    ds = eager.assign_coords(g=("seed", [0.5, 1.0]))
    grouped = ra.across_seeds(ra.lowrank_fit(ds.dJ, rank=1), by="g")
    assert list(grouped.g.values) == [0.5, 1.0]
    assert np.isclose(grouped.m.sel(g=1.0, stat="mean").isel(epoch=-1, rank=0), m[1])
    cs = ra.across_seeds(ra.cluster_stats(eager, k=2))
    assert "cluster" not in cs and "block_dJ" in cs
    with pytest.raises(AnalysisError, match="seed"):
        ra.across_seeds(fit.isel(seed=0))


def test_bad_inputs_have_clear_errors(eager):
    with pytest.raises(AnalysisError, match="rank must be"):
        ra.lowrank_fit(eager.dJ, rank=0)
    with pytest.raises(AnalysisError, match="lacks dimension"):
        ra.lowrank_fit(eager.dJ.rename(neuron_pre="x"), rank=1)
    with pytest.raises(AnalysisError, match="DataArray"):
        ra.lowrank_fit(eager.dJ.values, rank=1)
    with pytest.raises(AnalysisError, match="J0 is"):
        ra.shrinkage(eager.dJ, eager.J0.isel(neuron=slice(3)), rank=1)
    with pytest.raises(AnalysisError, match="needs dJ, or J and J0"):
        ra.analyze(eager.drop_vars(["dJ", "J0"]))


def test_accessor_delegates(eager):
    xr.testing.assert_allclose(eager.rnn.lowrank_fit(rank=2), ra.lowrank_fit(eager.dJ, rank=2))
    xr.testing.assert_allclose(eager.rnn.cluster_stats(k=2), ra.cluster_stats(eager, k=2))
    assert set(eager.rnn.analyze().data_vars) == set(ra.analyze(eager).data_vars)


def test_store_j_archive_equals_store_dj(lazy):
    p, _ = lazy
    a = run(ra.analyze(planted(p, n_seed=1, epochs=(0, 8), store="J")))
    b = run(ra.analyze(planted(p, n_seed=1, epochs=(0, 8), store="dJ")))
    xr.testing.assert_allclose(
        a.drop_vars(["row_mean", "col_mean"]), b.drop_vars(["row_mean", "col_mean"]), atol=1e-4
    )


def test_file_archive_via_open_archive_and_analysis_nc_roundtrip(tmp_path, lazy):
    import rnnlab

    p, ds = lazy
    path = write_archive(ds, tmp_path / "planted.nc")
    opened = rnnlab.open_archive(path)
    assert opened.dJ.data.chunksize == (1, 1, 40, 40)
    with dask.config.set(scheduler=_raise):
        res = ra.analyze(opened, rank=2, k=2)
    computed = ra.compute(res, progress=False)
    xr.testing.assert_allclose(computed, run(ra.analyze(ds)), rtol=1e-4, atol=1e-5)
    out = ra.save_analysis(computed, tmp_path / "analysis.nc")
    raw = xr.open_dataset(out)
    assert raw.outlier.dims[-1] == "ri" and raw.outlier.dtype.kind == "f"
    back = ra.open_analysis(out)
    assert back.outlier.dtype.kind == "c" and back["sv"].dims[-1] == "sv"
    xr.testing.assert_allclose(back, computed)


def test_outliers_planted_mu_vT_measured_and_predicted():
    from rnnlab.spectra.theory import outlier_spread

    n, m, rho, g = 200, 3.0, 0.8, 0.8
    p = Planted(n=n, m=(m,), rho=rho, g=g, m0=2.5, rho0=0.6)
    epochs = tuple(range(11))
    out = run(ra.outliers(planted(p, n_seed=2, epochs=epochs), rank=1))
    theta = m * rho
    sd = outlier_spread(theta, g, n)  # finite-N sd of the outlier about m v^T u
    last = out.isel(epoch=-1)
    for s in range(2):
        meas = last.outlier.isel(seed=s).values
        meas = meas[~np.isnan(meas)]
        assert len(meas) == 2 == int(last.n_outliers.isel(seed=s))
        learned = meas[np.argmin(np.abs(meas - theta))]
        assert abs(learned - theta) < 5 * sd
        # the imposed outlier of J0 = ... + m0 u0 v0^T is there from epoch 0, near m0 rho0
        first = out.outlier.isel(seed=s, epoch=0).values
        assert int(out.n_outliers.isel(seed=s, epoch=0)) == 1
        assert abs(first[~np.isnan(first)][0] - 2.5 * 0.6) < 5 * outlier_spread(1.5, g, n)
        # dJ is exactly rank one: the determinant lemma on J0 is exact; mean field within spread
        ex = last.outlier_exact.isel(seed=s).values
        mf = last.outlier_meanfield.isel(seed=s).values
        slot = int(np.nanargmin(np.abs(last.outlier.isel(seed=s).values - theta)))
        assert abs(ex[slot] - learned) < 1e-6
        assert abs(mf[slot] - theta) < 1e-6 and abs(mf[slot] - learned) < 5 * sd
    # linear phi: Jacobian eigenvalues are eig(J) - 1, crossing 0 when the outlier t*theta
    # (t = epoch/10) passes 1 -- unless the imposed outlier at 1.5 is already past it
    assert (out.max_re_jac.isel(epoch=0) > 0).all()
    assert np.isnan(out.crossing_epoch).all()  # started above 0: no upward crossing
    assert np.allclose(out.bulk_radius, g * (1 + 2 / np.sqrt(n)))


def test_outliers_crossing_epoch_of_learned_outlier():
    n, m, rho, g = 150, 3.0, 0.8, 0.8
    p = Planted(n=n, m=(m,), rho=rho, g=g)
    out = run(ra.outliers(planted(p, n_seed=1, epochs=tuple(range(11))), rank=1))
    assert int(out.n_outliers.isel(seed=0, epoch=0)) == 0
    # mean field: the outlier sits at t theta and crosses Re = 1 at t = 1/theta
    assert abs(float(out.crossing_epoch[0]) - 10 / (m * rho)) < 0.5


def test_outliers_needs_spectra(eager):
    with pytest.raises(AnalysisError, match="eigvals"):
        ra.outliers(eager.drop_vars("eigvals"))
    with pytest.raises(AnalysisError, match="slots"):
        ra.outliers(eager, slots=0)


def test_imposed_strength_from_dj_equals_from_j(eager):
    a = ra.imposed_strength(eager.J0 + eager.dJ, eager.J0, eager.imposed_u, eager.imposed_v)
    b = ra.imposed_strength(u=eager.imposed_u, v=eager.imposed_v, dJ=eager.dJ)
    xr.testing.assert_allclose(a, b, atol=1e-5)
    assert np.allclose(eager.rnn.imposed_strength(), b)
    with pytest.raises(AnalysisError, match="needs J and J0"):
        ra.imposed_strength(u=eager.imposed_u, v=eager.imposed_v)


def test_group_epochs_with_mixed_chunking(lazy):
    from rnnlab.analysis.pipeline import group_epochs

    _, ds = lazy
    ds = ds.assign(loss=(("seed", "epoch"), dask.array.zeros((2, 3), chunks=(1, 3))))
    grouped = group_epochs(ds, 2)
    assert grouped.dJ.data.chunks[:2] == ((1, 1), (2, 1))
    assert group_epochs(ds).dJ.data.chunks[1] == (3,)  # auto: 2.5 MB / (40*40*4 B) epochs
    xr.testing.assert_allclose(
        run(ra.analyze(ds, epochs_per_task=2)), run(ra.analyze(ds, epochs_per_task=1))
    )
    with pytest.raises(AnalysisError, match="epochs_per_task"):
        ra.analyze(ds, epochs_per_task=0)


def test_real_training_archive(tiny_archive, tmp_path):
    """A real (tiny) run: every part of the analysis dataset is there and finite where defined."""
    import rnnlab

    ds = rnnlab.open_archive(tiny_archive)
    res = run(ra.analyze(ds, rank=2, k=2))
    names = [
        "m",
        "u",
        "v",
        "explained",
        "explained_cum",
        "sv",
        "kappa",
        "corr_m",
        "ones_align_u",
        "align_u",
        "align_v",
        "outlier",
        "outlier_meanfield",
        "outlier_exact",
        "n_outliers",
        "max_re_jac",
        "crossing_epoch",
        "bulk_radius",
        "cluster",
        "block_J",
        "block_dJ",
    ]
    missing = [n for n in names if n not in res.variables]
    assert not missing
    last = res.isel(epoch=-1)
    assert np.isfinite(last.m).all() and (last.m >= 0).all()
    assert np.allclose((last.u**2).sum("neuron"), 1)
    # ||dJ||_F^2 = sum of all squared singular values
    expl = (last.m**2).sum("rank") / (last.sv**2).sum("sv")
    assert np.allclose(last.explained_cum.isel(rank=-1), expl)
    assert np.allclose(last.bulk_radius, ds.g * (1 + 2 / np.sqrt(ds.sizes["neuron"])))
    back = ra.open_analysis(ra.save_analysis(res, tmp_path / "analysis.nc"))
    xr.testing.assert_allclose(back, res)
    per_g = ra.across_seeds(res, by="g")  # g: a per-run setting, a coordinate of the results
    assert per_g.sizes["g"] == len(np.unique(ds.g.values)) and "stat" in per_g.dims


def test_analyze_keeps_cluster_labels_categorical(tiny_archive, tmp_path):
    """analyze keeps the categorical marker of `cluster` (lazy, computed and through analysis.nc),
    so across_seeds never averages cluster labels; the labels are those of cluster_stats."""
    import rnnlab

    ds = rnnlab.open_archive(tiny_archive)
    lazy_res = ra.analyze(ds, rank=2, k=2)
    assert lazy_res["cluster"].attrs.get("rnnlab_categorical")
    assert lazy_res["m"].attrs.get("units") == "1"  # variable attrs survive the merge
    res = run(lazy_res)
    alone = run(ra.cluster_stats(ds, k=2, fit=ra.lowrank_fit(ds.dJ, rank=2)))
    np.testing.assert_array_equal(res["cluster"].values, alone["cluster"].values)
    assert res["cluster"].dtype == alone["cluster"].dtype
    back = ra.open_analysis(ra.save_analysis(res, tmp_path / "analysis.nc"))
    for obj in (lazy_res, res, back):
        summary = ra.across_seeds(obj)
        assert "cluster" not in summary.variables and "block_dJ" in summary
    assert "cluster" not in ra.across_seeds(back, by="g").variables


def test_analyze_runs_sharing_seeds(twin_runs, tmp_path):
    """Two real runs with the same seeds and name open, analyse, summarise and report together."""
    import rnnlab
    from rnnlab.analysis.report.build import write_report

    a, b = twin_runs
    ds = rnnlab.open_archive(a.parent)
    res = run(ra.analyze(ds, rank=2, k=2))
    assert res.sizes["seed"] == 4 and list(res.seed.values) == [0, 1, 0, 1]
    assert "seed" not in res.indexes and list(res.run.values) == list(ds.run.values)
    summary = ra.across_seeds(res)
    assert "seed" not in summary.variables and summary["m"].dims[-1] == "stat"
    per_run = ra.across_seeds(res, by="run")
    assert per_run.sizes["run"] == 2 and "cluster" not in per_run.variables
    back = ra.open_analysis(ra.save_analysis(res, tmp_path / "analysis.nc"))
    assert "seed" not in back.indexes
    xr.testing.assert_allclose(back, res)
    written = write_report(ds, res, tmp_path / "report", png=False, quiet=True)
    text = written["summary.md"].read_text(encoding="utf-8")
    table = text.split("## Headline numbers per seed", 1)[1].split("\n## ", 1)[0]
    rows = [r for r in table.splitlines() if r.startswith("| ")]
    assert rows[0].startswith("| run | seed |") and len(rows) == 1 + 4 + 1
    firsts = {tuple(c.strip() for c in r.strip("|").split("|")[:2]) for r in rows[1:-1]}
    assert len(firsts) == 4  # two 'seed 0' rows, told apart by their run
    ds.close()
    for path, members in ((a, [0, 1]), (b, [2, 3])):  # each run's members = that run alone
        single = rnnlab.open_archive(path)
        alone = run(ra.analyze(single, rank=2, k=2))
        np.testing.assert_allclose(res.m.isel(seed=members).values, alone.m.values, rtol=1e-6)
        single.close()
