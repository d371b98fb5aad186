"""The `ds.rnn` accessor: thin delegation to the analysis functions (no logic here)."""

from __future__ import annotations

from typing import Any

import xarray as xr

from rnnlab.analysis import alignment as _alignment
from rnnlab.analysis import clusters as _clusters
from rnnlab.analysis import compute as _compute
from rnnlab.analysis import fixed_points as _fixed_points
from rnnlab.analysis import inloop as _inloop
from rnnlab.analysis import ladder as _ladder
from rnnlab.analysis import lowrank as _lowrank
from rnnlab.analysis import outliers as _outliers
from rnnlab.analysis import pipeline as _pipeline
from rnnlab.analysis import summaries as _summaries
from rnnlab.analysis._common import delta_j


@xr.register_dataset_accessor("rnn")
class RnnAccessor:
    """`ds.rnn.lowrank_fit(rank=2)`, `ds.rnn.analyze()`, ... on an archive dataset."""

    def __init__(self, ds: xr.Dataset):
        self._ds = ds

    def lowrank_fit(self, rank: int = 2) -> xr.Dataset:
        """lowrank_fit of the archive's dJ."""
        return _lowrank.lowrank_fit(delta_j(self._ds), rank)

    def shrinkage(self, rank: int = 2) -> xr.Dataset:
        """shrinkage of the archive's dJ toward -J0."""
        return _lowrank.shrinkage(delta_j(self._ds), self._ds["J0"], rank)

    def imposed_strength(self) -> xr.DataArray:
        """imposed_strength with the archive's imposed_u, imposed_v."""
        ds = self._ds
        return _lowrank.imposed_strength(u=ds["imposed_u"], v=ds["imposed_v"], dJ=delta_j(ds))

    def alignment(self, fit: xr.Dataset | None = None, rank: int = 2) -> xr.Dataset:
        """alignment of a fit (default: lowrank_fit(rank)) with the task vectors."""
        return _alignment.alignment(self.lowrank_fit(rank) if fit is None else fit, self._ds)

    def outliers(self, fit: xr.Dataset | None = None, rank: int = 2) -> xr.Dataset:
        """outliers of J and their predictions."""
        return _outliers.outliers(self._ds, fit=fit, rank=rank)

    def cluster_stats(self, k: int = 2, labels: Any = None, **kwargs: Any) -> xr.Dataset:
        """cluster_stats of the archive."""
        return _clusters.cluster_stats(self._ds, k, labels, **kwargs)

    def across_seeds(self, by: str | None = None) -> xr.Dataset:
        """across_seeds of this dataset."""
        return _summaries.across_seeds(self._ds, by=by)

    def analyze(self, rank: int = 2, k: int = 2, network: bool | dict = False) -> xr.Dataset:
        """analyze: everything, lazily."""
        return _pipeline.analyze(self._ds, rank=rank, k=k, network=network)

    def evaluate(self, epoch: Any = -1, n_trials: int = 1000, **kwargs: Any) -> xr.Dataset:
        """evaluate: the stored networks re-simulated on fresh trials."""
        return _inloop.evaluate(self._ds, epoch, n_trials, **kwargs)

    def functional_rank(self, ranks: Any = _inloop.DEFAULT_RANKS, **kwargs: Any) -> xr.Dataset:
        """functional_rank: the loss of J0 + dJ_R on fresh trials."""
        return _inloop.functional_rank(self._ds, ranks, **kwargs)

    def shuffle_control(self, epoch: Any = -1, **kwargs: Any) -> xr.Dataset:
        """shuffle_control: dJ on a shuffled J0."""
        return _inloop.shuffle_control(self._ds, epoch, **kwargs)

    def outlier_ladder(self, ranks: Any = _ladder.LADDER_RANKS, **kwargs: Any) -> xr.Dataset:
        """outlier_ladder: the spectrum of J0 + dJ_R over a ladder of ranks."""
        return _ladder.outlier_ladder(self._ds, ranks, **kwargs)

    def fixed_points(self, epoch: Any = "all", inputs: Any = (0.0,), **kwargs: Any) -> xr.Dataset:
        """fixed_points of the trained dynamics."""
        return _fixed_points.fixed_points(self._ds, epoch, inputs, **kwargs)

    def compute(self, scheduler: Any = "threads", progress: bool = True, **kwargs: Any):
        """compute this dataset with a small chunk cache and a progress bar."""
        return _compute.compute(self._ds, scheduler=scheduler, progress=progress, **kwargs)
