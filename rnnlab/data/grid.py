"""Sweeps as grids: how an archive records its sweep point, and how the archives of one sweep
open as one dataset whose swept settings are dimensions beside `seed`.

Every archive written by `rnnlab sweep` carries three global attributes (docs/archive.md):

- `sweep_id`: 16 hex digits shared by every point of a sweep, a hash of the base config (without
  the swept keys' values) and the swept keys, so a rerun, or a grid extended by more values, keeps
  it;
- `sweep_point`: the point as TOML, `"model.g" = 0.8` one key a line, in [sweep] order;
- `sweep_grid`: the whole grid as TOML, `"model.g" = [0.5, 0.8, 1.2]`, so cells whose archive is
  missing still appear (as NaN).

Archives form a grid when there are at least two, all carry the same `sweep_id` and the same
swept keys (not `seeds`), the same seed values, and no point twice; anything else combines flat
along `seed` as before. A swept key's dimension is named after its last part (`model.g` -> `g`);
when that name is taken (by an archive or analysis variable, or by another swept key) the last
two parts joined by `_` (`model.lowrank.m` -> `lowrank_m`), then the whole key (`a_b_c`). The
per-seed setting coordinates (`g`, `lowrank_m`, ...) always keep their own key's name.

The grid is built lazily: the points are concatenated along `seed` as in a flat combine, with the
swept values as per-seed coordinates, and unstacked (a pandas MultiIndex over the swept values and
the seed) into one dimension per key; cells without an archive are NaN (integer variables become
float), their `run` label "". `flatten` and `unflatten` convert between that grid and the flat
layout, which is what the analyses and the per-seed report work on.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # xarray and pandas load where grids are built: `rnnlab info` reads points
    import xarray as xr

from rnnlab.config import Config, as_dict, flat_table, toml_value
from rnnlab.data.members import concat_members, drop_repeated_seed_index
from rnnlab.data.schema import (
    COORDS,
    SEED_SETTINGS,
    SWEEP_GRID,
    SWEEP_ID,
    SWEEP_POINT,
    VARIABLES,
)

# attributes of a grid dataset: its swept dims and their keys, in [sweep] order, space-separated
GRID_DIMS, GRID_KEYS = "sweep_dims", "sweep_keys"
MEMBER = "_member"

# names a swept dimension must not take: the archive's variables, coordinates and dims, and the
# results and dims of rnnlab.analysis (an analysis.nc holds both)
ANALYSIS_NAMES = (
    "m u v explained explained_cum sv kappa corr_m corr_u corr_v corr_explained "
    "corr_explained_cum corr_sv ones_align_u ones_align_v imposed_strength align_u align_v "
    "vector outlier outlier_meanfield outlier_exact n_outliers max_re_jac crossing_epoch "
    "bulk_radius cluster cluster_pre block_J block_dJ rank stat sources"
).split()
RESERVED = frozenset(
    [*VARIABLES, *COORDS, *ANALYSIS_NAMES, "seed", "run", "ri", "input", "output", MEMBER]
)
SETTING_NAMES = {f"{section}.{key}": name for name, (section, key) in SEED_SETTINGS.items()}


# -- names ---------------------------------------------------------------------------------------
def dim_names(keys: Sequence[str]) -> dict[str, str]:
    """The dimension name of each swept key (see the module docstring for the rule)."""
    lasts = Counter(key.split(".")[-1] for key in keys)
    out: dict[str, str] = {}
    for i, key in enumerate(keys):
        parts = key.split(".")
        candidates = [parts[-1], "_".join(parts[-2:]), "_".join(parts)]
        if lasts[parts[-1]] > 1:
            candidates = candidates[1:]  # a last part two swept keys share names neither
        for name in candidates:
            own = SETTING_NAMES.get(key) == name  # g for model.g: the setting it replaces
            free = name not in RESERVED and name not in SEED_SETTINGS
            if (own or free) and name not in out.values():
                out[key] = name
                break
        else:  # (not reached with today's schema)
            out[key] = f"{'_'.join(parts)}_{i}"
    return out


def label(value: Any) -> Any:
    """A swept value as a coordinate label: lists joined by '+' (`J+w`), others as they are."""
    if isinstance(value, list | tuple):
        return "+".join(str(v) for v in value)
    return value


def file_label(value: Any) -> str:
    """A swept value in a file name: numbers as in TOML, lists joined by '+'."""
    return str(label(value)) if not isinstance(value, bool) else toml_value(value)


# -- what an archive records ---------------------------------------------------------------------
def sweep_id(base: Config, keys: Sequence[str]) -> str:
    """16 hex digits naming a sweep: the base config without [sweep] and without the swept
    keys' values, and the swept keys (a rerun, or more values of the same keys, keeps it)."""
    flat = dict(flat_table(as_dict(base.replace(sweep=()))))
    for key in keys:
        flat.pop(key, None)
    text = json.dumps({"config": flat, "keys": list(keys)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def point_attrs(ident: str, point: Sequence[tuple[str, Any]], grid: Config) -> dict[str, str]:
    """The global attributes that record one sweep point (`grid`: the config with [sweep])."""
    return {
        SWEEP_ID: ident,
        SWEEP_POINT: "".join(f"{toml_value(k)} = {toml_value(v)}\n" for k, v in point),
        SWEEP_GRID: "".join(f"{toml_value(k)} = {toml_value(v)}\n" for k, v in grid.sweep),
    }


def read_point(attrs: dict[str, Any]) -> dict[str, Any] | None:
    """{key: value} of an archive's sweep point (in [sweep] order), or None outside a sweep."""
    text = attrs.get(SWEEP_POINT)
    if not text or SWEEP_ID not in attrs:
        return None
    try:
        return dict(tomllib.loads(str(text)))
    except tomllib.TOMLDecodeError:
        return None


def _read_grid(attrs: dict[str, Any]) -> dict[str, list[Any]]:
    try:
        return dict(tomllib.loads(str(attrs.get(SWEEP_GRID, ""))))
    except tomllib.TOMLDecodeError:
        return {}


# -- opening a sweep as a grid -------------------------------------------------------------------
def grid_values(parts: Sequence[xr.Dataset], keys: Sequence[str]) -> dict[str, list[Any]]:
    """The labels of each swept key: its values in every archive's `sweep_grid` and point,
    numbers ascending, anything else in the order declared."""
    out: dict[str, list[Any]] = {}
    for key in keys:
        seen: list[Any] = []
        for part in parts:
            declared = _read_grid(part.attrs).get(key, [])
            for value in [*declared, read_point(part.attrs)[key]]:
                if label(value) not in seen:
                    seen.append(label(value))
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in seen)
        out[key] = sorted(seen) if numeric else seen
    return out


def grid_keys(parts: Sequence[xr.Dataset]) -> list[str] | None:
    """The swept keys when `parts` (opened archives) are the points of one sweep, else None."""
    if len(parts) < 2:
        return None
    points = [read_point(part.attrs) for part in parts]
    if any(p is None for p in points):
        return None
    keys = list(points[0])
    ids = {str(part.attrs[SWEEP_ID]) for part in parts}
    if len(ids) != 1 or not keys or "seeds" in keys or any(list(p) != keys for p in points):
        return None
    seeds = parts[0]["seed"].values.tolist()
    if any(part["seed"].values.tolist() != seeds for part in parts):
        return None
    labels = {tuple(label(v) for v in p.values()) for p in points}
    return keys if len(labels) == len(points) else None


def point_coords(part: xr.Dataset, names: dict[str, str]) -> xr.Dataset:
    """One archive prepared for a grid: its swept values as per-seed coordinates (replacing the
    setting coordinate of the same key) and every variable without `seed` repeated along it."""
    point = read_point(part.attrs)
    n = part.sizes["seed"]
    drop = [name for key, name in names.items() if name in part.variables]
    part = part.drop_vars(drop)
    coords = {
        name: ("seed", np.array([label(point[key])] * n, dtype=object))
        for key, name in names.items()
    }
    seedless = [k for k, v in part.data_vars.items() if "seed" not in v.dims]
    part = part.assign({k: part[k].expand_dims(seed=part["seed"].values) for k in seedless})
    return part.assign_coords(coords)


def unflatten(flat: xr.Dataset, values: dict[str, list[Any]]) -> xr.Dataset:
    """The flat layout (members along `seed` with per-seed coordinates named like the keys of
    `values`) as a grid: one dim per name with the labels `values[name]`, then `seed`; missing
    cells NaN (run label ""). Lazy for dask-backed variables."""
    import pandas as pd
    import xarray as xr

    dims = list(values)
    arrays = [np.asarray(flat[d].values) for d in dims] + [np.asarray(flat["seed"].values)]
    index = pd.MultiIndex.from_arrays(arrays, names=[*dims, MEMBER])
    out = flat.drop_vars([*dims, "seed"]).assign_coords(
        xr.Coordinates.from_pandas_multiindex(index, "seed")
    )
    fill = {"run": ""} if "run" in out.variables else {}
    out = out.unstack("seed", fill_value=fill).rename({MEMBER: "seed"})
    out = out.reindex({d: _index_values(v) for d, v in values.items()}, fill_value=fill)
    if "run" in out.variables:  # reindexing fills an object array with NaN regardless
        run = out["run"].values
        run[pd.isna(run)] = ""
        out = out.assign_coords(run=(out["run"].dims, run.astype(str), out["run"].attrs))
    out.attrs[GRID_DIMS] = " ".join(dims)
    return out.transpose(*dims, "seed", ...)


def _index_values(values: list[Any]) -> np.ndarray:
    kinds = {type(v) for v in values}
    return np.array(values, dtype=object if str in kinds or len(kinds) > 1 else None)


def combine_grid(parts: list[xr.Dataset], keys: list[str]) -> xr.Dataset:
    """Points of one sweep (opened archives with unique run labels) as one lazy grid dataset."""
    names = dim_names(keys)
    labels = grid_values(parts, keys)
    flat = concat_members([point_coords(part, names) for part in parts])
    out = unflatten(flat, {names[k]: labels[k] for k in keys})
    for key, name in names.items():
        out[name].attrs = {"long_name": f"swept config {key}", "sweep_key": key}
    out.attrs.pop(SWEEP_POINT, None)
    out.attrs.pop(SWEEP_GRID, None)
    out.attrs[GRID_KEYS] = " ".join(keys)
    out.attrs["title"] = f"rnnlab sweep over {', '.join(keys)}"
    return out


# -- converting between the grid and the flat layout ----------------------------------------------
def grid_dims(obj: xr.Dataset | xr.DataArray) -> list[str]:
    """The swept dimensions of a grid dataset (in [sweep] order), [] for anything else."""
    return [d for d in str(obj.attrs.get(GRID_DIMS, "")).split() if d in obj.dims]


def flatten(ds: xr.Dataset, *, keep_missing: bool = False) -> xr.Dataset:
    """A grid dataset in the flat layout: one member of `seed` per (point, seed), the swept
    values as per-seed coordinates; cells without an archive (run "") dropped unless
    `keep_missing`. Datasets without swept dims are returned as they are."""
    dims = grid_dims(ds)
    if not dims or "seed" not in ds.dims:
        return ds
    attrs = dict(ds.attrs)
    stacked = ds.stack({MEMBER: [*dims, "seed"]})
    index = stacked.indexes[MEMBER]
    levels = {name: np.asarray(index.get_level_values(name)) for name in [*dims, "seed"]}
    out = stacked.drop_vars([MEMBER, *dims, "seed"]).rename_dims({MEMBER: "seed"})
    out = out.transpose("seed", ...)  # stack puts the member dim last; every layer expects it first
    out = out.assign_coords({name: ("seed", v, ds[name].attrs) for name, v in levels.items()})
    out = drop_repeated_seed_index(out)
    if not keep_missing and "run" in out.variables:
        present = np.asarray(out["run"].values) != ""
        if not present.all():
            out = out.isel(seed=np.flatnonzero(present))
    out.attrs = {k: v for k, v in attrs.items() if k != GRID_DIMS}
    return out


def unflatten_like(flat: xr.Dataset, grid: xr.Dataset) -> xr.Dataset:
    """Results computed on `flatten(grid)` back on the grid of `grid` (its dims and labels)."""
    dims = grid_dims(grid)
    if not dims:
        return flat
    out = unflatten(flat, {d: grid[d].values.tolist() for d in dims})
    for d in dims:
        out[d].attrs = dict(grid[d].attrs)
    for key in (GRID_KEYS, SWEEP_ID):
        if key in grid.attrs:
            out.attrs[key] = grid.attrs[key]
    return out
