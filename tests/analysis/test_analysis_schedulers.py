"""compute() on real schedulers: threads, processes and a distributed LocalCluster agree."""

from __future__ import annotations

import dask
import netCDF4
import pytest
import xarray as xr

import rnnlab
import rnnlab.analysis as ra
from rnnlab.analysis.compute import CHUNK_CACHE_BYTES
from rnnlab.analysis.synthetic import Planted, planted, write_archive


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """The archive, opened once: netCDF-C/HDF5 can segfault when a file with string variables
    is opened again while still open in the same process (Unidata/netcdf4-python#1444)."""
    p = Planted(n=30, m=(2.0,), rho=0.7, noise=0.1, kappa=0.1, n_input=2, n_output=2)
    path = tmp_path_factory.mktemp("sched") / "a.nc"
    return rnnlab.open_archive(write_archive(planted(p, n_seed=2, epochs=(0, 3, 6)), path))


@pytest.fixture(scope="module")
def reference(archive):
    return archive.rnn.analyze(rank=2, k=2).compute(scheduler="sync")


def _lazy(archive):
    return ra.analyze(archive, rank=2, k=2)


def test_threads_equal_and_progress_bar(archive, reference, capsys):
    got = ra.compute(_lazy(archive), scheduler="threads", progress=True)
    xr.testing.assert_allclose(got, reference, rtol=1e-9, atol=1e-12)
    assert "100%" in capsys.readouterr().out


@pytest.mark.slow
def test_processes_equal_and_workers_get_small_chunk_cache(archive, reference):
    got = ra.compute(_lazy(archive), scheduler="processes", progress=False, num_workers=2)
    xr.testing.assert_allclose(got, reference, rtol=1e-9, atol=1e-12)
    # a spawned worker starts with netCDF-C's default cache; the initializer shrinks it
    probe = dask.delayed(netCDF4.get_chunk_cache)()
    size = ra.compute(probe, scheduler="processes", progress=False, num_workers=1)[0]
    assert size == CHUNK_CACHE_BYTES


@pytest.mark.slow
def test_distributed_local_cluster_equal(archive, reference, capsys):
    client = ra.make_client(n_workers=2, threads_per_worker=1)
    try:
        caches = client.run(netCDF4.get_chunk_cache)
        assert len(caches) == 2 and all(c[0] == CHUNK_CACHE_BYTES for c in caches.values())
        got = ra.compute(_lazy(archive), scheduler=client, progress=False)
        xr.testing.assert_allclose(got, reference, rtol=1e-9, atol=1e-12)
        with client.as_current():
            again = ra.compute(_lazy(archive), scheduler="distributed", progress=False)
        xr.testing.assert_identical(again, got)
    finally:
        cluster = client.cluster
        client.close()
        cluster.close()


def test_bad_scheduler_and_address():
    lazy = ra.lowrank_fit(planted(Planted(n=10, m=(1.0,)), 1, (0, 1), spectra=False).dJ, 1)
    with pytest.raises(ra.AnalysisError, match="scheduler must be"):
        ra.compute(lazy, scheduler="bogus")
    with pytest.raises(ra.AnalysisError, match="address must be"):
        ra.make_client(address=5)
    assert ra.compute(lazy.compute(), progress=False).m.chunks is None  # in memory: passthrough
