"""What a run records, computed off the training thread and handed to the archive writer.

The trainer calls `curve`, `snapshot`, `trajectories` and `checkpoint`; they enqueue and return.
A worker thread computes each snapshot's spectra (J's, and the Jacobian's at the origin and at
the mean state), derived values (dJ, row and column means), writes the records through
`rnnlab.data.writer.ArchiveWriter` at their fixed places and commits them; a checkpoint is saved
only after everything before it is committed, so `--resume` never starts ahead of the archive.
An error on the worker is raised on the trainer's next call (curve: every epoch).
"""

from __future__ import annotations

import os
import queue
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.data.paths import checkpoint_path, disk_full_message, is_disk_full
from rnnlab.data.writer import ArchiveWriter, fsync_path
from rnnlab.errors import ArchiveError
from rnnlab.runtime import set_blas_threads
from rnnlab.spectra.conventions import (
    crossing_epoch,
    dphi_at_origin,
    dphi_numpy,
    jacobian,
    sort_eigvals,
)

FULL_DISK_BYTES = 1 << 20  # a write failing with less than this free is taken for a full disk


def float32_eigvals(mats: np.ndarray) -> np.ndarray:
    """Sorted eigenvalues of (S, N, N) matrices in float32 through torch's LAPACK (MKL's sgeev on
    x86-64: about half the time of float64 at N = 128-256, errors ~1e-5 for the bulk scale 1, and
    the GIL is released meanwhile, which NumPy's solver here did not do as well)."""
    import torch

    return sort_eigvals(torch.linalg.eigvals(torch.from_numpy(mats.astype(np.float32))).numpy())


def eigvals_per_seed(mats: np.ndarray) -> np.ndarray:
    """Sorted float32 eigenvalues of (S, N, N) matrices; NaN for a seed with non-finite entries
    (a diverged, frozen seed must not stop the others' spectra)."""
    finite = np.isfinite(mats).all(axis=(1, 2))
    if finite.all():
        return float32_eigvals(mats)
    out = np.full(mats.shape[:2], np.nan + 0j)
    if finite.any():
        out[finite] = float32_eigvals(mats[finite])
    return out


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """torch.save to a temporary name, fsync, then rename: a kill leaves the old or the new."""
    import torch

    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    fsync_path(tmp)
    os.replace(tmp, path)


def _tensors(obj: Any) -> list:
    """Every tensor in a nested state dict."""
    import torch

    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, dict):
        return [t for v in obj.values() for t in _tensors(v)]
    if isinstance(obj, list | tuple):
        return [t for v in obj for t in _tensors(v)]
    return []


