"""Overhead of per-epoch outlier tracking on a fused training epoch (issue 3: target < 10%).

A training epoch is rnnlab.bptt.dynamics.run_dynamics(fused=True) + readout + MSE + backward +
Adam on
J and w at (8 seeds, N=256, batch 32, T=200, tanh). The same epochs are timed with and without
LeadingEigTracker.update(J) after each optimizer step, interleaved in rounds so that load on the
machine hits both alike; the ratio of the best times is printed, and the tracker update timed
alone as a fraction of an epoch.

    python benchmarks/tracking_overhead.py [--seeds 8 --N 256 --batch 32 --T 200 --epochs 10]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from rnnlab.bptt.dynamics import readout, run_dynamics
from rnnlab.spectra.tracker import LeadingEigTracker
from rnnlab.training.monitor import TorchEigTracker


def make_epoch(args: argparse.Namespace, device: torch.device):
    """A closure running one training epoch on fixed random data; returns J for the tracker."""
    gen = torch.Generator().manual_seed(0)
    s, n, bt, t = args.seeds, args.N, args.batch, args.T
    J = (args.g * torch.randn(s, n, n, generator=gen) / n**0.5).to(device).requires_grad_()
    w = (torch.randn(s, n, 1, generator=gen) / n**0.5).to(device).requires_grad_()
    drive = torch.randn(s, bt, t, n, generator=gen).to(device)
    h0 = torch.zeros(s, bt, n, device=device)
    target = torch.randn(s, bt, t, 1, generator=gen).to(device)
    opt = torch.optim.Adam([J, w], lr=1e-3)

    def epoch() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        rates, _ = run_dynamics(J, drive, h0, 0.1, "tanh", fused=True)
        loss = ((readout(rates, w) - target) ** 2).mean(dim=(1, 2, 3)).sum()
        loss.backward()
        opt.step()
        return J.detach()

    return epoch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return 1e3 * (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--N", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--T", type=int, default=200)
    parser.add_argument("--g", type=float, default=1.5)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--iters", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=10, help="timed epochs per variant")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)

    epoch = make_epoch(args, device)
    if device.type == "cpu":
        tracker = LeadingEigTracker(args.seeds, args.N, k=args.k, iters=args.iters)
    else:
        basis = LeadingEigTracker(args.seeds, args.N, k=args.k).basis.transpose(0, 2, 1)
        basis = torch.from_numpy(basis.copy()).to(device)
        tracker = TorchEigTracker(basis, k=args.k, iters=args.iters)
    tracker.update(epoch())  # warm-up: first call runs the tracker's warm-up products
    epoch()
    plain, tracked, track_only = [], [], []
    for _ in range(args.epochs):
        plain.append(timed(epoch, device))
        tracked.append(timed(lambda: tracker.update(epoch()), device))
        J = epoch()
        track_only.append(timed(lambda J=J: tracker.update(J), device))
    print(
        f"device={device} threads={torch.get_num_threads()} seeds={args.seeds} N={args.N} "
        f"batch={args.batch} T={args.T} tanh, k={args.k} iters={args.iters}, "
        f"{args.epochs} epochs per variant (best / median)"
    )
    rows = [("epoch without tracking", plain), ("epoch with tracking", tracked)]
    rows.append(("tracker update alone", track_only))
    for label, times in rows:
        print(f"{label + ':':24s}{min(times):9.2f} / {statistics.median(times):9.2f} ms/epoch")
    # Best-of (as timeit advises): load on a shared machine only ever adds time.
    ratio = min(tracked) / min(plain)
    print(f"ratio with/without:     {ratio:9.3f}  (best; target < 1.10)")
    alone = statistics.median(track_only) / statistics.median(plain)
    print(f"update / epoch:         {alone:9.3f}  (medians)")


if __name__ == "__main__":
    main()
