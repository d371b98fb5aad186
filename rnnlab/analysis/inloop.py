"""The trained network back in the loop: re-simulation on fresh trials (`evaluate`), the loss of
truncations of ΔJ (`functional_rank`) and of ΔJ on a shuffled J0 (`shuffle_control`).

Each function is one `xr.apply_ufunc(..., dask="parallelized")` over a kernel in np_simulate
(which runs the training's own dynamics, torch imported there), so a dask-backed archive stays
lazy until computed. The networks of all members (seeds) of a snapshot epoch form one task,
simulated as one batch; each selected epoch is its own task. Results carry the dim `eval_epoch`:
the snapshot epochs whose networks were simulated. See docs/analysis.md.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from rnnlab.analysis import np_simulate
from rnnlab.analysis._common import COL, ROW, AnalysisError, as_float, delta_j, require_vars, whole
from rnnlab.config import Config, config_from_toml
from rnnlab.data.members import drop_repeated_seed_index
from rnnlab.errors import ConfigError

__all__ = [
    "DEFAULT_RANKS",
    "DEFAULT_TRIALS",
    "FUNCTIONAL_FRAC",
    "evaluate",
    "evaluate_file",
    "functional_rank",
    "member_configs",
    "network_analyses",
    "select_epochs",
    "shuffle_control",
]

EVAL = "eval_epoch"
RANK = "trunc_rank"
# per-trial MSE scatters by 26-29% of the optimum on the default run's seeds: SE <= 1.5% of it
# (the rule: < 2%); functional ranks the same as with 1000 or 4000 trials (docs/analysis.md)
DEFAULT_TRIALS = 400
DEFAULT_RANKS = (0, 1, 2, 3, 5, 10, 20)  # and N (the whole ΔJ), always added
FUNCTIONAL_FRAC = 0.05  # Schuessler et al. (NeurIPS 2020): excess within 5% of that of R = 0
CONTROLS = ("trained", "shuffled J0", "J0 only")


def member_configs(ds: xr.Dataset) -> tuple[tuple[Config, ...], xr.DataArray]:
    """The run config of every member: (distinct configs, index into them along `seed`).

    From the archive's `config` attribute (one run, or runs with one config), else from
    `run_configs` ({run label: config TOML}, set by open_archive when runs with different configs
    are combined) through each member's `run` coordinate.
    """
    n = ds.sizes.get("seed", 0)
    if "config" in ds.attrs:
        try:
            cfg = config_from_toml(str(ds.attrs["config"]), "the archive")
        except ConfigError as exc:
            raise AnalysisError(str(exc)) from None
        return (cfg,), xr.DataArray(np.zeros(n, dtype=np.int64), dims="seed")
    if "run_configs" in ds.attrs and "run" in ds.coords:
        table = json.loads(str(ds.attrs["run_configs"]))
        labels = [str(r) for r in ds["run"].values]
        missing = sorted(set(labels) - set(table))
        if missing:
            raise AnalysisError(f"no stored config for run(s) {', '.join(missing)}")
        order = list(dict.fromkeys(labels))
        configs = tuple(config_from_toml(table[lab], f"run {lab}") for lab in order)
        index = np.array([order.index(lab) for lab in labels], dtype=np.int64)
        return configs, xr.DataArray(index, dims="seed")
    raise AnalysisError(
        "the dataset holds no run config (attribute 'config'): open it with rnnlab.open_archive"
    )


def select_epochs(ds: xr.Dataset, epoch: Any = -1) -> list[int]:
    """Snapshot epoch labels: an int >= 0 is a label, a negative int a position from the end
    (-1: the last epoch), a sequence of these, or "all"."""
    labels = [int(e) for e in ds["epoch"].values]
    if not labels:
        raise AnalysisError("the dataset has no snapshot epoch")
    if isinstance(epoch, str):
        if epoch != "all":
            raise AnalysisError(f"epoch must be an int, a list of ints or 'all', got {epoch!r}")
        return labels
    items = [epoch] if np.ndim(epoch) == 0 else list(epoch)
    out = []
    for e in items:
        if isinstance(e, bool) or not isinstance(e, int | np.integer):
            raise AnalysisError(f"epoch must be an int, a list of ints or 'all', got {epoch!r}")
        if e < 0:
            if -e > len(labels):
                raise AnalysisError(f"epoch {e} is out of range: {len(labels)} snapshots")
            out.append(labels[e])
        elif e in labels:
            out.append(int(e))
        else:
            raise AnalysisError(f"epoch {e} is not a snapshot epoch; they are {labels}")
    return list(dict.fromkeys(out))


def _check_trials(n_trials: int) -> int:
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 2:
        raise AnalysisError(f"n_trials must be an integer >= 2, got {n_trials!r}")
    return n_trials


def _at(ds: xr.Dataset, da: xr.DataArray, epochs: list[int], dims: list[str]) -> xr.DataArray:
    """`da` at the selected snapshot epochs (dim eval_epoch, one chunk per epoch), each of `dims`
    one chunk, coordinates dropped."""
    if "epoch" in da.dims:
        pos = [int(np.flatnonzero(ds["epoch"].values == e)[0]) for e in epochs]
        da = da.isel(epoch=pos).rename(epoch=EVAL).assign_coords({EVAL: epochs})
        if da.chunks is not None:
            da = da.copy(data=da.data.rechunk({da.get_axis_num(EVAL): 1}))
    return whole(da, dims).reset_coords(drop=True)


def network_inputs(
    ds: xr.Dataset, epochs: list[int]
) -> tuple[tuple[Config, ...], list[xr.DataArray]]:
    """J0, dJ, B, w at the selected epochs (dim `eval_epoch`), one task per epoch with every
    member, plus each member's seed and config index."""
    require_vars(ds, ["J0", "B", "w"], "dataset (simulation needs J0, dJ or J, B, w)")
    configs, index = member_configs(ds)

    def at(da: xr.DataArray, dims: list[str]) -> xr.DataArray:
        return _at(ds, as_float(da), epochs, ["seed", *dims])

    b = ds["B"].drop_vars("input", errors="ignore")
    w = ds["w"].drop_vars("output", errors="ignore")
    seeds = xr.DataArray(np.asarray(ds["seed"].values, dtype=np.int64), dims="seed")
    args = [at(ds["J0"], [ROW, COL]), at(delta_j(ds), [ROW, COL])]
    args += [at(b, [ROW, "input"]), at(w, [ROW, "output"]), seeds, index]
    return configs, args


