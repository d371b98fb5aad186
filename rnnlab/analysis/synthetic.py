"""Archive-shaped datasets with planted structure, for tests and benchmarks of the analysis.

J0 = g W - (b/N) 11^T (+ m0 u0 v0^T), W_ij ~ N(0, 1/N). The learned change ramps up linearly,
dJ(t) = t (sum_r m_r a_r c_r^T - kappa J0 + noise X / sqrt(N)) with t = epoch / last epoch (so
dJ = 0 at epoch 0), a_r orthonormal and c_r = rho a_r + sqrt(1 - rho^2) a_perp. With
`clusters=k` the a_r = c_r are the centred, orthonormalised indicators of k planted clusters.
Everything is generated per (seed, epoch) from fixed seeds, lazily, so big archives stream to disk.
"""

from __future__ import annotations

from pathlib import Path

import dask
import dask.array as da
import numpy as np
import xarray as xr

__all__ = ["Planted", "planted", "write_archive"]


class Planted:
    """Parameters of the planted structure, and the ground truth of each seed."""

    def __init__(
        self,
        n: int = 60,
        m: tuple[float, ...] = (3.0, 2.0),
        rho: float = 0.0,
        noise: float = 0.0,
        kappa: float = 0.0,
        g: float = 0.8,
        b: float = 0.0,
        m0: float = 0.0,
        rho0: float = 0.6,
        clusters: int = 0,
        n_input: int = 2,
        n_output: int = 1,
        align: bool = False,
        base_seed: int = 1234,
    ):
        if clusters and len(m) != clusters - 1:
            raise ValueError(f"clusters={clusters} needs len(m) = {clusters - 1}, got {len(m)}")
        self.n, self.m, self.rho, self.noise, self.kappa = n, tuple(m), rho, noise, kappa
        self.g, self.b, self.m0, self.rho0, self.clusters = g, b, m0, rho0, clusters
        self.n_input, self.n_output, self.align, self.base_seed = (
            n_input,
            n_output,
            align,
            base_seed,
        )

    def _pair(self, rng: np.random.Generator, r: int, rho: float) -> tuple[np.ndarray, ...]:
        """Orthonormal a (N, r) and c (N, r) with c_i . a_i = rho."""
        q, _ = np.linalg.qr(rng.normal(size=(self.n, 2 * r)))
        a, perp = q[:, :r], q[:, r:]
        return a, rho * a + np.sqrt(1 - rho**2) * perp

    def truth(self, s: int) -> dict[str, np.ndarray]:
        """Ground truth of seed s: J0, a, c (N, R), labels, B, w, imposed u0, v0."""
        rng = np.random.default_rng([self.base_seed, s])
        n = self.n
        j0 = self.g * rng.normal(size=(n, n)) / np.sqrt(n) - self.b / n
        u0, v0 = (x[:, 0] for x in self._pair(rng, 1, self.rho0))
        if self.m0:
            j0 = j0 + self.m0 * np.outer(u0, v0)
        labels = np.zeros(n, dtype=np.int64)
        if self.clusters:
            labels = np.arange(n) % self.clusters
            rng.shuffle(labels)
            ind = (labels[:, None] == np.arange(self.clusters)).astype(float)
            ind = ind - ind.mean(axis=0)
            q, _ = np.linalg.qr(ind[:, :-1])
            a = c = q * np.sign(q.sum(axis=0) + 1e-300)
        else:
            a, c = self._pair(rng, len(self.m), self.rho)
        bmat = rng.normal(size=(n, self.n_input))
        wmat = rng.normal(size=(n, self.n_output)) / np.sqrt(n)
        if self.align:  # B column 0 along a_1, w column 0 along c_last
            bmat[:, 0] = np.sqrt(n) * a[:, 0]
            wmat[:, 0] = c[:, -1]
        return {
            "J0": j0,
            "a": a,
            "c": c,
            "labels": labels,
            "B": bmat,
            "w": wmat,
            "u0": u0,
            "v0": v0,
        }

    def delta(self, s: int, t: float, e: int) -> np.ndarray:
        """dJ of seed s at ramp value t (noise drawn from seed (s, e))."""
        tr = self.truth(s)
        d = (tr["a"] * np.asarray(self.m)) @ tr["c"].T - self.kappa * tr["J0"]
        if self.noise:
            rng = np.random.default_rng([self.base_seed, s, e, 7])
            d = d + self.noise * rng.normal(size=(self.n, self.n)) / np.sqrt(self.n)
        return t * d


def _eigs(j: np.ndarray) -> np.ndarray:
    ev = np.linalg.eigvals(j)
    return ev[np.lexsort((-ev.imag, -ev.real))]


