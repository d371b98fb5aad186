"""Training speed: ms per epoch of the plain per-step autograd loop vs the fused BPTT step.

An epoch = forward over T steps + MSE on the readout + backward + Adam step on J and w (fp32,
tanh). Effective GFLOP/s counts the three (S, Bt, N) @ (S, N, N)-shaped products per step
(forward, adjoint, dJ): 3 * 2 * S * N^2 * Bt * T per epoch, and is compared with a bare bmm of
the step's shape timed in the same run. Each sample times ~100 ms of consecutive epochs of one
method (steady state, as in training); samples of the methods are interleaved; medians reported.

    python benchmarks/train_speed.py                      # CPU, default shapes, 2 threads
    python benchmarks/train_speed.py --device cuda        # GPU shapes, fused step CUDA-graphed
    python benchmarks/train_speed.py --shapes 8,256,32,200 --repeats 7 --json
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from rnnlab.bptt.cudagraph import GraphedStep
from rnnlab.bptt.dynamics import Workspace, readout, run_dynamics

CPU_SHAPES = [(8, 256, 32, 200), (4, 64, 16, 200), (1, 1024, 128, 200)]
GPU_SHAPES = [(32, 256, 64, 200), (16, 1024, 64, 200)]
ALPHA, N_IN, N_OUT = 0.1, 2, 2


@dataclass
class Problem:
    """Parameters, optimizer and one fixed training batch of a benchmark shape."""

    J: Tensor
    w: Tensor
    h0: Tensor
    drive: Tensor
    target: Tensor
    opt: torch.optim.Optimizer
    workspace: Workspace


def make_problem(shape: tuple[int, int, int, int], device: torch.device) -> Problem:
    """J0 = 1.5 W - (1/N) 11^T, random readout, drive = u B^T, random targets (fp32)."""
    s, n, bt, t = shape
    gen = torch.Generator().manual_seed(0)
    J = 1.5 * torch.randn(s, n, n, generator=gen) / math.sqrt(n) - 1.0 / n
    w = torch.randn(s, n, N_OUT, generator=gen) / math.sqrt(n)
    b_in = torch.randn(s, n, N_IN, generator=gen)
    u = torch.randn(s, bt, t, N_IN, generator=gen)
    # (S, Bt, T, N) stored time-major, as a trainer should build it: each step's slice is then a
    # contiguous block per seed (both the plain loop and the fused kernel read it step by step).
    drive = (u.transpose(1, 2) @ b_in.transpose(1, 2).unsqueeze(1)).contiguous().transpose(1, 2)
    target = 0.5 * torch.randn(s, bt, t, N_OUT, generator=gen)
    J, w = (x.to(device).requires_grad_() for x in (J, w))
    opt = torch.optim.Adam([J, w], lr=1e-3, capturable=device.type == "cuda")
    h0 = torch.zeros(s, bt, n, device=device)
    return Problem(J, w, h0, drive.to(device), target.to(device), opt, Workspace())


def train_step(
    p: Problem, drive: Tensor, target: Tensor, *, fused: bool, loop: str = "auto"
) -> Tensor:
    """One epoch on one batch; swap this for rnnlab's trainer step when it exists."""
    p.opt.zero_grad(set_to_none=True)
    ws = p.workspace if fused else None
    rates, _ = run_dynamics(p.J, drive, p.h0, ALPHA, "tanh", fused=fused, workspace=ws, loop=loop)
    loss = (readout(rates, p.w, workspace=ws) - target).square().mean()
    loss.backward()
    p.opt.step()
    return loss.detach()


def make_trainer(shape: tuple[int, int, int, int], device: torch.device):
    """rnnlab's own Trainer on the shape: its step adds task generation, the input and readout
    products, the regularisers and per-seed clipping to the kernel (CUDA-graphed on a GPU)."""
    from rnnlab.config import load_config
    from rnnlab.training.trainer import Trainer

    s, n, bt, t = shape
    dt = 0.01
    cfg = load_config(None, [
        f"seeds={s}", f"model.N={n}", f"task.batch={bt}", f"model.dt={dt}",
        f"model.tau={dt / ALPHA}", f"task.duration={t * dt}", "task.washout=0.0",
        "task.kind=track", "model.w_init=random", f"device={device.type}",
    ])  # fmt: skip
    return Trainer(cfg, progress=False, device=device)


def bmm_reference(shape: tuple[int, int, int, int], device: torch.device) -> Callable[[], None]:
    """T bare bmm's of the step's shape (S, Bt, N) @ (S, N, N): the throughput ceiling."""
    s, n, bt, t = shape
    x = torch.randn(s, bt, n, device=device)
    jt = torch.randn(s, n, n, device=device).transpose(1, 2)
    out = torch.empty(s, bt, n, device=device)

    def run() -> None:
        for _ in range(t):
            torch.bmm(x, jt, out=out)

    return run


def _timer(device: torch.device) -> Callable[[Callable[[], object], int], float]:
    def timed(fn: Callable[[], object], epochs: int = 1) -> float:
        """Seconds per epoch over `epochs` consecutive calls of fn."""
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(epochs):
            fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - t0) / epochs

    return timed


