"""Kill campaign: SIGKILL real `rnnlab run`s at random moments and check every archive left behind.

For each kill: the `.partial` (if the run got that far) must load whole with plain
`xr.open_dataset(...).load()`, every record variable must agree with its commit marker, and every
committed record must be finite. Then SIGINT runs (stop, resume, compare with an uninterrupted
run), full-disk runs on a small tmpfs (root only), and, as the baseline the layout was chosen
against, the same kills of a minimal writer with unlimited dims (the layout before).

    python benchmarks/kill_campaign.py                 # 100 kills, 10 SIGINTs, 5 full disks
    python benchmarks/kill_campaign.py --kills 20 --baseline 40

Prints the counts; docs/reliability.md quotes them.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr

RUN = {
    "seeds": "[0, 1]",
    "model.N": "32",
    "task.duration": "0.3",
    "task.washout": "0.05",
    "task.batch": "4",
    "train.epochs": "3000",
    "record.every": "3",
    "record.trajectories_every": "7",
    "record.n_eval_trials": "2",
}
RECORDS = {
    "epoch": ("J", "dJ", "w", "loss", "eigvals", "eigvals_jac"),
    "curve_epoch": ("loss_curve", "tracked", "max_re_jac0"),
    "traj_epoch": ("traj_rate",),
}


def rnnlab(*args: str) -> list[str]:
    return [sys.executable, "-m", "rnnlab.cli", *args]


def sets(extra: dict[str, str] | None = None) -> list[str]:
    return sum((["--set", f"{k}={v}"] for k, v in {**RUN, **(extra or {})}.items()), [])


def committed(path: Path) -> int:
    """Committed snapshots of a (possibly running) archive, 0 when unreadable."""
    import netCDF4

    try:
        with netCDF4.Dataset(path) as nc:
            return int((np.asarray(nc["epoch"][:]) >= 0).sum())
    except (OSError, IndexError, KeyError):
        return 0


def check(path: Path) -> tuple[bool, int, str]:
    """(whole and consistent, committed snapshots, what failed)."""
    try:
        with xr.open_dataset(path) as ds:
            ds = ds.load()
            for dim, names in RECORDS.items():
                marks = ds[dim].values
                n = int(np.argmax(marks < 0)) if (marks < 0).any() else len(marks)
                if not (np.all(marks[n:] == -1) and np.all(np.diff(marks[:n]) > 0)):
                    return False, 0, f"{dim} markers {marks}"
                for name in names:
                    if name in ds and not np.isfinite(ds[name].isel({dim: slice(0, n)})).all():
                        return False, 0, f"{name}: a committed record is not finite"
            return True, int((ds.epoch.values >= 0).sum()), ""
    except Exception as exc:  # noqa: BLE001 (any failure to read is what we count)
        return False, 0, f"{type(exc).__name__}: {exc}"


def kills(n: int, workdir: Path, rng: random.Random) -> dict[str, int]:
    counts = {"kills": n, "no partial yet": 0, "partial whole": 0, "broken": 0, "snapshots": 0}
    for k in range(n):
        out = workdir / f"kill{k}.nc"
        proc = subprocess.Popen(
            rnnlab(
                "run",
                "-o",
                str(out),
                "--quiet",
                *sets(),
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        partial = workdir / f"kill{k}.nc.partial"
        if k % 4 == 0:  # anywhere from start-up through the archive's creation
            time.sleep(rng.uniform(0.2, 4.0))
        else:  # while snapshots are being written and committed
            deadline = time.time() + 60
            while committed(partial) < 1 and time.time() < deadline:
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 2.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if not partial.exists():
            counts["no partial yet"] += 1
            continue
        ok, snaps, why = check(partial)
        counts["partial whole" if ok else "broken"] += 1
        counts["snapshots"] += snaps
        if not ok:
            print(f"  kill {k}: {why}", file=sys.stderr)
        partial.unlink(missing_ok=True)
    return counts


def sigints(n: int, workdir: Path, rng: random.Random) -> dict[str, int]:
    """SIGINT mid-run, then --resume: exit 130, one line, and the same values as a whole run."""
    extra = {"train.epochs": "600", "record.every": "10"}
    reference = workdir / "whole.nc"
    subprocess.run(rnnlab("run", "-o", str(reference), "--quiet", *sets(extra)), check=True)
    counts = {"sigints": n, "exit 130 + one line": 0, "finished first": 0, "resumed equal": 0}
    with xr.open_dataset(reference) as ref:
        ref = ref.load()
    for k in range(n):
        out = workdir / f"int{k}.nc"
        proc = subprocess.Popen(
            rnnlab("run", "-o", str(out), "--quiet", *sets(extra)),
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.time() + 60
        partial = workdir / f"int{k}.nc.partial"
        while committed(partial) < 1 and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.0))
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate()
        if proc.returncode == 130 and len(err.strip().splitlines()) == 1:
            counts["exit 130 + one line"] += 1
        if out.exists():  # the signal landed after the archive was complete
            counts["finished first"] += 1
        else:
            subprocess.run(rnnlab("run", "--resume", str(partial), "--quiet"), check=True)
        with xr.open_dataset(out) as got:
            same = all(
                np.allclose(got[v].values, ref[v].values, rtol=1e-5, atol=1e-6, equal_nan=True)
                for v in ("J", "loss_curve", "tracked", "eigvals")
            )
        counts["resumed equal"] += int(same)
    return counts


def full_disks(n: int, workdir: Path) -> dict[str, int] | None:
    """Runs on a 3 MB tmpfs filled while they train: one-line error, committed records kept."""
    if os.geteuid() != 0:
        return None
    counts = {"full disks": n, "one line": 0, "partial whole": 0}
    for k in range(n):
        disk = workdir / f"disk{k}"
        disk.mkdir()
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(disk)]).returncode:
            return None
        try:
            out = disk / "x.nc"
            extra = {"train.epochs": "60", "record.every": "5", "record.compression": "zlib"}
            proc = subprocess.Popen(
                rnnlab("run", "-o", str(out), "--quiet", *sets(extra)),
                stderr=subprocess.PIPE,
                text=True,
            )
            deadline = time.time() + 60
            while committed(disk / "x.nc.partial") < 1 and time.time() < deadline:
                time.sleep(0.05)
            stat = os.statvfs(disk)
            (disk / "filler").write_bytes(b"\0" * max(0, stat.f_bavail * stat.f_frsize - 4096))
            _, err = proc.communicate()
            lines = err.strip().splitlines()
            if proc.returncode and len(lines) == 1 and "not enough disk space" in lines[0]:
                counts["one line"] += 1
            counts["partial whole"] += int(check(disk / "x.nc.partial")[0])
        finally:
            subprocess.run(["umount", str(disk)])
    return counts


BASELINE = """
import sys, numpy as np, netCDF4
ds = netCDF4.Dataset(sys.argv[1], "w")
ds.createDimension("seed", 2); ds.createDimension("epoch", None); ds.createDimension("n", 32)
ds.createDimension("m", 32)
J = ds.createVariable("J", "f4", ("seed", "epoch", "n", "m"), chunksizes=(1, 1, 32, 32))
L = ds.createVariable("loss", "f4", ("seed", "epoch"))
print("ready", flush=True)
rng = np.random.default_rng()
for i in range(100000):
    J[:, i] = rng.standard_normal((2, 32, 32)).astype("f4")
    L[:, i] = 1.0
    ds.sync()