CORE = [[ROW, COL], [ROW, COL], [ROW, "input"], [ROW, "output"], [], []]


def _finish(out: xr.Dataset, ds: xr.Dataset, attrs: dict) -> xr.Dataset:
    """Seed coordinates of `ds` back on the results, and the settings as attributes."""
    coords = {c: ds[c] for c in ds.coords if ds[c].dims == ("seed",)}
    out = drop_repeated_seed_index(out.assign_coords(coords))
    for name in out.data_vars:
        out[name].attrs.update(attrs)
    return out


def evaluate(
    ds: xr.Dataset,
    epoch: Any = -1,
    n_trials: int = DEFAULT_TRIALS,
    *,
    device: str = "auto",
    dtype: str = "float32",
) -> xr.Dataset:
    """Re-simulate the stored networks on `n_trials` fresh trials per member.

    Returns `mse`, `mse_se` (standard error of the mean over trials) and `excess` = mse −
    mse_optimal (seed, eval_epoch), and `mse_optimal` (seed), the task optimum of each member's
    config. The same dynamics as training (fused run_dynamics under no_grad, float32 by
    default), every member of an epoch in one batch, on the GPU when `device="auto"` finds one.
    Trials come from each seed's own `fresh` stream, the same for every epoch.
    """
    return network_analyses(
        ds, epoch, n_trials, truncation=False, shuffle=False, device=device, dtype=dtype
    )[0]


def _evaluate_results(ds: xr.Dataset, outs, epochs: list[int], n_trials: int) -> xr.Dataset:
    """evaluate's Dataset from the kernel's outputs (mse, se, optimum)."""
    mse, se, optimum = outs
    optimum = optimum.isel({EVAL: 0}, drop=True)
    out = xr.Dataset(
        {
            "mse": mse.assign_attrs(long_name="MSE on fresh trials (mean over trials)"),
            "mse_se": se.assign_attrs(long_name="standard error of mse over the trials"),
            "excess": (mse - optimum).assign_attrs(long_name="mse - mse_optimal"),
            "mse_optimal": optimum.assign_attrs(long_name="task optimum MSE of the config"),
        }
    ).assign_coords({EVAL: epochs})
    out[EVAL].attrs = {"long_name": "snapshot epoch of the simulated network", "units": "epoch"}
    return _finish(out, ds, {"units": "1", "n_trials": n_trials, "trial_stream": "fresh"})


def _ranks(ranks: Sequence[int], n: int) -> np.ndarray:
    try:
        values = sorted({int(r) for r in ranks if 0 <= int(r) <= n} | {0, n})
    except (TypeError, ValueError):
        raise AnalysisError(f"ranks must be integers, got {ranks!r}") from None
    return np.array(values, dtype=np.int64)


