"""The fused BPTT kernel against the plain autograd loop, finite differences and closed forms."""

from __future__ import annotations

import math

import pytest
import torch

from rnnlab.bptt import loops as step_loops
from rnnlab.bptt.cudagraph import GraphedStep
from rnnlab.bptt.dynamics import PHIS, Workspace, dphi_torch, phi_torch, readout, run_dynamics

F64 = torch.float64


def make_inputs(s=3, bt=4, t=23, n=7, g=1.3, dtype=F64, seed=0, device="cpu"):
    """Random J = g W (W_ij ~ N(0, 1/N)), drive and h0, all leaves."""
    gen = torch.Generator().manual_seed(seed)
    J = g * torch.randn(s, n, n, generator=gen, dtype=dtype) / math.sqrt(n)
    drive = torch.randn(s, bt, t, n, generator=gen, dtype=dtype)
    h0 = 0.5 * torch.randn(s, bt, n, generator=gen, dtype=dtype)
    return J.to(device), drive.to(device), h0.to(device)


def washout_loss(rates, weights, washout):
    """Weighted sum of rates after `washout` steps, summed over seeds (seeds stay independent)."""
    return (rates[:, :, washout:] * weights[:, :, washout:]).sum()


def grads(J, drive, h0, phi, fused, which, washout=5, alpha=0.2):
    """(rates, states, gradients of the washout loss w.r.t. the leaves named in `which`)."""
    leaves = {"J": J, "drive": drive, "h0": h0}
    inputs = {k: v.detach().clone().requires_grad_(k in which) for k, v in leaves.items()}
    rates, states = run_dynamics(
        inputs["J"], inputs["drive"], inputs["h0"], alpha, phi, fused=fused
    )
    weights = torch.randn(
        rates.shape, generator=torch.Generator().manual_seed(7), dtype=rates.dtype
    ).to(rates.device)
    loss = washout_loss(rates, weights, washout)
    got = torch.autograd.grad(loss, [inputs[k] for k in which])
    return rates.detach(), states, dict(zip(which, got, strict=True))


@pytest.fixture(params=["compiled loops", "small-step path", "large-step path"])
def step_path(request, monkeypatch):
    """Run a test on every code path of the kernel: the numba-compiled step loops (the CPU
    default) and, as where numba is missing, the torch-op loops for blocks up to
    SERIAL_STEP_NUMEL elements (single-threaded, phi' formed in the backward) and larger ones
    (phi' formed in the forward)."""
    if request.param != "compiled loops":
        monkeypatch.setattr(step_loops, "_numba_steps", lambda: None)
    if request.param == "large-step path":
        monkeypatch.setattr(step_loops, "SERIAL_STEP_NUMEL", 0)
    return request.param


