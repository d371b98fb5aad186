"""rnnlab: train continuous-time rate RNNs and ask whether learning adds low-rank structure."""

from __future__ import annotations

import os
from typing import Any

# HDF5 reads this once, when the library starts (measured with HDF5 2.2: setting it later has no
# effect), so it is set here, before anything of rnnlab imports netCDF4. Without it a run holds an
# exclusive lock on its .partial for hours and every reader fails with "NetCDF: HDF error"; the
# archive's fixed layout (rnnlab.data.writer) is what makes reading without locks safe.
os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")

__version__ = "0.1.0"
__all__ = ["__version__", "load_config", "open_archive", "run"]


def open_archive(paths: Any, *, allow_incomplete: bool = False) -> Any:
    """Open archive(s) lazily (dask) as one xarray Dataset: rnnlab.data.reader.open_archive,
    with this process's netCDF chunk cache kept small first (rnnlab.runtime)."""
    from rnnlab.data.reader import open_archive as _open
    from rnnlab.runtime import set_chunk_cache

    set_chunk_cache()
    return _open(paths, allow_incomplete=allow_incomplete)


def __getattr__(name: str) -> Any:
    """Import the heavy parts (torch, xarray) only when they are used."""
    if name == "load_config":
        from rnnlab.config import load_config

        return load_config
    if name == "run":
        from rnnlab.training.run import run

        return run
    raise AttributeError(f"module 'rnnlab' has no attribute {name!r}")