def functional_rank(
    ds: xr.Dataset,
    ranks: Sequence[int] = DEFAULT_RANKS,
    n_trials: int = DEFAULT_TRIALS,
    *,
    epoch: Any = -1,
    frac: float = FUNCTIONAL_FRAC,
    split: bool = True,
    device: str = "auto",
    dtype: str = "float32",
) -> xr.Dataset:
    """The loss of J0 + ΔJ_R (ΔJ_R: best rank-R approximation of ΔJ) on fresh trials, the same
    trials for every R, and the functional rank.

    `ranks` are completed with 0 (J0 alone) and N (the whole ΔJ: the trained J). Returns `loss`,
    `loss_se`, `loss_diff_se` (SE of the paired difference to R = N) over (seed, eval_epoch,
    trunc_rank) and `functional_rank` (seed, eval_epoch): the smallest R whose excess loss over
    R = N is at most `frac` of that of R = 0. With `split` also the regulariser-aware split
    (1 − κ) J0 + residual_R (residual = ΔJ + κ J0, κ the shrinkage) as `loss_split`,
    `loss_split_se`, `loss_split_diff_se`, `functional_rank_split`. The loss is the task MSE.
    """
    return network_analyses(
        ds, epoch, n_trials, ranks=ranks, frac=frac, split=split, shuffle=False, device=device,
        dtype=dtype,
    )[1]  # fmt: skip


def _truncation_results(
    ds: xr.Dataset, outs, epochs: list[int], rank_values: np.ndarray, n_trials: int,
    frac: float, split: bool,
) -> xr.Dataset:  # fmt: skip
    """functional_rank's Dataset from the kernel's outputs (3 or, with split, 6 losses)."""
    names = ["loss", "loss_se", "loss_diff_se"]
    if split:
        names += ["loss_split", "loss_split_se", "loss_split_diff_se"]
    text = {
        "loss": "MSE of J0 + dJ_R on fresh trials",
        "loss_se": "standard error of loss over the trials",
        "loss_diff_se": "standard error of the paired difference loss(R) - loss(N)",
        "loss_split": "MSE of (1 - kappa) J0 + residual_R on fresh trials",
        "loss_split_se": "standard error of loss_split over the trials",
        "loss_split_diff_se": "standard error of the paired difference loss_split(R) - loss(N)",
    }
    out = xr.Dataset(
        {k: v.assign_attrs(long_name=text[k]) for k, v in zip(names, outs, strict=True)}
    )
    out = out.assign_coords({RANK: rank_values, EVAL: epochs})
    for suffix in ("", "_split") if split else ("",):
        rank = xr.apply_ufunc(
            np_simulate.functional_rank,
            out["loss" + suffix],
            kwargs={"ranks": rank_values, "frac": frac},
            input_core_dims=[[RANK]],
            dask="parallelized",
            output_dtypes=[float],
        )
        out["functional_rank" + suffix] = rank.assign_attrs(
            long_name=f"smallest R with loss{suffix}(R) - loss(N) <= {frac:g} (loss(0) - loss(N))"
        )
    out[RANK].attrs = {"long_name": "rank R of the truncation of dJ (N: all of dJ)", "units": "1"}
    out[EVAL].attrs = {"long_name": "snapshot epoch of the simulated network", "units": "epoch"}
    attrs = {"units": "1", "n_trials": n_trials, "trial_stream": "fresh", "frac": frac}
    return _finish(out, ds, attrs)


def shuffle_control(
    ds: xr.Dataset,
    epoch: Any = -1,
    n_trials: int = DEFAULT_TRIALS,
    *,
    n_shuffles: int = 1,
    device: str = "auto",
    dtype: str = "float32",
) -> xr.Dataset:
    """Does the learned ΔJ work only together with its own J0? The loss of the trained network,
    of ΔJ on a random permutation of J0's entries, and of J0 alone, on the same fresh trials.

    Returns `shuffle_loss`, `shuffle_loss_se` (seed, eval_epoch, control) with control =
    trained, shuffled J0, J0 only, and `shuffle_lost` (seed, eval_epoch) = (L_shuffled −
    L_trained) / (L_J0 − L_trained): the fraction of the gain of learning lost by the shuffle.
    Permutations come from each seed's `shuffle` stream (per-trial losses averaged over
    `n_shuffles` of them).
    """
    return network_analyses(
        ds, epoch, n_trials, n_shuffles=n_shuffles, truncation=False, device=device, dtype=dtype
    )[1]