def planted(
    p: Planted,
    n_seed: int = 2,
    epochs: tuple[int, ...] = (0, 5, 10),
    *,
    dtype: str = "float32",
    spectra: bool = True,
    store: str = "dJ",
) -> xr.Dataset:
    """A lazy archive-like Dataset (dask: one (seed, epoch) matrix per chunk) with planted dJ.

    Variables follow docs/archive.md: J0, dJ (or J with store="J"), B, w, row_mean, col_mean,
    eigvals and eigvals_jac (linear phi: -1 + eig J) when `spectra`, imposed_u/v when m0 != 0;
    coords seed, epoch, g, b. Computing it generates the matrices.
    """
    n, ep = p.n, np.asarray(epochs)
    ts = ep / ep[-1] if ep[-1] > 0 else np.zeros(len(ep))
    truth = dask.delayed(p.truth, pure=True)

    def mat(s: int, e: int) -> da.Array:
        tr = truth(s)
        d = dask.delayed(p.delta, pure=True)(s, float(ts[e]), e)
        if store == "J":
            d = dask.delayed(np.add)(tr["J0"], d)
        return da.from_delayed(dask.delayed(np.asarray)(d, dtype), (n, n), dtype=dtype)

    stored = da.stack([da.stack([mat(s, e) for e in range(len(ep))]) for s in range(n_seed)])
    j0 = da.stack(
        [da.from_delayed(truth(s)["J0"], (n, n), float).astype(dtype) for s in range(n_seed)]
    )
    dims4 = ("seed", "epoch", "neuron", "neuron_pre")
    dj = stored if store == "dJ" else stored - j0[:, None]
    jfull = stored if store == "J" else stored + j0[:, None]

    def per_epoch(key: str, width: int) -> da.Array:
        cols = [
            da.from_delayed(truth(s)[key], (n, width), float).astype(dtype) for s in range(n_seed)
        ]
        return da.stack([da.stack([c] * len(ep)) for c in cols])

    ds = xr.Dataset(
        {
            store: (dims4, stored),
            "J0": (("seed", "neuron", "neuron_pre"), j0),
            "B": (("seed", "epoch", "neuron", "input"), per_epoch("B", p.n_input)),
            "w": (("seed", "epoch", "neuron", "output"), per_epoch("w", p.n_output)),
            "row_mean": (("seed", "epoch", "neuron"), jfull.mean(axis=-1)),
            "col_mean": (("seed", "epoch", "neuron_pre"), jfull.mean(axis=-2)),
        },
        coords={
            "seed": np.arange(n_seed),
            "epoch": ep,
            "input": [f"stim{i + 1}" for i in range(p.n_input)],
            "output": [f"out{i + 1}" for i in range(p.n_output)],
            "g": ("seed", np.full(n_seed, p.g)),
            "b": ("seed", np.full(n_seed, p.b)),
        },
        attrs={"title": "rnnlab synthetic archive with planted structure"},
    )
    if spectra:
        ev = da.map_blocks(
            _eigs_block, jfull, dtype=complex, drop_axis=3, chunks=jfull.chunks[:2] + ((n,),)
        )
        ds["eigvals"] = (("seed", "epoch", "eig"), ev)
        ds["eigvals_jac"] = (("seed", "epoch", "eig"), ev - 1)
    if p.m0:
        u0 = da.stack([da.from_delayed(truth(s)["u0"], (n,), float) for s in range(n_seed)])
        v0 = da.stack([da.from_delayed(truth(s)["v0"], (n,), float) for s in range(n_seed)])
        ds["imposed_u"] = (("seed", "neuron"), u0.astype(dtype))
        ds["imposed_v"] = (("seed", "neuron_pre"), v0.astype(dtype))
    del dj
    return ds


def _eigs_block(block: np.ndarray) -> np.ndarray:
    flat = block.reshape((-1,) + block.shape[-2:]).astype(np.float64)
    out = np.stack([_eigs(j) for j in flat])
    return out.reshape(block.shape[:-1])


def write_archive(ds: xr.Dataset, path: str | Path) -> Path:
    """Stream a planted dataset to an archive-layout NetCDF-4 file (complex as trailing `ri`).

    Matrices are chunked one (seed, epoch) matrix per chunk, as the real writer does, and the
    global attributes say the run is complete, so `rnnlab.open_archive` reads it.
    """
    from rnnlab.analysis.io import to_ri

    path = Path(path)
    out = to_ri(ds)
    enc = {}
    for name, var in out.data_vars.items():
        chunks = [1 if d in ("seed", "epoch") else out.sizes[d] for d in var.dims]
        enc[name] = {"chunksizes": tuple(chunks)} if var.ndim else {}
    out.attrs = {**ds.attrs, "rnnlab_schema": "rnnlab-archive/1", "complete": 1}
    out.to_netcdf(path, engine="netcdf4", encoding=enc)
    return path
