"""Headline numbers of a run: per-seed values at the last epoch and mean ± sd across seeds.

`headline` computes them into a small Dataset (dim `seed`, plus `vector` for alignments);
`markdown` and `html_tables` format that Dataset for summary.md and the top of report.html.
"""

from __future__ import annotations

import html

import numpy as np
import xarray as xr

from rnnlab.analysis.report import inloop_summary
from rnnlab.data.members import drop_repeated_seed_index, member_runs

# (variable, header, integer-valued) for the main table, in column order
MAIN_COLUMNS = [
    ("g", "g", False),
    ("final_loss", "final loss", False),
    ("final_mse", "final MSE", False),
    ("rank90", "R for 90% of ‖ΔJ‖²", True),
    ("m1", "m_1", False),
    ("m2", "m_2", False),
    ("kappa", "κ (shrinkage)", False),
    ("n_outliers", "outliers", True),
    ("re_out", "Re λ_out measured", False),
    ("re_out_meanfield", "Re λ_out mean-field", False),
    ("re_out_exact", "Re λ_out exact", False),
    ("crossing_epoch", "crossing epoch", False),
]
ACROSS_LABEL = "mean ± sd"
MISSING = "–"


def rank_needed(sv: xr.DataArray, frac: float = 0.9, dim: str = "sv") -> xr.DataArray:
    """Smallest R whose top-R singular values hold >= `frac` of sum(sv²); NaN when sv is all 0."""
    if not 0 < frac <= 1:
        raise ValueError(f"frac must be in (0, 1], got {frac}")
    energy = sv**2
    total = energy.sum(dim)
    cum = energy.cumsum(dim) / total.where(total > 0)
    rank = (cum < frac * (1 - 1e-12)).sum(dim) + 1
    return rank.where(total > 0)


def _leading_re(da: xr.DataArray) -> xr.DataArray:
    """Largest real part over the `outlier` dim (NaN when a seed has no outlier)."""
    return xr.apply_ufunc(np.real, da).max("outlier", skipna=True)


def _rank_value(da: xr.DataArray, r: int) -> xr.DataArray:
    """Entry r of the `rank` dim, or NaN when the fit has fewer ranks."""
    if da.sizes["rank"] > r:
        return da.isel(rank=r, drop=True)
    return xr.full_like(da.isel(rank=0, drop=True), np.nan, dtype=float)


def headline(archive: xr.Dataset, results: xr.Dataset, frac: float = 0.9) -> xr.Dataset:
    """Per-seed headline numbers at the last epoch of `results` (loss/MSE: last archive epoch)."""
    last = results.isel(epoch=-1, drop=True)
    out = xr.Dataset(
        {
            "final_loss": archive["loss"].isel(epoch=-1, drop=True),
            "final_mse": archive["mse"].isel(epoch=-1, drop=True),
            "rank90": rank_needed(last["sv"], frac),
            "m1": _rank_value(last["m"], 0),
            "m2": _rank_value(last["m"], 1),
            "n_outliers": last["n_outliers"],
            "re_out": _leading_re(last["outlier"]),
            "re_out_meanfield": _leading_re(last["outlier_meanfield"]),
            "re_out_exact": _leading_re(last["outlier_exact"]),
            "crossing_epoch": results["crossing_epoch"],
            "align_u": last["align_u"].isel(rank=0, drop=True),
            "align_v": last["align_v"].isel(rank=0, drop=True),
        }
    ).reset_coords(drop=True)
    labels = {  # seed and run name each row (several runs can share seed values)
        c: ("seed", results[c].values)
        for c in ("seed", "run")
        if c in results.coords and results[c].dims == ("seed",)
    }
    out = drop_repeated_seed_index(out.assign_coords(labels))
    g = archive["g"] if "g" in archive.variables else results["bulk_radius"]
    out["g"] = ("seed", np.asarray(g.values, float))
    diverged = archive["diverged_epoch"].values if "diverged_epoch" in archive else None
    out["diverged_epoch"] = (
        "seed",
        np.full(out.sizes["seed"], np.nan) if diverged is None else np.asarray(diverged, float),
    )
    kappa = last["kappa"].values if "kappa" in last else np.full(out.sizes["seed"], np.nan)
    out["kappa"] = ("seed", np.asarray(kappa, float))
    out = out.assign(inloop_summary.fields(archive, results))  # fresh trials, ladder, crossings
    out = out.astype(float)
    out.attrs.update(
        last_epoch=int(results["epoch"][-1]),
        mse_optimal=float(archive["mse_optimal"]),
        frac=frac,
        fit_rank=int(results.sizes.get("rank", 2)),
        n_eval_trials=int(archive.sizes.get("trial", 0)),
    )
    if "mse" in results.variables and "n_trials" in results["mse"].attrs:
        out.attrs["n_trials"] = int(results["mse"].attrs["n_trials"])
    return out


