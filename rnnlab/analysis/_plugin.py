"""Distributed worker plugin that shrinks netCDF-C's chunk cache (imports distributed)."""

from __future__ import annotations

from typing import Any

from distributed import WorkerPlugin

from rnnlab.analysis.compute import CHUNK_CACHE_BYTES, set_chunk_cache


class ChunkCachePlugin(WorkerPlugin):
    """Set the chunk cache on every worker as it starts (and on running ones when registered)."""

    name = "rnnlab-chunk-cache"

    def __init__(self, size: int = CHUNK_CACHE_BYTES):
        self.size = size

    def setup(self, worker: Any) -> None:
        set_chunk_cache(self.size)
