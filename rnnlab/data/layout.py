"""The fixed shape of an archive, known from its config alone (no netCDF import: the command line
checks the disk space a run needs before it loads anything heavy)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnlab.config import Config, snapshot_epochs
from rnnlab.data.schema import COMPLEX_DIM, VARIABLES


@dataclass(frozen=True)
class Layout:
    """The fixed shape of an archive: its record schedules and the size of every dim."""

    snapshots: tuple[int, ...]  # epoch of each `epoch` record
    trajectories: tuple[int, ...]  # epoch of each `traj_epoch` record
    sizes: dict[str, int]

    @classmethod
    def of(cls, cfg: Config, static: dict[str, Any]) -> Layout:
        epochs, record = cfg.train.epochs, cfg.record
        snaps = tuple(snapshot_epochs(epochs, record.every))
        trajs = tuple(snapshot_epochs(epochs, record.trajectories_every))
        n = cfg.model.N
        sizes = {
            "seed": len(cfg.seeds),
            "epoch": len(snaps),
            "curve_epoch": epochs,
            "traj_epoch": len(trajs),
            "neuron": n,
            "neuron_pre": n,
            "eig": n,
            "track": record.track_k,
            "input": len(static["input_names"]),
            "output": len(static["output_names"]),
            "trial": record.n_eval_trials,
            "time": len(static["time"]),
            COMPLEX_DIM: 2,
        }
        return cls(snaps, trajs, sizes)

    def kept(self, cfg: Config, imposed: bool) -> dict[str, Any]:
        """The schema's variables this run stores (record.store, imposed u and v)."""
        store = cfg.record.store
        skip = {"J"} if store == "dJ" else {"dJ"} if store == "J" else set()
        if not imposed:
            skip |= {"imposed_u", "imposed_v"}
        return {name: spec for name, spec in VARIABLES.items() if name not in skip}

    def nbytes(self, cfg: Config, imposed: bool) -> int:
        """Bytes of all stored variables: the size of the .partial (and of the archive)."""
        total = 0
        for spec in self.kept(cfg, imposed).values():
            count = int(np.prod([self.sizes[d] for d in spec.dims], dtype=np.int64))
            total += count * np.dtype(spec.dtype).itemsize
        return total
