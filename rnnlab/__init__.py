"""rnnlab: train continuous-time rate RNNs and ask whether learning adds low-rank structure."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "load_config", "open_archive", "run"]


def __getattr__(name: str) -> Any:
    """Import the heavy parts (torch, xarray) only when they are used."""
    if name == "open_archive":
        from rnnlab.data.reader import open_archive

        return open_archive
    if name == "load_config":
        from rnnlab.config import load_config

        return load_config
    if name == "run":
        from rnnlab.runner import run

        return run
    raise AttributeError(f"module 'rnnlab' has no attribute {name!r}")
