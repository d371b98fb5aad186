"""The archive schema: each variable's dims, long_name and units, in one place (docs/archive.md)."""

from __future__ import annotations

from dataclasses import dataclass

from rnnlab.data.ri import RI

SCHEMA_VERSION = "rnnlab-archive/2"
READABLE_SCHEMAS = ("rnnlab-archive/1", SCHEMA_VERSION)  # /1: unlimited record dims, no markers
RECORD_DIMS = ("epoch", "curve_epoch", "traj_epoch")  # their coordinate is the commit marker
UNCOMMITTED = -1  # record-coordinate value of a record not (yet) committed
COMPLEX_DIM = RI  # one name for the (real, imaginary) dim: rnnlab.data.ri


@dataclass(frozen=True)
class Var:
    """A variable of the archive."""

    dims: tuple[str, ...]
    long_name: str
    units: str = "1"
    dtype: str = "f4"


S, E, C, TE = "seed", "epoch", "curve_epoch", "traj_epoch"
MAT = ("neuron", "neuron_pre")

VARIABLES: dict[str, Var] = {
    "J0": Var((S, *MAT), "initial connectivity g*W - (b/N)*11^T (+ m*u*v^T)"),
    "J": Var((S, E, *MAT), "connectivity J"),
    "dJ": Var((S, E, *MAT), "learned change of connectivity J - J0"),
    "B": Var((S, E, "neuron", "input"), "input weights B"),
    "w": Var((S, E, "neuron", "output"), "readout weights w"),
    "loss": Var((S, E), "loss on the fixed evaluation trials (MSE + regularisers)"),
    "mse": Var((S, E), "mean squared error on the fixed evaluation trials after the washout"),
    "loss_curve": Var((S, C), "training loss on each epoch's batch"),
    "mse_curve": Var((S, C), "training mean squared error on each epoch's batch"),
    "mse_optimal": Var(
        (), "minimum achievable MSE of the task (steady-state Kalman filter)", dtype="f8"
    ),
    "row_mean": Var((S, E, "neuron"), "mean of each row of J"),
    "col_mean": Var((S, E, "neuron_pre"), "mean of each column of J"),
    "h_mean": Var((S, E, "neuron"), "state h averaged over evaluation trials after the washout"),
    "eigvals": Var((S, E, "eig", COMPLEX_DIM), "eigenvalues of J (real, imaginary)"),
    "eigvals_jac0": Var(
        (S, E, "eig", COMPLEX_DIM),
        "eigenvalues of the Jacobian -I + J diag(phi'(0)) at the origin",
        "1/tau",
    ),
    "eigvals_jac": Var(
        (S, E, "eig", COMPLEX_DIM), "eigenvalues of the Jacobian -I + J diag(phi'(h_mean))", "1/tau"
    ),
    "tracked": Var(
        (S, C, "track", COMPLEX_DIM),
        "leading eigenvalues of J tracked every epoch (real, imaginary)",
    ),
    "n_outliers": Var(
        (S, C), "number of tracked eigenvalues of J outside the bulk edge", dtype="i4"
    ),
    "max_re_jac0": Var(
        (S, C), "largest real part of the tracked Jacobian eigenvalues at the origin", "1/tau"
    ),
    "crossing_epoch": Var(
        (S,), "epoch at which max Re of the Jacobian at the origin crosses 0", "epoch", dtype="f8"
    ),
    "diverged_epoch": Var(
        (S,),
        "epoch whose loss or update made the seed non-finite; the seed is frozen from then on "
        "(NaN: never)",
        "epoch",
        dtype="f8",
    ),
    "eval_input": Var((S, "trial", "time", "input"), "inputs of the fixed evaluation trials"),
    "eval_target": Var((S, "trial", "time", "output"), "targets of the fixed evaluation trials"),
    "traj_output": Var((S, TE, "trial", "time", "output"), "network output on evaluation trials"),
    "traj_rate": Var((S, TE, "trial", "time", "neuron"), "rates phi(h) on evaluation trials"),
    "imposed_u": Var((S, "neuron"), "unit vector u of the imposed m*u*v^T"),
    "imposed_v": Var((S, "neuron_pre"), "unit vector v of the imposed m*u*v^T"),
}

COORDS: dict[str, Var] = {
    "seed": Var((S,), "seed of the random streams", dtype="i8"),
    "epoch": Var((E,), "optimizer steps before this snapshot", "epoch", dtype="i8"),
    "curve_epoch": Var((C,), "optimizer steps before this loss", "epoch", dtype="i8"),
    "traj_epoch": Var((TE,), "optimizer steps before these trajectories", "epoch", dtype="i8"),
    "neuron": Var(("neuron",), "post-synaptic neuron", dtype="i4"),
    "neuron_pre": Var(("neuron_pre",), "pre-synaptic neuron", dtype="i4"),
    "trial": Var(("trial",), "evaluation trial", dtype="i4"),
    "time": Var(("time",), "time within a trial", "s", dtype="f8"),
    "eig": Var(("eig",), "eigenvalue rank by descending real part", dtype="i4"),
    "track": Var(("track",), "tracked eigenvalue slot", dtype="i4"),
}

# Per-run settings stored as coordinates along seed, since open_mfdataset keeps one file's attrs.
SEED_SETTINGS: dict[str, tuple[str, str]] = {
    "g": ("model", "g"),
    "b": ("model", "b"),
    "lowrank_m": ("model.lowrank", "m"),
    "lowrank_overlap": ("model.lowrank", "overlap"),
    "lambda_w": ("train", "lambda_w"),
    "lambda_bal": ("train", "lambda_bal"),
    "lr": ("train", "lr"),
}

# Global attributes of an archive written by `rnnlab sweep` (rnnlab.data.grid): the sweep's id, the
# point as TOML (`"model.g" = 0.8`, one key a line) and the whole grid as TOML.
SWEEP_ID, SWEEP_POINT, SWEEP_GRID = "sweep_id", "sweep_point", "sweep_grid"
SWEEP_ATTRS = (SWEEP_ID, SWEEP_POINT, SWEEP_GRID)
