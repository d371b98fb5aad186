"""Members of the `seed` dimension: one trained network each, named by its (run, seed) pair.

Archives of several runs can repeat seed values (every run of a sweep has seeds 0..3). A
combined dataset then keeps `seed` and `run` as coordinates along `seed` *without* a pandas
index on `seed` (an index with repeated values breaks `.sel` and alignment); select members by
position or mask, e.g. `ds.isel(seed=(ds.run == label).values)`. A dataset whose seed values are
unique keeps its index. These helpers keep that state and name members in legends and tables.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # only annotations; concat_members imports xarray where it is called
    import xarray as xr

from rnnlab.errors import RnnlabError

SEED, RUN = "seed", "run"


def drop_repeated_seed_index(obj: xr.Dataset | xr.DataArray) -> xr.Dataset | xr.DataArray:
    """`obj` without the pandas index on `seed` when its values repeat (`seed` stays a
    coordinate); unchanged otherwise. xarray re-creates that index whenever a Dataset is built
    from a `seed` coordinate, so code that rebuilds datasets calls this afterwards."""
    if SEED in obj.indexes and not obj.indexes[SEED].is_unique:
        return obj.drop_indexes(SEED)
    return obj


def concat_members(parts: Sequence[xr.Dataset]) -> xr.Dataset:
    """Opened archives (or grid points) stacked along `seed`, lazily: the variables that vary
    (data_vars="minimal"), each file's own coordinates kept by position (join/compat
    "override"), attributes that differ dropped, the seed index dropped when values repeat."""
    import xarray as xr

    combined = xr.concat(
        parts,
        dim=SEED,
        data_vars="minimal",
        coords="minimal",
        compat="override",
        join="override",
        combine_attrs="drop_conflicts",
    )
    return drop_repeated_seed_index(combined)


def unique_run_labels(labels: Sequence[Sequence[str]], stems: Sequence[str]) -> list[list[str]]:
    """Run labels made unique across files (`labels[i]`: file i's label per seed; `stems[i]`:
    its file name without .nc). A label that more than one file carries becomes `label:stem`;
    if that still repeats (same name in two folders), `label:stem:k`, k the file's position."""
    shared = Counter(lab for labs in labels for lab in set(labs))
    out = [
        [f"{lab}:{stem}" if shared[lab] > 1 else lab for lab in labs]
        for labs, stem in zip(labels, stems, strict=True)
    ]
    again = Counter(lab for labs in out for lab in set(labs))
    return [[f"{lab}:{k}" if again[lab] > 1 else lab for lab in labs] for k, labs in enumerate(out)]


def member_runs(obj: xr.Dataset | xr.DataArray) -> list[str] | None:
    """The run label of each member when members come from more than one run, else None."""
    if RUN not in obj.coords or obj[RUN].dims != (SEED,):
        return None
    runs = [str(r) for r in obj[RUN].values]
    return runs if len(set(runs)) > 1 else None


def member_names(obj: xr.Dataset | xr.DataArray) -> list[str]:
    """A name per member for legends and titles: `seed 0`, or `<run> seed 0` when members come
    from several runs (two `seed 0` would be indistinguishable)."""
    seeds = [str(s) for s in obj[SEED].values]
    runs = member_runs(obj)
    if runs is None:
        return [f"seed {s}" for s in seeds]
    return [f"{r} seed {s}" for r, s in zip(runs, seeds, strict=True)]


def member_position(obj: xr.Dataset | xr.DataArray, seed: object = None) -> int:
    """Position along `seed` of the member with seed value `seed` (None: the first member).

    Raises RnnlabError when no member, or more than one (same seed in several runs), has it.
    """
    if seed is None:
        return 0
    found = np.flatnonzero(np.asarray(obj[SEED].values) == seed)
    if found.size == 1:
        return int(found[0])
    if found.size == 0:
        raise RnnlabError(f"no member with seed {seed!r}; seeds are {obj[SEED].values.tolist()}")
    raise RnnlabError(
        f"seed {seed!r} occurs {found.size} times (several runs); select one run first, "
        "e.g. ds.isel(seed=(ds.run == label).values)"
    )