def fmt(x: float, integer: bool = False) -> str:
    """A number for a table: 4 significant digits, integers as such, NaN as a dash."""
    if not np.isfinite(x):
        return MISSING
    return f"{int(round(x))}" if integer else f"{x:.4g}"


def fmt_across(values: np.ndarray) -> str:
    """`mean ± sd` over seeds (NaNs ignored, sd with ddof=1; sd omitted for a single value),
    followed by `(n = k)` when only k of the seeds have a value."""
    v = np.asarray(values, float)
    total = v.size
    v = v[np.isfinite(v)]
    if v.size == 0:
        return MISSING
    note = f" (n = {v.size})" if v.size < total else ""
    if v.size == 1:
        return f"{v[0]:.4g}{note}"
    mean, sd = v.mean(), v.std(ddof=1)
    if sd <= 1e-9 * abs(mean):  # equal values: no rounding noise like 1e-16
        sd = 0.0
    return f"{mean:.4g} ± {sd:.3g}{note}"


def fmt_cell(values: np.ndarray, i: int, kind, summary: xr.Dataset | None = None) -> str:
    """Entry i of a column: a number (`kind` True: an integer), or value ± SE for a kind
    (inloop_summary.SE, name of the SE variable[, format spec])."""
    if isinstance(kind, tuple) and kind[0] == inloop_summary.SE and summary is not None:
        x, se = float(values[i]), float(summary[kind[1]].values[i])
        spec, se_spec = (kind[2], kind[2].lstrip("+")) if len(kind) > 2 else (".4g", ".2g")
        if not np.isfinite(x):
            return MISSING
        return f"{x:{spec}} ± {se:{se_spec}}" if np.isfinite(se) else f"{x:{spec}}"
    return fmt(float(values[i]), kind is True)


def _rows(seeds, columns, runs=None, summary=None) -> tuple[list[str], list[list[str]]]:
    """Header and body (one row per seed, then the across-seed row) from (values, header, kind).

    With `runs` (members from several runs) a first `run` column names each row's run.
    """
    lead = ["run", "seed"] if runs else ["seed"]
    header = lead + [h for _, h, _ in columns]
    body = [
        ([runs[i]] if runs else [])
        + [str(seed)]
        + [fmt_cell(vals, i, kind, summary) for vals, _, kind in columns]
        for i, seed in enumerate(seeds)
    ]
    across = [ACROSS_LABEL] + [""] * (len(lead) - 1)
    body.append(across + [fmt_across(vals) for vals, _, _ in columns])
    return header, body


def tables(summary: xr.Dataset) -> dict[str, tuple[list[str], list[list[str]]]]:
    """The three tables: `main` numbers, alignments of u_1 (`u`) and of v_1 (`v`)."""
    seeds, runs = summary["seed"].values, member_runs(summary)
    columns = inloop_summary.main_columns(summary, MAIN_COLUMNS)
    main = [(summary[v].values, h, i) for v, h, i in columns]
    out = {"main": _rows(seeds, main, runs, summary)}
    for which in ("u", "v"):
        da = summary[f"align_{which}"].transpose("seed", "vector")
        cols = [(da.values[:, j], str(vec), False) for j, vec in enumerate(da["vector"].values)]
        out[which] = _rows(seeds, cols, runs)
    return out


def runs_note(summary: xr.Dataset) -> str:
    """` from 2 runs` when the members come from several runs, else an empty string."""
    runs = member_runs(summary)
    return f" from {len(set(runs))} runs" if runs else ""


