"""Lazy analysis of rnnlab archives: low-rank fits, shrinkage, alignment, outliers, clusters, and
the trained network back in the loop (evaluate, functional_rank, shuffle_control, the outlier
ladder, fixed points).

NumPy kernels live in the np_* modules (plain arrays in, new arrays out); each public function
here wraps one of them in `xr.apply_ufunc(..., dask="parallelized")`, so a dask-backed archive
stays lazy until `.compute()` or `compute(obj, scheduler=...)`. Importing this package registers
the `ds.rnn` accessor. See docs/analysis.md.
"""

from rnnlab.analysis import accessor as _accessor  # noqa: F401  (registers ds.rnn)
from rnnlab.analysis._common import AnalysisError
from rnnlab.analysis.alignment import alignment
from rnnlab.analysis.clusters import cluster_stats
from rnnlab.analysis.compute import compute, make_client, set_chunk_cache
from rnnlab.analysis.fixed_points import fixed_points
from rnnlab.analysis.inloop import evaluate, functional_rank, shuffle_control
from rnnlab.analysis.io import open_analysis, save_analysis
from rnnlab.analysis.ladder import lambda_task, outlier_ladder
from rnnlab.analysis.lowrank import imposed_strength, lowrank_fit, shrinkage
from rnnlab.analysis.outliers import outliers
from rnnlab.analysis.pipeline import analyze
from rnnlab.analysis.summaries import across_seeds

__all__ = [
    "AnalysisError",
    "across_seeds",
    "alignment",
    "analyze",
    "cluster_stats",
    "compute",
    "evaluate",
    "fixed_points",
    "functional_rank",
    "imposed_strength",
    "lambda_task",
    "lowrank_fit",
    "make_client",
    "open_analysis",
    "outlier_ladder",
    "outliers",
    "save_analysis",
    "set_chunk_cache",
    "shrinkage",
    "shuffle_control",
]