"""


def baseline(n: int, workdir: Path, rng: random.Random) -> dict[str, int]:
    """The layout before: unlimited dims appended and synced per record, killed the same way."""
    script = workdir / "unlimited_writer.py"
    script.write_text(BASELINE)
    counts = {"baseline kills": n, "unreadable": 0}
    for k in range(n):
        path = workdir / f"base{k}.nc"
        proc = subprocess.Popen(
            [sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True
        )
        proc.stdout.readline()
        time.sleep(rng.uniform(0.0, 0.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        try:
            with xr.open_dataset(path) as ds:
                ds.load()
        except Exception:  # noqa: BLE001
            counts["unreadable"] += 1
        path.unlink(missing_ok=True)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--sigints", type=int, default=10)
    parser.add_argument("--full-disks", type=int, default=5)
    parser.add_argument("--baseline", type=int, default=100, help="kills of the old layout")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")
    with tempfile.TemporaryDirectory(prefix="rnnlab-kills-") as tmp:
        work = Path(tmp)
        show(kills(args.kills, work, rng))
        if args.sigints:
            show(sigints(args.sigints, work, rng))
        if args.full_disks:
            disk = full_disks(args.full_disks, work)
            show(disk if disk is not None else {"full disks": "skipped (not root)"})
        if args.baseline:
            show(baseline(args.baseline, work, rng))


def show(counts: dict) -> None:
    """One line of counts, printed as soon as its part of the campaign is done."""
    print("  ".join(f"{k}: {v}" for k, v in counts.items()), flush=True)


if __name__ == "__main__":
    main()