def bench_shape(
    shape: tuple[int, int, int, int],
    device: torch.device,
    repeats: int,
    warmup: int,
    graph: bool,
    sample_ms: float = 100.0,
    loop: str = "auto",
) -> dict[str, object]:
    """Median seconds per epoch of plain, fused, trainer and the bmm reference for one shape.

    Each sample times consecutive epochs of one method (as a training loop runs them) for about
    `sample_ms`; samples of the four methods are interleaved so that machine noise hits all.
    """
    plain, fused = make_problem(shape, device), make_problem(shape, device)

    def run_plain() -> Tensor:
        return train_step(plain, plain.drive, plain.target, fused=False)

    fused_call = GraphedStep(
        lambda d, y: train_step(fused, d, y, fused=True, loop=loop),
        [fused.drive, fused.target],
        warmup=max(1, warmup - 1),
    )

    def run_fused() -> Tensor:
        if graph:
            return fused_call(fused.drive, fused.target)
        return train_step(fused, fused.drive, fused.target, fused=True, loop=loop)

    trainer = make_trainer(shape, device)
    runs = {"plain": run_plain, "fused": run_fused, "trainer": trainer.step,
            "bmm": bmm_reference(shape, device)}  # fmt: skip
    timed = _timer(device)
    first: dict[str, float] = {}
    for _ in range(max(warmup, fused_call.warmup + 1) if graph else warmup):  # capture included
        first = {k: timed(fn) for k, fn in runs.items()}
    epochs = {k: max(1, round(sample_ms / 1e3 / max(t, 1e-6))) for k, t in first.items()}
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeats):
        for k, fn in runs.items():
            times[k].append(timed(fn, epochs[k]))
    med = {k: statistics.median(v) for k, v in times.items()}
    s, n, bt, t = shape
    flops_epoch = 3 * 2 * s * n * n * bt * t
    flops_bmm = 2 * s * n * n * bt * t
    gf = {
        "plain": flops_epoch / med["plain"] / 1e9,
        "fused": flops_epoch / med["fused"] / 1e9,
        "trainer": flops_epoch / med["trainer"] / 1e9,
        "bmm": flops_bmm / med["bmm"] / 1e9,
    }
    return {
        "S": s, "N": n, "Bt": bt, "T": t,
        "plain_ms": 1e3 * med["plain"], "fused_ms": 1e3 * med["fused"],
        "speedup": med["plain"] / med["fused"],
        "plain_gflops": gf["plain"], "fused_gflops": gf["fused"], "bmm_gflops": gf["bmm"],
        "plain_pct_bmm": 100 * gf["plain"] / gf["bmm"],
        "fused_pct_bmm": 100 * gf["fused"] / gf["bmm"],
        "trainer_ms": 1e3 * med["trainer"], "trainer_speedup": med["plain"] / med["trainer"],
        "trainer_pct_bmm": 100 * gf["trainer"] / gf["bmm"],
        "graphed": graph and fused_call.graphed,
    }  # fmt: skip


def format_table(rows: list[dict[str, object]]) -> str:
    """Markdown table of the benchmark rows (fused = kernel + readout + Adam; trainer = rnnlab's
    Trainer.step, which also generates the task batch and clips per seed)."""
    head = (
        "| S | N | Bt | T | plain ms | fused ms | trainer ms | fused speedup | trainer speedup "
        "| bmm GF/s | plain % bmm | fused % bmm | trainer % bmm | graph |"
    )
    lines = [head, "|" + "---|" * 14]
    for r in rows:
        lines.append(
            f"| {r['S']} | {r['N']} | {r['Bt']} | {r['T']} | {r['plain_ms']:.1f} "
            f"| {r['fused_ms']:.1f} | {r['trainer_ms']:.1f} | {r['speedup']:.2f}x "
            f"| {r['trainer_speedup']:.2f}x | {r['bmm_gflops']:.0f} | {r['plain_pct_bmm']:.0f}% "
            f"| {r['fused_pct_bmm']:.0f}% | {r['trainer_pct_bmm']:.0f}% "
            f"| {'yes' if r['graphed'] else 'no'} |"
        )
    return "\n".join(lines)


def parse_shape(text: str) -> tuple[int, int, int, int]:
    """'S,N,Bt,T' -> (S, N, Bt, T)."""
    try:
        s, n, bt, t = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"shape must be S,N,Bt,T (4 integers), got {text!r}"
        ) from None
    if min(s, n, bt, t) < 1:
        raise argparse.ArgumentTypeError(f"shape entries must be >= 1, got {text!r}")
    return s, n, bt, t


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--shapes", nargs="+", type=parse_shape, help="S,N,Bt,T ...")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument(
        "--sample-ms",
        type=float,
        default=100.0,
        help="each sample times consecutive epochs for about this long",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads on the CPU")
    parser.add_argument("--no-graph", action="store_true", help="no CUDA graph for fused")
    parser.add_argument(
        "--loop",
        choices=("auto", "numba", "torch"),
        default="auto",
        help="step loops of the fused step (the trainer always uses auto)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.warmup < 1:
        parser.error("--repeats and --warmup must be >= 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda requested but torch sees no CUDA device")
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    shapes = args.shapes or (GPU_SHAPES if device.type == "cuda" else CPU_SHAPES)
    graph = device.type == "cuda" and not args.no_graph
    rows = [
        bench_shape(s, device, args.repeats, args.warmup, graph, args.sample_ms, args.loop)
        for s in shapes
    ]
    name = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor()
    meta = {
        "device": f"{device.type} ({name or platform.machine()})",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "repeats": args.repeats,
        "sample_ms": args.sample_ms,
        "fused loop": args.loop,
    }
    if args.json:
        print(json.dumps({"meta": meta, "rows": rows}, indent=2))
    else:
        print(", ".join(f"{k}={v}" for k, v in meta.items()))
        print(format_table(rows))


if __name__ == "__main__":
    main()
