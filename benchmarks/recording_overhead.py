"""Wall time of training with and without the default recording schedule, in one process.

Recording = per-epoch learning curve and outlier tracking, snapshots (J, dJ, B, w, full spectra of
J and both Jacobians) every `record.every` epochs, trajectories every `record.trajectories_every`,
all streamed to a real archive by the background writer. Target: recording adds <= 10%.
Each repeat runs both back to back; the headline is the median over repeats of the pair's
ratio (robust to a single slow or fast run on a shared machine), with min/min beside it.

    python benchmarks/recording_overhead.py [--set KEY=VALUE ...] [--repeats 9]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from rnnlab.config import load_config
from rnnlab.training.run import run
from rnnlab.training.trainer import Trainer


def train_only(cfg: dict) -> float:
    start = time.perf_counter()
    Trainer(cfg, progress=False).run()
    return time.perf_counter() - start


def train_and_record(cfg: dict, directory: Path) -> float:
    """A fresh archive each time: replacing one would add the file system's unlink of the old
    file (16-21 ms for the default's 15 MB here), which is not recording."""
    path = directory / "bench.nc"
    path.unlink(missing_ok=True)
    start = time.perf_counter()
    run(cfg, path, progress=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    cfg = load_config(None, args.overrides)
    with tempfile.TemporaryDirectory() as tmp:
        train_only(load_config(None, [*args.overrides, "train.epochs=5"]))  # warm-up
        bare, recorded = [], []
        for _ in range(args.repeats):  # interleaved, so drifting machine load hits both
            bare.append(train_only(cfg))
            recorded.append(train_and_record(cfg, Path(tmp)))
    print(
        f"config: seeds={len(cfg.seeds)} N={cfg.model.N} epochs={cfg.train.epochs} "
        f"every={cfg.record.every} threads={torch.get_num_threads()}"
    )
    print(f"{'':22s}{'median s':>10s}{'min s':>10s}")
    print(f"{'training only':22s}{statistics.median(bare):10.2f}{min(bare):10.2f}")
    print(f"{'training + recording':22s}{statistics.median(recorded):10.2f}{min(recorded):10.2f}")
    ratios = sorted(r / b - 1 for r, b in zip(recorded, bare, strict=True))
    print(f"recording overhead (min/min): {min(recorded) / min(bare) - 1:+.1%}")
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    print(
        f"recording overhead, median of the {len(ratios)} interleaved pairs: "
        f"{statistics.median(ratios):+.1%} (middle half of the pairs {quartiles[0]:+.1%} to "
        f"{quartiles[2]:+.1%}, all from {ratios[0]:+.1%} to {ratios[-1]:+.1%}; target <= +10%)"
    )


if __name__ == "__main__":
    main()
