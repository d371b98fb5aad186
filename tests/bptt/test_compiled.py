"""The compiled step loops: their tanh, NaN propagation, threading and when they are used."""

from __future__ import annotations

import math
import time

import numba
import numpy as np
import pytest
import torch

from rnnlab.bptt import compiled as numba_steps
from rnnlab.bptt import loops as step_loops
from rnnlab.bptt.dynamics import run_dynamics


@numba.njit
def _apply_act(x, phi, out):
    for i in range(x.size):
        out[i] = numba_steps._act(x[i], phi)


def test_compiled_loops_are_what_the_cpu_runs_here():
    # The CI machine is the platform users have: the fast path must be the one that is tested.
    assert numba_steps.available()
    J = torch.zeros(1, 2, 2)
    assert step_loops.compiled_loops("auto", J) is numba_steps
    assert step_loops.compiled_loops("torch", J) is None
    assert step_loops.compiled_loops("auto", J.half()) is None
    with pytest.raises(ValueError, match="loop='numba' needs"):
        step_loops.compiled_loops("numba", J.half())


def test_float32_tanh_is_within_one_ulp_of_tanh():
    x = np.linspace(-12.0, 12.0, 2_000_001, dtype=np.float32)
    x = np.concatenate([x, np.geomspace(1e-30, 1.0, 10_001, dtype=np.float32)])
    got = np.empty_like(x)
    _apply_act(x, numba_steps.PHI_CODES["tanh"], got)
    exact = np.tanh(x.astype(np.float64))
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    assert np.max(np.abs(got - exact) / ulp) <= 1.0
    assert np.all(np.abs(got) <= 1.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("phi", ["tanh", "relu", "linear"])
def test_nonlinearities_treat_nan_and_inf_like_torch(phi, dtype):
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 0.5, -0.5, 30.0, -30.0], dtype=dtype)
    got = np.empty_like(x)
    _apply_act(x, numba_steps.PHI_CODES[phi], got)
    ref = {"tanh": torch.tanh, "relu": torch.relu, "linear": lambda t: t}[phi](
        torch.from_numpy(x)
    ).numpy()
    tol = 1e-7 if dtype == np.float32 else 1e-15
    np.testing.assert_allclose(got, ref, rtol=tol, atol=0)


@pytest.mark.parametrize("loop", ["numba", "torch"])
def test_a_nan_in_J_reaches_the_rates_and_the_gradient(loop):
    # Training detects divergence from non-finite losses: the compiled loop must not clip a NaN
    # state into a finite rate.
    gen = torch.Generator().manual_seed(0)
    J = torch.randn(2, 6, 6, generator=gen) / math.sqrt(6)
    J[1, 2, 3] = float("nan")
    J.requires_grad_()
    drive = torch.randn(2, 3, 10, 6, generator=gen)
    rates, _ = run_dynamics(J, drive, torch.zeros(2, 3, 6), 0.2, "tanh", loop=loop)
    assert torch.isfinite(rates[0]).all() and torch.isnan(rates[1]).any()
    rates.sum().backward()
    assert torch.isfinite(J.grad[0]).all() and torch.isnan(J.grad[1]).any()


@pytest.mark.parametrize(("n_seeds", "workers"), [(1, 2), (4, 2), (5, 2), (3, 8), (7, 3)])
def test_seed_groups_cover_every_seed_once(n_seeds, workers):
    groups = numba_steps.seed_groups(n_seeds, workers)
    assert len(groups) == min(n_seeds, workers)
    covered = [s for a, b in groups for s in range(a, b)]
    assert covered == list(range(n_seeds))


def test_results_do_not_depend_on_the_thread_count(monkeypatch):
    # Seeds are independent and each runs whole on one thread: 1 or 2 threads give the same
    # bits, and torch's thread count is restored afterwards. (Threshold 0: split even these
    # small blocks over threads.)
    monkeypatch.setattr(step_loops, "PARALLEL_MIN_STEP_MACS", 0)
    calls = []
    real = numba_steps.over_seeds
    monkeypatch.setattr(numba_steps, "over_seeds", lambda *a: calls.append(a[3]) or real(*a))
    gen = torch.Generator().manual_seed(1)
    J = (1.5 * torch.randn(5, 16, 16, generator=gen) / 4).requires_grad_()
    drive = torch.randn(5, 4, 30, 16, generator=gen)
    old = torch.get_num_threads()
    out = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        try:
            rates, _ = run_dynamics(J, drive, torch.zeros(5, 4, 16), 0.1, "tanh", loop="numba")
            (grad,) = torch.autograd.grad(rates.square().sum(), J)
            assert torch.get_num_threads() == threads
        finally:
            torch.set_num_threads(old)
        out.append((rates.detach(), grad))
    assert calls == [1, 1, 2, 2]  # (forward, adjoint) on 1 thread, then on 2
    assert torch.equal(out[0][0], out[1][0]) and torch.equal(out[0][1], out[1][1])


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_seed_threads_work_in_a_forked_child(monkeypatch):
    # A ThreadPoolExecutor copied by fork has no threads: the child must start its own pool
    # (dask or multiprocessing with fork would otherwise hang on the first split call).
    import os

    monkeypatch.setattr(step_loops, "PARALLEL_MIN_STEP_MACS", 0)
    gen = torch.Generator().manual_seed(2)
    J, drive = torch.randn(4, 8, 8, generator=gen) / 3, torch.randn(4, 2, 20, 8, generator=gen)
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        parent, _ = run_dynamics(J, drive, torch.zeros(4, 2, 8), 0.1, "tanh", loop="numba")
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: same computation, report whether it matches
            try:
                child, _ = run_dynamics(J, drive, torch.zeros(4, 2, 8), 0.1, "tanh", loop="numba")
                os.write(write, b"1" if torch.equal(child, parent) else b"0")
            finally:
                os._exit(0)
        os.close(write)
        for _ in range(600):  # a hung child fails the test after 30 s instead of hanging it
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.05)
        else:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung in the compiled step loops")
        assert os.read(read, 1) == b"1" and status == 0
    finally:
        torch.set_num_threads(old)
