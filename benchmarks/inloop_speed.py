"""Speed of the analyses that put trained networks back in the loop, against training.

One process, one shape (default: 8 seeds, N = 256, tanh, denoise, T = 200 steps): rnnlab's own
`Trainer.step()` (batch 32) is timed for a few epochs, then the trained networks (J0, J, B, w
and the config, as an archive holds them) go through `rnnlab.analysis.evaluate` (1000 fresh
trials per seed) and `functional_rank` (8 ranks: 0, 1, 2, 3, 5, 10, 20, N; with and without
the regulariser-aware split) on the threads scheduler, as `rnnlab analyze` runs them. The
table gives each time and its ratio to one training epoch measured in the same run (medians
over --repeats, default 1: the split alone takes minutes on 2 cores).

    python benchmarks/inloop_speed.py [--seeds 8 --N 256 --trials 1000 --repeats 1 --json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
import xarray as xr

import rnnlab.analysis as ra
from rnnlab.analysis.inloop import DEFAULT_RANKS
from rnnlab.config import load_config, to_toml
from rnnlab.training.trainer import Trainer

RANKS = DEFAULT_RANKS  # (0, 1, 2, 3, 5, 10, 20) and N: 8 ranks


def archive_of(trainer: Trainer) -> xr.Dataset:
    """The trainer's networks as an archive-shaped dataset (one snapshot epoch)."""
    net, cfg = trainer.net, trainer.cfg
    J0 = net.J0.detach().cpu().numpy()
    dJ = (net.J.detach().cpu().numpy() - J0)[:, None]
    return xr.Dataset(
        {
            "J0": (("seed", "neuron", "neuron_pre"), J0),
            "dJ": (("seed", "epoch", "neuron", "neuron_pre"), dJ),
            "B": (("seed", "epoch", "neuron", "input"), net.B.detach().cpu().numpy()[:, None]),
            "w": (("seed", "epoch", "neuron", "output"), net.w.detach().cpu().numpy()[:, None]),
        },
        coords={"seed": list(cfg.seeds), "epoch": [trainer.cfg.train.epochs]},
        attrs={"config": to_toml(cfg)},
    )


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--N", type=int, default=256)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--T", type=int, default=200, help="Euler steps per trial")
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=8, help="training epochs timed")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    cfg = load_config(
        None,
        [
            f"seeds={args.seeds}",
            f"model.N={args.N}",
            f"task.batch={args.batch}",
            f"task.duration={args.T * 0.01}",
            f"train.epochs={args.epochs}",
            f"device='{args.device}'",
        ],
    )
    trainer = Trainer(cfg, progress=False)  # compiles or loads the kernels
    for e in range(3):  # warm-up steps (allocations, caches)
        trainer.step(e)
    epoch = [timed(lambda e=e: trainer.step(e)) for e in range(args.epochs)]
    ds = archive_of(trainer)

    def run(obj):
        return ra.compute(obj, progress=False)

    run(ra.evaluate(ds, n_trials=8))  # warm the simulation path once
    rows = {
        "training epoch (Trainer.step)": epoch,
        f"evaluate, {args.trials} trials": [
            timed(lambda: run(ra.evaluate(ds, n_trials=args.trials))) for _ in range(args.repeats)
        ],
        f"functional_rank, 8 ranks, {args.trials} trials": [
            timed(lambda: run(ra.functional_rank(ds, RANKS, args.trials, split=False)))
            for _ in range(args.repeats)
        ],
        f"functional_rank + split, 2 x 8 ranks, {args.trials} trials": [
            timed(lambda: run(ra.functional_rank(ds, RANKS, args.trials)))
            for _ in range(args.repeats)
        ],
    }
    base = statistics.median(epoch)
    device = "cuda" if torch.cuda.is_available() and args.device != "cpu" else "cpu"
    head = (
        f"# device={device}, torch={torch.__version__}, threads={torch.get_num_threads()}, "
        f"S={args.seeds}, N={args.N}, T={args.T}, batch={args.batch}"
    )
    result = {
        name: {"median_s": statistics.median(v), "epochs": statistics.median(v) / base}
        for name, v in rows.items()
    }
    if args.json:
        print(json.dumps({"header": head, "rows": result}, indent=2))
        return
    print(head)
    print("| what | median (s) | in training epochs |")
    print("|---|---|---|")
    for name, r in result.items():
        print(f"| {name} | {r['median_s']:.3f} | {r['epochs']:.1f} |")
    sim = args.seeds * args.trials * args.T * args.N**2 * 2
    ev = result[f"evaluate, {args.trials} trials"]["median_s"]
    print(f"evaluate: {sim / ev / 1e9:.0f} GFLOP/s of recurrent products ({np.float32(0).dtype})")


if __name__ == "__main__":
    main()