def diverged_note(summary: xr.Dataset) -> str:
    """Which seeds diverged (were frozen) and when: one sentence for summary.md and the page."""
    epochs = summary["diverged_epoch"].values if "diverged_epoch" in summary else []
    bad = [i for i, e in enumerate(epochs) if np.isfinite(e)]
    if not bad:
        return "No seed diverged."
    runs = member_runs(summary)
    names = [
        (f"{runs[i]} " if runs else "") + f"seed {summary['seed'].values[i]} at epoch "
        f"{int(epochs[i])}"
        for i in bad
    ]
    return (
        f"Diverged (loss or parameters non-finite; frozen from then on, their rows show the "
        f"frozen network): {', '.join(names)}."
    )


def _md_table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


DEFINITIONS = """\
- **MSE ± SE (fresh trials)**: the stored network of the last snapshot re-simulated on fresh
  trials (its seed's own stream, never a training or evaluation trial), mean and standard error
  over the trials; **excess** = MSE − MSE*. Without it (`--no-network`): **final loss / final
  MSE** on the archive's few fixed evaluation trials, which scatter by tens of %.
- **R for 90% of ‖ΔJ‖²**: smallest rank whose leading singular values of ΔJ = J − J0 hold
  90% of ‖ΔJ‖²_F.
- **functional rank**: smallest R of the evaluated ranks whose J0 + ΔJ_R (ΔJ_R: best rank-R
  approximation) has an excess loss over the full ΔJ of at most 5% of that of R = 0 (J0 alone),
  on the same fresh trials (Schuessler et al. 2020).
- **m_1, m_2**: leading singular values of ΔJ (strengths of the rank-1 terms m_r u_r v_rᵀ).
- **κ**: shrinkage −⟨ΔJ, J0⟩/‖J0‖²_F (how much training scales the random bulk down).
- **outliers**: eigenvalues of J outside the bulk edge |λ| > g (1 + 2/√N) (the finite-N edge
  the outlier rule uses), at epoch 0 and at the last epoch.
- **Re λ_out**: largest real part among the outliers: measured, and predicted from the rank-R
  fit of ΔJ (R as labelled) by the mean-field overlap matrix and by the exact determinant lemma
  on J0. **J0 + ΔJ_R reproduces λ_out from R**: the outlier ladder, the smallest R from which an
  eigenvalue of J0 + ΔJ_R lies within the outlier's finite-N spread.
- **crossing epoch (Jacobian at origin)**: epoch at which max Re λ of −I + J (φ'(0) = 1), i.e.
  max Re λ(J) − 1, crosses 0 upward, from the snapshot spectra (– if never).
  **crossing epoch (Jacobian at mean state)**: the same for −I + J diag(φ'(h̄)) at the
  trials' mean state h̄.
- **alignment**: |cos| between u_1 (v_1) and each task vector; chance ≈ √(2/(πN)).
- Across seeds: mean ± sample sd (ddof = 1), ignoring missing values; (n = k) when only k
  seeds have a value."""


def markdown(
    summary: xr.Dataset, title: str = "rnnlab run", verdict: str = "", before: str = ""
) -> str:
    """summary.md: the verdict (markdown, when given), `before` (markdown put ahead of the
    per-seed tables: a sweep's phase table), the headline tables in markdown, with a definitions
    list."""
    t = tables(summary)
    opt = summary.attrs["mse_optimal"]
    parts = [
        f"# Summary: {title}",
        f"Seeds: {summary.sizes['seed']}{runs_note(summary)}. "
        f"Last epoch: {summary.attrs['last_epoch']}. "
        f"Task optimum MSE* = {fmt(opt)}.",
        diverged_note(summary),
        *([verdict] if verdict else []),
        *([before] if before else []),
        "## Headline numbers per seed",
        _md_table(*t["main"]),
        "## Alignment |cos| of u_1 with the task vectors",
        _md_table(*t["u"]),
        "## Alignment |cos| of v_1 with the task vectors",
        _md_table(*t["v"]),
        "## Definitions",
        DEFINITIONS,
    ]
    return "\n\n".join(parts) + "\n"


def html_table(header: list[str], body: list[list[str]], cls: str = "headline") -> str:
    """An HTML table; the across-seed row gets class `across`."""
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    rows = []
    for row in body:
        attr = ' class="across"' if row[0] == ACROSS_LABEL else ""
        rows.append(f"<tr{attr}>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>")
    return (
        f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )
