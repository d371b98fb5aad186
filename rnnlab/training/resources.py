"""Rough memory and disk needs of a run, checked before anything is created.

A config such as `model.N=100000000` validates (every value is in range) but cannot fit in any
memory: without this check it ends deep in torch's allocator. The estimates here are plain
arithmetic on the config (no torch import), meant to catch sizes that are clearly too big, not to
predict the peak to the byte.
"""

from __future__ import annotations

import os
from pathlib import Path

from rnnlab.config import Config, n_steps
from rnnlab.data.paths import human_bytes
from rnnlab.errors import ConfigError

# The interpreter with torch, numba and netCDF loaded: about 0.55 GB resident for a tiny run.
LIBRARIES = 500 * 10**6
F32 = 4  # bytes of the float32 tensors the trainer and the archive use
# Refuse only when the estimate exceeds what is available by this factor: the estimate is rough,
# and a run a little over it may still fit (or page through swap).
SLACK = 1.5
# Copies of an (S, N, N) matrix alive while training: J, J0, J's gradient, the regulariser's and
# clipping temporaries, and the trainer's snapshot copy handed to the writer.
PARAM_COPIES = 6
ADAM_COPIES = 2  # Adam's two moments of J
BPTT_COPIES = 4  # states, rates, the adjoint and the gradient w.r.t. rates, each (S, batch, T, N)
EVAL_COPIES = 3  # states and rates of the evaluation trials, and the host copy of the rates
# The archive writer holds queued snapshots (up to 4 pending plus the one being written) and
# forms dJ = J - J0 beside them.
WRITER_COPIES = 6
WRITER_TRAJ_COPIES = 2  # queued trajectory copies, (S, n_eval, T, N) each
EIG_COPIES = 4  # float64 (N, N) workspaces of the writer's eigendecompositions (one seed at once)
# On a GPU the host still builds the initial W and J0 of every seed in float64 and stacks them.
INIT_HOST_COPIES = 5
MEMINFO = Path("/proc/meminfo")
CGROUP_ROOT = Path("/sys/fs/cgroup")


def n_records(epochs: int, every: int) -> int:
    """len(sorted(set(range(0, epochs + 1, every)) | {epochs})), without building the set."""
    return epochs // every + 1 + (1 if epochs % every else 0)


def _sizes(cfg: Config) -> dict[str, int]:
    """The sizes every estimate is built from."""
    task = cfg.task
    return {
        "S": len(cfg.seeds),
        "N": cfg.model.N,
        "T": n_steps(cfg),
        "batch": task.batch,
        "n_eval": cfg.record.n_eval_trials,
        "n_in": len(task.inputs),
        "n_out": len(task.outputs),
    }


def memory_parts(cfg: Config, device: str = "cpu") -> dict[str, int]:
    """Estimated bytes of the big allocations of a run in host memory, by what holds them.

    With device "cuda" the parameters, optimizer state and BPTT workspace live on the GPU; the
    host keeps the float64 initialisation, one copy of the evaluation rates and the writer's.
    """
    z = _sizes(cfg)
    s, n, t = z["S"], z["N"], z["T"]
    matrices = s * n * n * F32
    adam = ADAM_COPIES if cfg.train.optimizer == "adam" else 0
    noise = 2 if cfg.model.noise > 0 else 0  # the drawn noise and the scaled drive
    trajectories = s * z["n_eval"] * t * n * F32
    writer = WRITER_COPIES * matrices + WRITER_TRAJ_COPIES * trajectories + EIG_COPIES * n * n * 8
    if device == "cuda":
        return {
            "libraries": LIBRARIES,
            "parameters": INIT_HOST_COPIES * matrices,
            "evaluation": trajectories,
            "writer": writer,
        }
    return {
        "libraries": LIBRARIES,
        "parameters": (PARAM_COPIES + adam) * matrices,
        "bptt": (BPTT_COPIES + noise) * s * z["batch"] * t * n * F32,
        "evaluation": EVAL_COPIES * trajectories,
        "writer": writer,
    }


def estimate_memory(cfg: Config, device: str = "cpu") -> int:
    """Approximate peak host memory (bytes) of training `cfg` on `device` (cpu or cuda): on the
    CPU the parameters and optimizer state, the BPTT workspace, the evaluation trajectories and
    the archive writer's copies of snapshots."""
    return sum(memory_parts(cfg, device).values())


def estimate_archive_bytes(cfg: Config) -> int:
    """Approximate uncompressed size (bytes) of the archive `cfg` writes, for a disk check."""
    z = _sizes(cfg)
    s, n, t, n_eval = z["S"], z["N"], z["T"], z["n_eval"]
    record, epochs = cfg.record, cfg.train.epochs
    n_snap = n_records(epochs, record.every)
    n_traj = n_records(epochs, record.trajectories_every)
    matrices = (1 if record.store in ("J", "dJ") else 2) * s * n_snap * n * n * F32
    vectors = s * n_snap * n * (z["n_in"] + z["n_out"] + 3) * F32  # B, w, row/col/h means
    eigvals = 3 * s * n_snap * n * 2 * F32  # J, Jacobian at the origin, Jacobian at h_mean
    curves = s * epochs * (4 + 2 * record.track_k) * F32
    trajectories = s * n_traj * n_eval * t * (n + z["n_out"]) * F32
    trials = s * n_eval * t * (z["n_in"] + z["n_out"]) * F32
    static = s * n * n * F32 + 2 * s * n * F32 + 8 * t  # J0, imposed u and v, time
    return matrices + vectors + eigvals + curves + trajectories + trials + static


def available_memory() -> int | None:
    """Bytes of memory this process can still take: MemAvailable (or free pages), capped by a
    cgroup v2 limit (containers, SLURM jobs); None when unknown."""
    found = [v for v in (_meminfo_available(MEMINFO), _cgroup_available()) if v is not None]
    if not found:
        found = [v for v in (_sysconf_available(),) if v is not None]
    return min(found) if found else None


def _meminfo_available(path: Path) -> int | None:
    """MemAvailable of /proc/meminfo in bytes, or None."""
    try:
        for line in path.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024  # the value is in kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _sysconf_available() -> int | None:
    """Free physical pages times the page size, where the platform reports them."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup_available() -> int | None:
    """memory.max - memory.current of this process's cgroup (v2), or None without a limit."""
    try:
        line = Path("/proc/self/cgroup").read_text().splitlines()[0]
        if not line.startswith("0::"):
            return None
        group = CGROUP_ROOT / line[3:].lstrip("/")
        limit = (group / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(0, int(limit) - int((group / "memory.current").read_text()))
    except (OSError, ValueError, IndexError):
        return None


def _sizes_text(cfg: Config, largest: str) -> str:
    """The settings behind the largest part of the estimate, for the error message."""
    z = _sizes(cfg)
    text = f"model.N={z['N']}, {z['S']} seed{'s' if z['S'] != 1 else ''}"
    if largest == "bptt":
        text += f", task.batch={z['batch']}, {z['T']} steps per trial"
    elif largest == "evaluation":
        text += f", record.n_eval_trials={z['n_eval']}, {z['T']} steps per trial"
    return text


def gpu_present() -> bool:
    """Whether an NVIDIA driver reports a GPU (what device "auto" would pick), without torch."""
    gpus = Path("/proc/driver/nvidia/gpus")
    try:
        return gpus.is_dir() and any(gpus.iterdir())
    except OSError:
        return False


def check_resources(cfg: Config, available: int | None = None, device: str | None = None) -> None:
    """Raise ConfigError when the run clearly cannot fit in host memory (`available` bytes, by
    default what `available_memory` reports); do nothing when that is unknown. `device` is where
    training runs (cpu or cuda; default: cfg's device, "auto" guessed from the driver). GPU
    memory is not checked here."""
    available = available_memory() if available is None else available
    if available is None:
        return
    device = device or cfg.device
    if device == "auto":
        device = "cuda" if gpu_present() else "cpu"
    parts = memory_parts(cfg, device)
    need = sum(parts.values())
    if need > SLACK * available:
        largest = max(parts, key=parts.__getitem__)
        raise ConfigError(
            f"this run needs about {human_bytes(need)} of memory ({_sizes_text(cfg, largest)}); "
            f"{human_bytes(available)} is available"
        )
