"""The study's numbers, read from its archives and analyses (nothing here is typed by hand).

`collect(done)` returns a nested dict: per config its facts (study_render.py words them), and the
comparisons across configs (optimizers, sizes, task dimension, the phase grid, the controls).
Every statistic over seeds is a `Stat` (mean, sd with ddof = 1, n, min, max, median).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import rnnlab
import rnnlab.analysis as ra
from rnnlab.analysis.report.headline import rank_needed
from rnnlab.spectra.conventions import bulk_edge, crossing_epoch


@dataclass(frozen=True)
class Stat:
    """A statistic of finite values over seeds (or points)."""

    mean: float
    sd: float
    n: int
    total: int
    lo: float
    hi: float
    median: float

    @classmethod
    def of(cls, values: Any) -> Stat:
        v = np.asarray(values, dtype=float).ravel()
        total = v.size
        v = v[np.isfinite(v)]
        if v.size == 0:
            return cls(np.nan, np.nan, 0, total, np.nan, np.nan, np.nan)
        sd = float(v.std(ddof=1)) if v.size > 1 else np.nan
        return cls(
            float(v.mean()),
            sd,
            int(v.size),
            total,
            float(v.min()),
            float(v.max()),
            float(np.median(v)),
        )


def last_eval(res, name: str) -> np.ndarray:
    da = res[name]
    return np.asarray(da.isel(eval_epoch=-1).values if "eval_epoch" in da.dims else da.values)


def leading(z: np.ndarray) -> np.ndarray:
    """The entry of largest real part along the last axis (NaN rows stay NaN)."""
    re = np.where(np.isfinite(z.real), z.real, -np.inf)
    idx = re.argmax(axis=-1)
    out = np.take_along_axis(z, idx[..., None], -1)[..., 0]
    return np.where(np.isfinite(re).any(axis=-1), out, np.nan + 0j)


def run_facts(archive: Path, report: Path) -> dict[str, Any]:
    """The facts of one run (or one sweep point analysed alone)."""
    ds = rnnlab.open_archive(archive)
    res = ra.open_analysis(report / "analysis.nc")
    n_seeds = ds.sizes["seed"]
    N = ds.sizes["neuron"]
    g = float(np.asarray(ds["g"].values).ravel()[0])
    last = res.isel(epoch=-1)
    out: dict[str, Any] = {"n": n_seeds, "N": N, "g": g, "epochs": int(ds.epoch.values[-1])}
    optimum = float(ds.mse_optimal)
    out["optimum"] = optimum
    mse = last_eval(res, "mse")
    out["mse"] = Stat.of(mse)
    out["excess_pct"] = Stat.of(100 * (mse - optimum) / optimum if optimum > 0 else np.nan)
    se = last_eval(res, "mse_se")
    out["below"] = int(np.sum(mse + 2 * se < optimum))
    out["se_pct"] = Stat.of(100 * se / optimum if optimum > 0 else np.nan)
    out["functional_rank"] = Stat.of(last_eval(res, "functional_rank"))
    out["functional_rank_split"] = Stat.of(last_eval(res, "functional_rank_split"))
    out["rank90"] = Stat.of(rank_needed(last["sv"], 0.9).values)
    # the regulariser-aware split: ΔJ = −κ J0 + residual (κ: shrinkage of J0)
    out["kappa"] = Stat.of(last["kappa"].values) if "kappa" in last else Stat.of([])
    if "corr_sv" in last:
        out["rank90_residual"] = Stat.of(rank_needed(last["corr_sv"], 0.9).values)
        ccum = last["corr_explained_cum"]
        out["explained2_residual"] = Stat.of(ccum.isel(rank=min(1, ccum.sizes["rank"] - 1)).values)
    else:
        out["rank90_residual"] = out["explained2_residual"] = Stat.of([])
    cum = last["explained_cum"]
    out["explained1"] = Stat.of(cum.sel(rank=1).values)
    out["explained2"] = Stat.of(cum.sel(rank=2).values) if cum.sizes["rank"] > 1 else Stat.of([])
    out["m1"] = Stat.of(last["m"].sel(rank=1).values)
    out["m2"] = Stat.of(last["m"].sel(rank=2).values) if last.sizes["rank"] > 1 else Stat.of([])
    out["align_u"] = {
        str(v): Stat.of(last["align_u"].sel(rank=1, vector=v).values) for v in last["vector"].values
    }
    out["align_v"] = {
        str(v): Stat.of(last["align_v"].sel(rank=1, vector=v).values) for v in last["vector"].values
    }
    out["chance_align"] = float(np.sqrt(2 / (np.pi * N)))
    out["edge"] = float(bulk_edge(g, N))
    out["outliers0"] = Stat.of(res["n_outliers"].isel(epoch=0).values)
    out["outliers_end"] = Stat.of(last["n_outliers"].values)
    # Re λ(J) crossing 1 (the Jacobian at the origin crossing 0), from the exact snapshot spectra
    eig = ds["eigvals"].transpose("seed", "epoch", "eig").values
    max_re = eig.real.max(axis=-1)
    epochs = ds.epoch.values
    cross = np.asarray(crossing_epoch(epochs, max_re, level=1.0), float)
    out["crossed"] = int(np.isfinite(cross).sum())
    out["crossing_origin"] = Stat.of(cross)
    out["crossing_mean"] = Stat.of(np.asarray(res["crossing_epoch"].values, float))
    out["max_re_end"] = Stat.of(max_re[:, -1])
    out["above_end"] = int(np.sum(np.isfinite(cross) & (max_re[:, -1] > 1)))  # crossed, stayed
    edge = float(bulk_edge(g, N))
    out["pos_outliers_end"] = Stat.of(((eig[:, -1].real > 0) & (np.abs(eig[:, -1]) > edge)).sum(-1))
    out["max_re_0"] = Stat.of(max_re[:, 0])
    # leading outlier at the end, and its predictions from the rank-2 fit
    lead = leading(np.asarray(res["outlier"].isel(epoch=-1).values))
    out["lead_re"] = Stat.of(lead.real)
    for key in ("exact", "meanfield"):
        pred = np.asarray(last[f"outlier_{key}"].values)
        miss = [
            np.nanmin(np.abs(p - z)) if np.isfinite(p).any() and np.isfinite(z) else np.nan
            for p, z in zip(pred, lead, strict=True)
        ]
        out[f"miss_{key}"] = Stat.of(miss)
    measured = np.asarray(res["ladder_measured"].isel(eval_epoch=-1).values)
    from_rank = np.asarray(res["ladder_from_rank"].isel(eval_epoch=-1).values)
    from_rank_mf = np.asarray(res["ladder_from_rank_meanfield"].isel(eval_epoch=-1).values)
    which = np.array(
        [
            np.nanargmax(np.where(np.isfinite(m.real), m.real, -np.inf))
            if np.isfinite(m.real).any()
            else -1
            for m in measured
        ]
    )
    pick = lambda a: np.array([a[i, w] if w >= 0 else np.nan for i, w in enumerate(which)])  # noqa: E731
    out["ladder_rank"] = Stat.of(pick(from_rank))
    out["ladder_rank_meanfield"] = Stat.of(pick(from_rank_mf))
    out["ladder_never"] = int(
        np.sum([w >= 0 and not np.isfinite(from_rank[i, w]) for i, w in enumerate(which)])
    )
    out["shuffle_lost"] = Stat.of(100 * last_eval(res, "shuffle_lost"))
    nfp = res["n_fixed_points"].isel(u_const=0)
    out["fixed_points_end"] = Stat.of(nfp.isel(epoch=-1).values)
    out["stable_end"] = Stat.of(res["n_stable"].isel(u_const=0, epoch=-1).values)
    out["epochs_multi_fp"] = Stat.of((nfp > 1).sum("epoch").values)
    out["seeds_multi_fp"] = int(((nfp > 1).any("epoch")).sum())
    dj = ds["dJ"] if "dJ" in ds else ds["J"] - ds["J0"]
    dj_norm = np.sqrt((dj.isel(epoch=-1) ** 2).sum(("neuron", "neuron_pre")).values)
    j0_norm = np.sqrt((ds["J0"] ** 2).sum(("neuron", "neuron_pre")).values)
    out["dj_norm"] = Stat.of(dj_norm)
    out["dj_rel"] = Stat.of(dj_norm / j0_norm)
    cos = (dj.isel(epoch=-1) * ds["J0"]).sum(("neuron", "neuron_pre")).values / (dj_norm * j0_norm)
    out["cos_dj_j0"] = Stat.of(cos)
    # the learned residual ΔJ + κ J0 (κ per seed: the shrinkage of J0, `kappa` of the analysis)
    kappa = np.asarray(last["kappa"].values, float) if "kappa" in last else np.zeros(n_seeds)
    resid = dj.isel(epoch=-1) + kappa[:, None, None] * ds["J0"]
    out["residual_norm"] = Stat.of(np.sqrt((resid**2).sum(("neuron", "neuron_pre")).values))
    lam = np.asarray(res["lambda_task"].values, float) if "lambda_task" in res else np.nan
    out["lambda_task"] = float(np.nanmean(lam)) if np.isfinite(lam).any() else np.nan
    if np.isfinite(out["lambda_task"]):
        ev = eig[:, -1]
        near = ev[np.arange(len(ev)), np.abs(ev - out["lambda_task"]).argmin(axis=-1)]
        out["nearest_to_task"] = Stat.of(near.real)
        out["task_gap"] = Stat.of(np.abs(near - out["lambda_task"]))
        ev0 = eig[:, 0]  # the same distance before learning: what chance gives in this bulk
        near0 = ev0[np.arange(len(ev0)), np.abs(ev0 - out["lambda_task"]).argmin(axis=-1)]
        out["task_gap0"] = Stat.of(np.abs(near0 - out["lambda_task"]))
    out["explained2_by_epoch"] = (
        {
            int(e): Stat.of(res["explained_cum"].sel(epoch=e, rank=2).values)
            for e in res.epoch.values
        }
        if res.sizes["rank"] > 1
        else {}
    )
    ds.close()
    return out


def grid_facts(report: Path) -> dict[str, Any]:
    """The phase grid of a sweep: per point, mean over seeds of the headline numbers."""
    res = ra.open_analysis(report / "analysis.nc")
    dims = [d for d in res["mse"].dims if d not in ("seed", "eval_epoch")]
    last = res.isel(epoch=-1)
    table = []
    for point in _points(res, dims):
        cell = last.sel(point)
        opt = float(np.nanmean(cell["mse_optimal"].values))
        mse = last_eval(res.sel(point), "mse")
        row = {"point": point, "n": int(np.isfinite(mse).sum())}
        row["mse_ratio"] = Stat.of(mse / opt) if opt > 0 else Stat.of(mse)
        row["functional_rank"] = Stat.of(last_eval(res.sel(point), "functional_rank"))
        row["rank90"] = Stat.of(rank_needed(cell["sv"], 0.9).values)
        row["outliers_end"] = Stat.of(cell["n_outliers"].values)
        lead = leading(np.asarray(cell["outlier"].values))
        row["lead_re"] = Stat.of(lead.real)
        row["crossing_mean"] = Stat.of(np.asarray(res["crossing_epoch"].sel(point).values, float))
        table.append(row)
    return {"dims": dims, "rows": table}


def _points(res, dims: list[str]) -> list[dict[str, Any]]:
    import itertools

    values = [list(res[d].values) for d in dims]
    return [dict(zip(dims, combo, strict=True)) for combo in itertools.product(*values)]


def balance_facts(source: Path, report: Path) -> dict[str, Any]:
    """With and without the balance term: column means of J, the -b eigenvalue, ΔJ's rank."""
    ds = rnnlab.open_archive(source)
    res = ra.open_analysis(report / "analysis.nc")
    dim = [d for d in res["mse"].dims if d not in ("seed", "eval_epoch")][0]
    out = {"dim": dim, "rows": []}
    for value in res[dim].values:
        arch = ds.sel({dim: value})
        col = np.abs(arch["col_mean"].isel(epoch=-1)).mean("neuron_pre").values
        col0 = np.abs(arch["col_mean"].isel(epoch=0)).mean("neuron_pre").values
        eig = arch["eigvals"].isel(epoch=-1).values
        b = float(np.asarray(arch["b"].values).ravel()[0])
        near_b = eig[..., :][np.arange(eig.shape[0]), np.abs(eig + b).argmin(-1)]
        r = res.sel({dim: value})
        out["rows"].append(
            {
                "value": float(value),
                "b": b,
                "col_mean": Stat.of(col),
                "col_mean0": Stat.of(col0),
                "eig_near_minus_b": Stat.of(near_b.real),
                "functional_rank": Stat.of(last_eval(r, "functional_rank")),
                "rank90": Stat.of(rank_needed(r.isel(epoch=-1)["sv"], 0.9).values),
                "excess_pct": Stat.of(100 * last_eval(r, "excess") / np.nanmean(arch.mse_optimal)),
            }
        )
    ds.close()
    return out


def collect(done: dict[str, tuple[Path, list[Path]]]) -> dict[str, Any]:
    """Every number docs/study.md states."""
    facts: dict[str, Any] = {}
    for name, (source, reports) in done.items():
        if source.suffix == ".nc":  # a single run (sweeps are directories of points)
            facts[name] = run_facts(source, reports[0])
    source, reports = done["phase_phi_g"]
    facts["phase"] = grid_facts(reports[0])
    source, reports = done["balance"]
    facts["balance"] = balance_facts(source, reports[0])
    source, reports = done["size"]
    sizes = []
    for report in reports:
        archive = source / f"{report.name}.nc"
        sizes.append(run_facts(archive, report))
    facts["size"] = sorted(sizes, key=lambda f: f["N"])
    return facts