@pytest.mark.parametrize("phi", PHIS)
@pytest.mark.parametrize(
    "which", [("J",), ("J", "drive"), ("drive", "h0"), ("h0",), ("J", "drive", "h0")]
)
def test_fused_matches_plain_loop(phi, which, step_path):
    J, drive, h0 = make_inputs()
    r_ref, s_ref, g_ref = grads(J, drive, h0, phi, fused=False, which=which)
    r_fus, s_fus, g_fus = grads(J, drive, h0, phi, fused=True, which=which)
    torch.testing.assert_close(r_fus, r_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(s_fus, s_ref, rtol=1e-12, atol=1e-12)
    assert not s_fus.requires_grad
    for name in which:
        assert g_ref[name].abs().max() > 0  # the comparison is not between two zeros
        torch.testing.assert_close(g_fus[name], g_ref[name], rtol=1e-6, atol=1e-12)


def input_grads(J, drive, h0, inputs, B, phi, fused, dtype=F64):
    """Gradients of a random loss w.r.t. all five leaves, with the drive split as
    drive + inputs B^T (drive may be None)."""
    leaves = {"J": J, "drive": drive, "h0": h0, "inputs": inputs, "B": B}
    leaves = {
        k: None if v is None else v.detach().clone().requires_grad_() for k, v in leaves.items()
    }
    rates, _ = run_dynamics(
        leaves["J"],
        leaves["drive"],
        leaves["h0"],
        0.2,
        phi,
        inputs=leaves["inputs"],
        B=leaves["B"],
        fused=fused,
    )
    weights = torch.randn(rates.shape, generator=torch.Generator().manual_seed(7), dtype=dtype)
    names = [k for k, v in leaves.items() if v is not None]
    got = torch.autograd.grad(washout_loss(rates, weights, 3), [leaves[k] for k in names])
    return rates.detach(), dict(zip(names, got, strict=True))


@pytest.mark.parametrize("phi", PHIS)
@pytest.mark.parametrize("with_drive", [True, False])
def test_inputs_through_B_match_the_plain_loop(phi, with_drive, step_path):
    # The kernel forms inputs_k B^T inside its step loop and dB = a sum_k lambda_k^T u_k as one
    # GEMM; the plain loop builds the full drive with autograd. Same rates, same gradients.
    J, drive, h0 = make_inputs()
    gen = torch.Generator().manual_seed(5)
    inputs = torch.randn(*drive.shape[:3], 2, generator=gen, dtype=F64)
    B = torch.randn(J.shape[0], J.shape[1], 2, generator=gen, dtype=F64)
    drive = drive if with_drive else None
    r_ref, g_ref = input_grads(J, drive, h0, inputs, B, phi, fused=False)
    r_fus, g_fus = input_grads(J, drive, h0, inputs, B, phi, fused=True)
    torch.testing.assert_close(r_fus, r_ref, rtol=1e-12, atol=1e-12)
    assert (
        set(g_fus)
        == set(g_ref)
        == {"J", "h0", "inputs", "B"} | ({"drive"} if with_drive else set())
    )
    for name, ref in g_ref.items():
        assert ref.abs().max() > 0
        torch.testing.assert_close(g_fus[name], ref, rtol=1e-6, atol=1e-12)


def test_inputs_through_B_equal_the_same_drive_given_whole():
    J, drive, h0 = make_inputs()
    gen = torch.Generator().manual_seed(6)
    inputs = torch.randn(*drive.shape[:3], 3, generator=gen, dtype=F64)
    B = torch.randn(J.shape[0], J.shape[1], 3, generator=gen, dtype=F64)
    whole = drive + torch.einsum("sbtc,snc->sbtn", inputs, B)
    split, _ = run_dynamics(J, drive, h0, 0.2, "tanh", inputs=inputs, B=B)
    joined, _ = run_dynamics(J, whole, h0, 0.2, "tanh")
    torch.testing.assert_close(split, joined, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("t", [1, 2])
def test_fused_matches_plain_loop_for_one_or_two_steps(t):
    J, drive, h0 = make_inputs(t=t)
    which = ("J", "drive", "h0")
    _, _, g_ref = grads(J, drive, h0, "tanh", fused=False, which=which, washout=0)
    _, _, g_fus = grads(J, drive, h0, "tanh", fused=True, which=which, washout=0)
    for name in which:
        torch.testing.assert_close(g_fus[name], g_ref[name], rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("phi", PHIS)
def test_washout_mask_zeroes_late_drive_gradient_only(phi):
    # The loss ignores steps < 5 but they still drive later steps: their drive gradient is
    # nonzero; a loss that stops at step 10 gives exactly zero gradient to drive after it.
    J, drive, h0 = make_inputs()
    drive = drive.clone().requires_grad_()
    rates, _ = run_dynamics(J, drive, h0, 0.2, phi)
    rates[:, :, 5:11].sum().backward()
    assert drive.grad[:, :, :11].abs().amax(dim=(0, 1, 3)).min() > 0
    assert torch.all(drive.grad[:, :, 11:] == 0)


@pytest.mark.parametrize("phi", PHIS)
def test_float32_fused_matches_plain(phi, step_path):
    J, drive, h0 = make_inputs(dtype=torch.float32)
    r_ref, _, g_ref = grads(J, drive, h0, phi, fused=False, which=("J", "drive", "h0"))
    r_fus, _, g_fus = grads(J, drive, h0, phi, fused=True, which=("J", "drive", "h0"))
    assert r_fus.dtype == torch.float32 and g_fus["J"].dtype == torch.float32
    torch.testing.assert_close(r_fus, r_ref, rtol=1e-5, atol=1e-5)
    for name in g_ref:
        torch.testing.assert_close(g_fus[name], g_ref[name], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("phi", PHIS)
def test_gradcheck_against_finite_differences(phi, step_path):
    J, drive, h0 = make_inputs(s=2, bt=2, t=6, n=4, seed=3)
    J, drive, h0 = (x.requires_grad_() for x in (J, drive, h0))

    def f(J, drive, h0):
        return run_dynamics(J, drive, h0, 0.3, phi, fused=True)[0]

    assert torch.autograd.gradcheck(f, (J, drive, h0), eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("fused", [True, False])
def test_seeds_are_independent(fused, step_path):
    J, drive, h0 = make_inputs(s=3)
    J2 = J.clone()
    J2[0] += 0.3 * torch.randn(J.shape[1:], dtype=F64, generator=torch.Generator().manual_seed(1))
    which = ("J", "drive", "h0")
    r1, s1, g1 = grads(J, drive, h0, "tanh", fused, which)
    r2, s2, g2 = grads(J2, drive, h0, "tanh", fused, which)
    assert not torch.equal(r1[0], r2[0])  # the perturbation does reach seed 0
    for a, b in [(r1, r2), (s1, s2), *((g1[k], g2[k]) for k in which)]:
        assert torch.equal(a[1:], b[1:])


@pytest.mark.parametrize("fused", [True, False])
def test_linear_leak_closed_form(fused):
    # J = 0, constant drive c, h0 = 0: h after k+1 steps is c (1 - (1-a)^(k+1)), and
    # d h_{T-1} / d drive_k = a (1-a)^(T-1-k).
    s, bt, t, n, alpha = 2, 3, 40, 5, 0.15
    c = torch.linspace(-2.0, 3.0, n, dtype=F64)
    J = torch.zeros(s, n, n, dtype=F64, requires_grad=True)
    drive = c.expand(s, bt, t, n).clone().requires_grad_()
    h0 = torch.zeros(s, bt, n, dtype=F64)
    rates, states = run_dynamics(J, drive, h0, alpha, "linear", fused=fused)
    k = torch.arange(1, t + 1, dtype=F64)
    expected = c * (1 - (1 - alpha) ** k)[:, None]
    torch.testing.assert_close(states, expected.expand(s, bt, t, n), rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(rates, states, rtol=0, atol=0)
    rates[:, :, -1].sum().backward()
    kernel = alpha * (1 - alpha) ** (t - k)
    torch.testing.assert_close(
        drive.grad, kernel[:, None].expand(s, bt, t, n), rtol=1e-13, atol=1e-15
    )
    # dL/dJ_ij = a sum_k lambda_k,i r_{k-1},j with lambda_k = (1-a)^(T-1-k), r_{k-1} = h_{k-1}
    r_prev = torch.cat([torch.zeros(1, n, dtype=F64), expected[:-1]])
    lam = ((1 - alpha) ** (t - k))[:, None].expand(t, n)
    dj = bt * alpha * lam.T @ r_prev
    torch.testing.assert_close(J.grad, dj.expand(s, n, n), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("phi", ["linear", "tanh"])
def test_relaxes_to_fixed_point(phi):
    # Contracting J (spectral radius ~0.5 < 1), constant drive c: the Euler map's fixed point
    # solves h = J phi(h) + c; for linear phi that is (I - J)^-1 c.
    s, bt, n = 2, 2, 30
    J, _, _ = make_inputs(s=s, bt=bt, t=1, n=n, g=0.5, seed=5)
    c = torch.randn(s, 1, 1, n, dtype=F64, generator=torch.Generator().manual_seed(2))
    drive = c.expand(s, bt, 400, n)
    _, states = run_dynamics(J, drive, torch.zeros(s, bt, n, dtype=F64), 0.2, phi)
    h = states[:, :, -1]
    if phi == "linear":
        expected = torch.linalg.solve(torch.eye(n, dtype=F64) - J, c[:, 0, 0])
        torch.testing.assert_close(h, expected[:, None].expand(s, bt, n), rtol=1e-9, atol=1e-9)
    residual = h - phi_torch(h, phi) @ J.transpose(1, 2) - c[:, 0]
    assert residual.abs().max() < 1e-9


@pytest.mark.parametrize("phi", PHIS)
def test_dphi_matches_finite_differences(phi):
    x = torch.linspace(-2.0, 2.0, 41, dtype=F64)
    x = x[x.abs() > 1e-3]  # away from relu's kink
    eps = 1e-6
    fd = (phi_torch(x + eps, phi) - phi_torch(x - eps, phi)) / (2 * eps)
    torch.testing.assert_close(dphi_torch(x, phi), fd, rtol=1e-8, atol=1e-8)


def test_relu_derivative_at_zero_is_zero():
    assert dphi_torch(torch.zeros(3, dtype=F64), "relu").eq(0).all()


def test_readout_matches_einsum_in_both_layouts():
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(3, 6, 2, generator=gen, dtype=F64)
    contiguous = torch.randn(3, 4, 5, 6, generator=gen, dtype=F64)
    time_major = torch.randn(3, 5, 4, 6, generator=gen, dtype=F64).transpose(1, 2)
    for rates in (contiguous, time_major):
        expected = torch.einsum("sbtn,sno->sbto", rates, w)
        torch.testing.assert_close(readout(rates, w), expected, rtol=1e-13, atol=1e-13)
    with pytest.raises(ValueError, match="readout needs"):
        readout(contiguous, w[:, :5])


def test_readout_gradient_matches_finite_differences():
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(2, 4, 3, generator=gen, dtype=F64, requires_grad=True)
    contiguous = torch.randn(2, 3, 5, 4, generator=gen, dtype=F64, requires_grad=True)
    time_major = torch.randn(2, 5, 3, 4, generator=gen, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(readout, (contiguous, w))
    assert torch.autograd.gradcheck(lambda x, w: readout(x.transpose(1, 2), w), (time_major, w))


@pytest.mark.parametrize("phi", PHIS)
def test_workspace_reuses_buffers_and_changes_nothing(phi, step_path):
    J, drive, h0 = make_inputs()
    which = ("J", "drive", "h0")
    r_ref, s_ref, g_ref = grads(J, drive, h0, phi, fused=True, which=which)
    ws = Workspace()
    ptrs = []
    for _ in range(2):
        leaves = [x.clone().requires_grad_() for x in (J, drive, h0)]
        rates, states = run_dynamics(*leaves, 0.2, phi, workspace=ws)
        weights = torch.randn(rates.shape, generator=torch.Generator().manual_seed(7), dtype=F64)
        got = torch.autograd.grad(washout_loss(rates, weights, 5), leaves)
        torch.testing.assert_close(rates.detach(), r_ref, rtol=0, atol=0)
        torch.testing.assert_close(states, s_ref, rtol=0, atol=0)
        for name, g in zip(which, got, strict=True):
            torch.testing.assert_close(g, g_ref[name], rtol=0, atol=0)
        ptrs.append(rates.data_ptr())
    assert ptrs[0] == ptrs[1]  # the second call wrote into the first call's buffers


@pytest.mark.parametrize("n_readouts", [1, 2])
def test_readout_workspace_gives_the_same_gradients(n_readouts):
    # With two readouts of the same rates sharing a workspace, the second must not reuse the
    # gradient buffer the first one lent out.
    J, drive, h0 = make_inputs(dtype=torch.float32)
    gen = torch.Generator().manual_seed(4)
    w = torch.randn(J.shape[0], J.shape[1], 2, generator=gen)
    target = torch.randn(*drive.shape[:3], 2, generator=gen)

    def epoch(ws):
        leaves = [x.clone().requires_grad_() for x in (J, w)]
        rates, _ = run_dynamics(leaves[0], drive, h0, 0.2, "tanh", workspace=ws)
        loss = sum(
            (readout(rates, (i + 1) * leaves[1], workspace=ws) - target).square().mean()
            for i in range(n_readouts)
        )
        return torch.autograd.grad(loss, leaves)

    expected = epoch(None)
    ws = Workspace()
    for _ in range(3):
        for got, exp in zip(epoch(ws), expected, strict=True):
            torch.testing.assert_close(got, exp, rtol=1e-6, atol=1e-7)


def test_evaluation_without_grad_skips_the_adjoint_buffer(monkeypatch):
    monkeypatch.setattr(step_loops, "SERIAL_STEP_NUMEL", 0)  # the path that fills it in forward
    J, drive, h0 = make_inputs()
    J.requires_grad_()
    ws = Workspace()
    with torch.no_grad():
        run_dynamics(J, drive, h0, 0.2, "tanh", workspace=ws, loop="torch")
    assert "lam" not in ws._buffers
    run_dynamics(J, drive, h0, 0.2, "tanh", workspace=ws, loop="torch")
    assert "lam" in ws._buffers


def test_backward_through_an_overwritten_workspace_call_raises():
    J, drive, h0 = make_inputs()
    J.requires_grad_()
    ws = Workspace()
    first, _ = run_dynamics(J, drive, h0, 0.2, "tanh", workspace=ws)
    run_dynamics(J, drive + 1.0, h0, 0.2, "tanh", workspace=ws)
    with pytest.raises(RuntimeError, match="modified inplace|modified by an inplace"):
        first.sum().backward()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"phi": "sigmoid"}, "unknown nonlinearity"),
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.5}, "alpha"),
        ({"J": torch.zeros(2, 3, 4, dtype=F64)}, "J must have shape"),
        ({"drive": torch.zeros(2, 4, 5, 6, dtype=F64)}, "drive must have shape"),
        ({"h0": torch.zeros(2, 3, 3, dtype=F64)}, "h0 must have shape"),
        ({"drive": torch.zeros(2, 4, 5, 3)}, "must match"),
        ({"drive": torch.zeros(2, 4, 0, 3, dtype=F64)}, "at least one time step"),
        ({"workspace": {}}, "workspace must be"),
        ({"loop": "cuda"}, "loop must be one of"),
        ({"drive": None}, "give a drive, inputs and B"),
        ({"inputs": torch.zeros(2, 4, 5, 1, dtype=F64)}, "inputs and B go together"),
        (
            {"inputs": torch.zeros(2, 4, 6, 1, dtype=F64), "B": torch.zeros(2, 3, 1, dtype=F64)},
            "inputs must have shape",
        ),
        (
            {"inputs": torch.zeros(2, 4, 5, 2, dtype=F64), "B": torch.zeros(2, 3, 1, dtype=F64)},
            "B must have shape",
        ),
        ({"inputs": torch.zeros(2, 4, 5, 1), "B": torch.zeros(2, 3, 1)}, "must match"),
    ],
)
def test_bad_input_is_a_clear_error(kwargs, match):
    args = {
        "J": torch.zeros(2, 3, 3, dtype=F64),
        "drive": torch.zeros(2, 4, 5, 3, dtype=F64),
        "h0": torch.zeros(2, 4, 3, dtype=F64),
        "alpha": 0.1,
        "phi": "tanh",
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        run_dynamics(**args)


def make_trainer(device="cpu"):
    """A tiny (J, w) training problem and its step function (zero_grad, fwd, bwd, Adam)."""
    J, drive, h0 = make_inputs(s=2, bt=3, t=12, n=5, dtype=torch.float32, device=device)
    J.requires_grad_()
    w = torch.full((2, 5, 1), 0.1, device=device, requires_grad=True)
    opt = torch.optim.Adam([J, w], lr=1e-2, capturable=device == "cuda")

    def step(drive, target):
        opt.zero_grad(set_to_none=True)
        rates, _ = run_dynamics(J, drive, h0, 0.2, "tanh")
        loss = (readout(rates, w) - target).square().mean()
        loss.backward()
        opt.step()
        return loss.detach()

    return J, drive, step


def test_graphed_step_falls_back_to_plain_calls_on_cpu():
    J, drive, step = make_trainer()
    target = torch.zeros(*drive.shape[:3], 1)
    calls = []

    def counted(d, y):
        calls.append(d)
        return step(d, y)

    graphed = GraphedStep(counted, [drive, target], warmup=2)
    new_inputs = [drive.clone() for _ in range(4)]
    losses = [graphed(d, target).item() for d in new_inputs]
    assert not graphed.graphed
    assert len(calls) == 4 and all(a is b for a, b in zip(calls, new_inputs, strict=True))
    assert losses[-1] < losses[0]  # every call was a real optimizer step
    with pytest.raises(ValueError, match="static shapes"):
        graphed(drive[:, :1], target)
    with pytest.raises(ValueError, match="warmup"):
        GraphedStep(counted, [drive, target], warmup=0)


def test_failed_capture_warns_once_and_runs_eagerly(monkeypatch):
    J, drive, step = make_trainer()
    target = torch.zeros(*drive.shape[:3], 1)
    graphed = GraphedStep(step, [drive, target], warmup=1)
    # Pretend to be on a GPU whose capture fails.
    graphed._eligible = True
    monkeypatch.setattr(graphed, "_eager_on_side_stream", lambda inputs: step(*inputs))

    def broken_capture():
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(graphed, "_capture", broken_capture)
    J_before = J.detach().clone()
    graphed(drive, target)  # warm-up step
    with pytest.warns(RuntimeWarning, match="capture failed"):
        graphed(drive, target)
    assert not graphed.graphed
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        graphed(drive, target)  # falls back silently from now on
    assert not torch.equal(J.detach(), J_before)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("phi", PHIS)
def test_cuda_fused_matches_plain(phi):
    J, drive, h0 = make_inputs(device="cuda")
    r_ref, _, g_ref = grads(J, drive, h0, phi, fused=False, which=("J", "drive", "h0"))
    r_fus, _, g_fus = grads(J, drive, h0, phi, fused=True, which=("J", "drive", "h0"))
    torch.testing.assert_close(r_fus, r_ref, rtol=1e-12, atol=1e-12)
    for name in g_ref:
        torch.testing.assert_close(g_fus[name], g_ref[name], rtol=1e-6, atol=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_graph_replays_the_eager_training_step():
    results = []
    for use_graph in (False, True):
        J, drive, step = make_trainer("cuda")
        target = torch.zeros(*drive.shape[:3], 1, device="cuda")
        run = GraphedStep(step, [drive.clone(), target.clone()], warmup=2) if use_graph else step
        losses = [float(run(drive * (1 + 0.1 * i), target)) for i in range(6)]
        results.append((losses, J.detach().clone()))
        if use_graph:
            assert run.graphed
    (l_eager, j_eager), (l_graph, j_graph) = results
    assert l_graph == pytest.approx(l_eager, rel=1e-5)
    torch.testing.assert_close(j_graph, j_eager, rtol=1e-5, atol=1e-6)


def load_benchmark():
    """benchmarks/train_speed.py as a module (it is a script, not part of the package)."""
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "train_speed.py"
    spec = importlib.util.spec_from_file_location("rnnlab_bench_train_speed", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_benchmark_script_runs_and_reports_consistent_numbers(capsys):
    import json

    bench = load_benchmark()
    bench.main(["--shapes", "2,8,3,6", "--repeats", "2", "--warmup", "1", "--json"])
    report = json.loads(capsys.readouterr().out)
    (row,) = report["rows"]
    assert (row["S"], row["N"], row["Bt"], row["T"]) == (2, 8, 3, 6)
    assert row["speedup"] == pytest.approx(row["plain_ms"] / row["fused_ms"])
    flops = 3 * 2 * 2 * 8**2 * 3 * 6
    assert row["fused_gflops"] == pytest.approx(flops / row["fused_ms"] / 1e6)
    assert row["graphed"] is False
    bench.main(["--shapes", "2,8,3,6", "--repeats", "1", "--warmup", "1"])
    assert "| 2 | 8 | 3 | 6 |" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        bench.main(["--shapes", "2,8,3"])


def test_benchmark_fused_step_trains_like_the_plain_step():
    bench = load_benchmark()
    losses = {}
    for fused in (False, True):
        p = bench.make_problem((2, 8, 3, 6), torch.device("cpu"))
        losses[fused] = [
            float(bench.train_step(p, p.drive, p.target, fused=fused)) for _ in range(4)
        ]
    assert losses[True] == pytest.approx(losses[False], rel=1e-4)
    assert losses[True][-1] < losses[True][0]
