"""Headline numbers from the analyses that put the network back in the loop, and the columns of
the headline table that show them.

`fields` adds per-member numbers to the headline dataset (fresh-trial MSE ± SE, functional rank,
outliers at epoch 0, both crossing epochs, the ladder's rank for the leading outlier, the shuffle
control, lambda_task); `main_columns` turns headline.MAIN_COLUMNS into the table that is shown:
fresh-trial MSE ± SE instead of the few fixed evaluation trials when there is one, predictions
labelled with the rank of the fit they assume, distinct names for the two crossing epochs.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from rnnlab.spectra.conventions import crossing_epoch

__all__ = ["fields", "main_columns", "zero_input", "SE"]

SE = "se"  # column kind: the value ± the variable named in the column's `se` entry


def _nan(n: int) -> np.ndarray:
    return np.full(n, np.nan)


def _leading_slot(outlier: xr.DataArray) -> np.ndarray:
    """Per member, the slot of the outlier with the largest real part (-1 when none)."""
    re = np.real(outlier.values)
    has = np.isfinite(re).any(axis=-1)
    slot = np.argmax(np.where(np.isfinite(re), re, -np.inf), axis=-1)
    return np.where(has, slot, -1)


def _at_slot(values: np.ndarray, slot: np.ndarray) -> np.ndarray:
    out = np.full(slot.shape, np.nan, dtype=values.dtype)
    for i, k in enumerate(slot):
        if k >= 0:
            out[i] = values[i, k]
    return out


def zero_input(results: xr.Dataset) -> xr.Dataset:
    """`results` at the constant input u_const = 0 of the fixed-point analysis (the first input
    when none is 0)."""
    u = results["u_const"].values
    k = int(np.flatnonzero(u == 0)[0]) if (u == 0).any() else 0
    return results.isel(u_const=k)


def _last_eval(res: xr.Dataset, name: str) -> xr.DataArray | None:
    """`name` at the last evaluated epoch (dim eval_epoch), or None when absent."""
    if name not in res.variables:
        return None
    da = res[name]
    return da.isel(eval_epoch=-1, drop=True) if "eval_epoch" in da.dims else da


def fields(archive: xr.Dataset, results: xr.Dataset) -> dict[str, tuple[str, np.ndarray]]:
    """Per-member numbers (dim seed) for the headline dataset; NaN where an analysis is absent."""
    n = results.sizes["seed"]
    epochs = results["epoch"].values
    out: dict[str, np.ndarray] = {}
    # Re λ(J) crossing 1 is max Re λ of the Jacobian at the origin (-I + φ'(0) J, φ'(0) = 1)
    # crossing 0, from the exact snapshot spectra; back below 1: the first downward crossing
    eig = archive["eigvals"].sel(epoch=epochs).transpose("seed", "epoch", "eig")
    max_re = np.real(eig.values).max(axis=-1)
    out["crossing_origin"] = np.asarray(crossing_epoch(epochs, max_re, level=1.0), float)
    out["recross_origin"] = np.asarray(crossing_epoch(epochs, -max_re, level=-1.0), float)
    out["max_re_last"] = max_re[:, -1]
    out["crossing_mean"] = np.asarray(results["crossing_epoch"].values, float)
    out["n_outliers0"] = np.asarray(results["n_outliers"].isel(epoch=0).values, float)
    for name, key in (("mse", "mse_fresh"), ("mse_se", "mse_fresh_se"), ("excess", "excess")):
        da = _last_eval(results, name)
        out[key] = _nan(n) if da is None else np.asarray(da.values, float)
    for name in ("functional_rank", "functional_rank_split", "shuffle_lost"):
        da = _last_eval(results, name)
        out[name] = _nan(n) if da is None else np.asarray(da.values, float)
    opt = float(archive["mse_optimal"])
    scale = 100.0 / opt if np.isfinite(opt) and opt > 0 else np.nan
    out["excess_pct"], out["excess_pct_se"] = out["excess"] * scale, out["mse_fresh_se"] * scale
    lam = results["lambda_task"].values if "lambda_task" in results.variables else _nan(n)
    out["lambda_task"] = np.asarray(lam, float)
    slot = _leading_slot(results["outlier"].isel(epoch=-1))
    out["ladder_tol"] = out["ladder_from"] = out["ladder_from_mf"] = _nan(n)
    ladder = _last_eval(results, "ladder_from_rank")
    last_eval = results["eval_epoch"].values[-1] if "eval_epoch" in results.coords else None
    if ladder is not None and last_eval == epochs[-1]:
        out["ladder_from"] = _at_slot(ladder.values, slot)
        out["ladder_from_mf"] = _at_slot(
            _last_eval(results, "ladder_from_rank_meanfield").values, slot
        )
        out["ladder_tol"] = _at_slot(_last_eval(results, "ladder_tol").values, slot)
    return {k: ("seed", np.asarray(v, float)) for k, v in out.items()}


def main_columns(summary: xr.Dataset, base: list[tuple]) -> list[tuple]:
    """The shown columns (variable, header, kind): `base` (headline.MAIN_COLUMNS) with
    fresh-trial MSE ± SE and its excess in place of the fixed-trial loss and MSE when present,
    the functional rank after R for 90%, outliers at epoch 0, predictions named with the rank of
    their fit, the ladder's R, and both crossing epochs by name."""
    fresh = "mse_fresh" in summary and np.isfinite(summary["mse_fresh"].values).any()
    rank = summary.attrs.get("fit_rank", 2)
    trials = summary.attrs.get("n_trials")
    cols: list[tuple] = []
    for var, header, kind in base:
        if var in ("final_loss", "final_mse") and fresh:
            if var == "final_mse":
                cols.append(
                    ("mse_fresh", f"MSE ± SE ({trials} fresh trials)", (SE, "mse_fresh_se"))
                )
                cols.append(
                    ("excess_pct", "excess over MSE* (%) ± SE", (SE, "excess_pct_se", "+.1f"))
                )
            continue
        if var == "final_mse" and not fresh:
            header = f"final MSE ({summary.attrs.get('n_eval_trials', 'few')} eval trials)"
        if var == "final_loss" and not fresh:
            header = "final loss (eval trials)"
        if var == "n_outliers":
            cols.append(("n_outliers0", "outliers at epoch 0", True))
            header = "outliers at the end"
        if var in ("re_out_meanfield", "re_out_exact"):
            header = f"{header} (rank-{rank} fit)"
        if var == "crossing_epoch":
            cols.append(("crossing_origin", "crossing epoch (Jacobian at origin)", False))
            var, header = "crossing_mean", "crossing epoch (Jacobian at mean state)"
        cols.append((var, header, kind))
        if var == "rank90" and np.isfinite(summary["functional_rank"].values).any():
            cols.append(("functional_rank", "functional rank", True))
        if var == "re_out_exact" and np.isfinite(summary["ladder_from"].values).any():
            cols.append(("ladder_from", "J0 + ΔJ_R reproduces λ_out from R", True))
    return cols