def _shuffle_results(
    ds: xr.Dataset, outs, epochs: list[int], n_trials: int, n_shuffles: int
) -> xr.Dataset:
    """shuffle_control's Dataset from the kernel's outputs (loss, se, lost)."""
    loss, se, lost = outs
    out = xr.Dataset(
        {
            "shuffle_loss": loss.assign_attrs(long_name="MSE on fresh trials per control"),
            "shuffle_loss_se": se.assign_attrs(long_name="standard error of shuffle_loss"),
            "shuffle_lost": lost.assign_attrs(
                long_name="fraction of the gain of learning lost with J0 shuffled"
            ),
        }
    ).assign_coords(control=list(CONTROLS), **{EVAL: epochs})
    attrs = {"units": "1", "n_trials": n_trials, "n_shuffles": n_shuffles}
    return _finish(out, ds, attrs)


def network_analyses(
    ds: xr.Dataset,
    epoch: Any = -1,
    n_trials: int = DEFAULT_TRIALS,
    *,
    ranks: Sequence[int] = DEFAULT_RANKS,
    frac: float = FUNCTIONAL_FRAC,
    split: bool = True,
    n_shuffles: int = 1,
    truncation: bool = True,
    shuffle: bool = True,
    device: str = "auto",
    dtype: str = "float32",
) -> list[xr.Dataset]:
    """[`evaluate`, `functional_rank` (with `truncation`), `shuffle_control` (with `shuffle`)]
    of the same arguments, from one simulation (`np_simulate.network_losses`): every distinct
    network simulated once on the member's fresh trials (the trained J once, not four times; J0
    alone once, not twice), one task per epoch. What `analyze` runs, and what the three
    functions run with the parts they do not return switched off."""
    _check_trials(n_trials)
    if truncation and not 0 < frac < 1:
        raise AnalysisError(f"frac must be in (0, 1), got {frac}")
    if shuffle and (isinstance(n_shuffles, bool) or not isinstance(n_shuffles, int)
                    or n_shuffles < 1):  # fmt: skip
        raise AnalysisError(f"n_shuffles must be a positive integer, got {n_shuffles!r}")
    epochs = select_epochs(ds, epoch)
    configs, args = network_inputs(ds, epochs)
    rank_values = _ranks(ranks, ds.sizes[ROW]) if truncation else np.zeros(0, dtype=np.int64)
    kwargs = {"configs": configs, "n_trials": n_trials, "device": device, "dtype": dtype,
              "ranks": rank_values, "split": split, "n_shuffles": n_shuffles,
              "truncation": truncation, "shuffle": shuffle}  # fmt: skip
    n_trunc = (6 if split else 3) if truncation else 0
    n_shuffle = 3 if shuffle else 0
    sizes = ({RANK: len(rank_values)} if truncation else {}) | (
        {"control": len(CONTROLS)} if shuffle else {}
    )
    outs = xr.apply_ufunc(
        np_simulate.network_losses,
        *args,
        kwargs=kwargs,
        input_core_dims=CORE,
        output_core_dims=[[]] * 3 + [[RANK]] * n_trunc + [["control"], ["control"], []][:n_shuffle],
        dask="parallelized",
        output_dtypes=[float] * (3 + n_trunc + n_shuffle),
        dask_gufunc_kwargs={"output_sizes": sizes},
    )
    parts = [_evaluate_results(ds, outs[:3], epochs, n_trials)]
    if truncation:
        trunc = outs[3 : 3 + n_trunc]
        parts.append(_truncation_results(ds, trunc, epochs, rank_values, n_trials, frac, split))
    if shuffle:
        parts.append(_shuffle_results(ds, outs[3 + n_trunc :], epochs, n_trials, n_shuffles))
    return parts


def evaluate_file(
    path: Any, n_trials: int = DEFAULT_TRIALS, *, device: str = "auto"
) -> dict[str, Any] | None:
    """`evaluate` of an archive file's last committed snapshot (for `rnnlab info`), as plain
    values: epoch, n_trials, seconds, and per member mse, mse_se, mse_optimal. None when no
    snapshot is committed yet. The file is opened (unfinished ones too) and closed here."""
    import time

    from rnnlab.analysis.compute import compute
    from rnnlab.data.reader import open_archive

    ds = open_archive(path, allow_incomplete=True)
    try:
        if ds.sizes.get("epoch", 0) == 0:
            return None
        start = time.perf_counter()
        res = compute(evaluate(ds, -1, n_trials, device=device), progress=False)
        last = res.isel({EVAL: -1})
        return {
            "epoch": int(res[EVAL].values[-1]),
            "n_trials": n_trials,
            "seconds": time.perf_counter() - start,
            "mse": np.asarray(last["mse"].values, float),
            "mse_se": np.asarray(last["mse_se"].values, float),
            "mse_optimal": np.asarray(res["mse_optimal"].values, float),
        }
    finally:
        ds.close()