class Recorder:
    """Runs an ArchiveWriter on a worker thread so training never waits on disk or eigvals."""

    def __init__(self, writer: ArchiveWriter, max_pending: int = 4) -> None:
        self.writer = writer
        self.cfg = writer.cfg
        self.phi = self.cfg.model.phi
        self.checkpoint_file = checkpoint_path(writer.path)
        self.queue: queue.Queue = queue.Queue(maxsize=max_pending)
        self.error: BaseException | None = None
        self.curve_epochs: list[int] = []
        self.curve_rows: list[dict[str, np.ndarray]] = []
        self.J0: np.ndarray | None = None
        self.snapshot_epochs: list[int] = []  # for crossing_epoch, from the exact spectra
        self.snapshot_max_re: list[np.ndarray] = []
        # Set once training has ended (close): the last snapshot's two spectra then run on it
        # side by side, since no trainer needs the cores any more.
        self.spectra_pool: ThreadPoolExecutor | None = None
        self.checkpoint_bytes = 0
        self._busy = False
        self.thread = threading.Thread(target=self._work, name="rnnlab-writer", daemon=True)
        self.thread.start()

    # -- worker ---------------------------------------------------------------------------------
    def _work(self) -> None:
        set_blas_threads(1)  # one core for the writer; the trainer yields it one (see busy)
        while True:
            item = self.queue.get()
            if item is None:
                return
            self._busy = True
            try:
                if self.error is None:
                    method, args = item
                    method(*args)
            except BaseException as exc:  # reported to the training thread
                self.error = self._explain(exc)
            finally:
                self._busy = self.queue.qsize() > 0

    def _explain(self, exc: BaseException) -> BaseException:
        """A full disk as one line (torch.save and netCDF lose errno: judged by free space)."""
        if isinstance(exc, ArchiveError) or not isinstance(exc, OSError | RuntimeError):
            return exc
        directory = self.writer.path.parent
        if is_disk_full(exc) or shutil.disk_usage(directory).free < FULL_DISK_BYTES:
            message = disk_full_message(self.writer.path, self.checkpoint_bytes)
            if self.writer.partial.exists():
                message += f"; committed records stay in {self.writer.partial}"
            return ArchiveError(message)
        return exc

    def _create(self, static: dict[str, Any]) -> None:
        self.J0 = np.asarray(static["J0"], dtype=np.float32)
        self.writer.create(static)

    def _reopen(self, static: dict[str, Any], start_epoch: int) -> None:
        """Reopen a .partial to go on from `start_epoch`: records from there on are uncommitted
        (they will be written again, with the same values) and the crossing history reloaded."""
        self.J0 = np.asarray(static["J0"], dtype=np.float32)
        writer = self.writer
        counts = writer.reopen(static)
        snaps = writer.layout.snapshots
        keep = {
            "epoch": min(counts["epoch"], sum(e < start_epoch for e in snaps)),
            "curve_epoch": min(counts["curve_epoch"], start_epoch),
            "traj_epoch": min(
                counts["traj_epoch"], sum(e < start_epoch for e in writer.layout.trajectories)
            ),
        }
        writer.uncommit_from(keep)
        if keep["epoch"]:
            jac0 = writer.read("eigvals_jac0")[:, : keep["epoch"]]
            self.snapshot_epochs = list(snaps[: keep["epoch"]])
            self.snapshot_max_re = list(np.moveaxis(jac0.real.max(axis=-1), 1, 0))

    def _write_snapshot(self, epoch: int, values: dict[str, np.ndarray]) -> None:
        J = values["J"].astype(np.float32)
        slope = dphi_numpy(values["h_mean"].astype(np.float64), self.phi)
        jac = jacobian(J, slope, dtype=np.float32)  # float32 like J and its spectrum
        spectra = self._spectra(J, jac)
        record = {
            "J": J,
            "dJ": J - self.J0,
            "row_mean": J.mean(axis=2),
            "col_mean": J.mean(axis=1),
            **{k: values[k] for k in ("B", "w", "loss", "mse", "h_mean")},
        }
        eigs, jac_eigs = (spectrum() for spectrum in spectra)
        # at the origin every slope is phi'(0): the Jacobian's eigenvalues are phi'(0) lambda - 1
        # (same order: a positive scale and a shift keep the descending real part)
        jac0 = dphi_at_origin(self.phi) * eigs - 1.0
        record.update(eigvals=eigs, eigvals_jac0=jac0, eigvals_jac=jac_eigs)
        index = self.writer.layout.snapshots.index(epoch)
        self.writer.put_record("epoch", index, epoch, record)
        self.writer.put_static("diverged_epoch", values["diverged_epoch"])
        self.writer.commit()
        self.snapshot_epochs.append(epoch)
        self.snapshot_max_re.append(jac0.real.max(axis=-1))

    def _spectra(self, *matrices: np.ndarray) -> list:
        """A callable per batch of matrices giving its sorted float32 eigenvalues. During training
        they are computed when called, on this thread; once training has ended (spectra_pool set)
        they start at once on the pool, overlapping each other and the writes meanwhile."""
        pool = self.spectra_pool
        if pool is None:
            return [partial(eigvals_per_seed, m) for m in matrices]
        return [pool.submit(eigvals_per_seed, m).result for m in matrices]

    def _write_curve(self, epochs: list[int], rows: list[dict[str, np.ndarray]]) -> None:
        stacked = {name: np.stack([r[name] for r in rows], axis=1) for name in rows[0]}
        self.writer.put_records("curve_epoch", epochs[0], epochs, stacked)

    def _write_trajectories(self, epoch: int, values: dict[str, np.ndarray]) -> None:
        index = self.writer.layout.trajectories.index(epoch)
        self.writer.put_record("traj_epoch", index, epoch, values)
        self.writer.commit()

    def _write_checkpoint(self, state: dict[str, Any]) -> None:
        self.checkpoint_bytes = sum(t.numel() * t.element_size() for t in _tensors(state))
        self.writer.put_static("diverged_epoch", state["diverged_epoch"])
        self.writer.commit()
        save_checkpoint(self.checkpoint_file, {**state, "run_id": self.writer.run_id})

    # -- trainer side ---------------------------------------------------------------------------
    def busy(self) -> bool:
        """True while snapshots are pending: the trainer then leaves one CPU core to the writer
        (two spinning OpenMP threads plus the writer on two cores stall every parallel region)."""
        return self._busy

    def _raise_worker_error(self) -> None:
        if self.error is not None:
            raise self.error

    def _submit(self, method: Any, *args: Any) -> None:
        self._raise_worker_error()
        self._busy = True
        self.queue.put((method, args))

    def open(self, static: dict[str, Any]) -> None:
        """Create the archive on the worker (the trainer's first epochs overlap it)."""
        self._submit(self._create, static)

    def reopen(self, static: dict[str, Any], start_epoch: int) -> None:
        """Reopen an unfinished archive on the worker to go on from `start_epoch`."""
        self._submit(self._reopen, static, start_epoch)

    def curve(self, epoch: int, values: dict[str, np.ndarray]) -> None:
        self._raise_worker_error()
        self.curve_epochs.append(epoch)
        self.curve_rows.append(values)

    def _flush_curve(self) -> None:
        if self.curve_rows:
            self._submit(self._write_curve, self.curve_epochs, self.curve_rows)
            self.curve_epochs, self.curve_rows = [], []

    def snapshot(self, epoch: int, values: dict[str, np.ndarray]) -> None:
        self._flush_curve()
        self._submit(self._write_snapshot, epoch, values)

    def trajectories(self, epoch: int, values: dict[str, np.ndarray]) -> None:
        self._submit(self._write_trajectories, epoch, values)

    def checkpoint(self, state: dict[str, Any]) -> None:
        """Save the trainer's state once every record before it is committed."""
        self._flush_curve()
        self._submit(self._write_checkpoint, state)

    def _drain(self) -> None:
        self.queue.put(None)
        self.thread.join()

    def close(self) -> Path:
        """Drain the queue, write the per-seed results and finish the archive (raising any
        worker error). crossing_epoch comes from the exact snapshot spectra of the Jacobian at
        the origin, interpolated between snapshots (the per-epoch tracked values are only a
        lower bound near the bulk edge, where the crossing happens)."""
        self._flush_curve()
        with ThreadPoolExecutor(2, thread_name_prefix="rnnlab-spectra") as pool:
            self.spectra_pool = pool  # training is over: the last snapshot may use 2 cores
            try:
                self._drain()
            finally:
                self.spectra_pool = None
        self._raise_worker_error()
        if len(self.snapshot_epochs) >= 2:
            series = np.stack(self.snapshot_max_re, axis=1)
            self.writer.put_static("crossing_epoch", crossing_epoch(self.snapshot_epochs, series))
        path = self.writer.finish()
        self.checkpoint_file.unlink(missing_ok=True)
        return path

    def abort(self) -> None:
        """Stop after a failure or an interrupt: commit what was written, keep the .partial."""
        if self.error is None:
            self._flush_curve()
        self._drain()
        try:
            if self.error is None and self.writer.ds is not None:
                self.writer.commit()
        finally:
            self.writer.close()
