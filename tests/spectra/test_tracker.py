"""LeadingEigTracker against full eigendecompositions (np.linalg.eigvals) of planted spectra."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rnnlab.spectra import tracker as tracking
from rnnlab.spectra.tracker import LeadingEigTracker
from rnnlab.training.monitor import TorchEigTracker

S, N, G = 3, 200, 1.0


@pytest.fixture(params=["compiled", "numpy", "torch ops"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every implementation: one compiled call (the CPU default here), NumPy where the compiled
    kernels are unavailable, and the torch ops the trainer uses for J on a GPU."""
    if request.param == "numpy":
        monkeypatch.setattr(tracking, "available", lambda: False)
    if request.param != "torch ops":
        assert LeadingEigTracker(1, 4).compiled == (request.param == "compiled")
    return request.param


def make(path: str, S: int, N: int, k: int = 4, dtype: str = "float32", **kw):
    """A tracker of the implementation `path` (same start basis for all three)."""
    tracker = LeadingEigTracker(S, N, k=k, dtype=dtype, **kw)
    if path != "torch ops":
        return tracker
    basis = torch.from_numpy(tracker.basis.transpose(0, 2, 1).copy())
    kw.pop("seed", None)
    return TorchEigTracker(basis, k=k, **kw)


def planted(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(J, drift direction): g W plus a real outlier at 2 and a complex pair near 1.5 +- 0.8i."""
    rng = np.random.default_rng(seed)
    W = G * rng.standard_normal((S, N, N)) / np.sqrt(N)
    q, _ = np.linalg.qr(rng.standard_normal((S, N, 3)))
    rot = np.array([[1.5, -0.8], [0.8, 1.5]])
    P = 2.0 * q[..., :1] @ q[..., :1].transpose(0, 2, 1)
    P = P + q[..., 1:] @ rot @ q[..., 1:].transpose(0, 2, 1)
    return W + P, rng.standard_normal((S, N, N)) / np.sqrt(N)


def leading(J: np.ndarray, k: int) -> np.ndarray:
    """Reference: the k largest-magnitude eigenvalues from a full decomposition, sorted."""
    eigs = np.linalg.eigvals(J)
    top = np.take_along_axis(eigs, np.argsort(-np.abs(eigs), axis=-1), axis=-1)[..., :k]
    return np.sort_complex(top)


def tracked(tracker, J: np.ndarray) -> np.ndarray:
    return np.sort_complex(tracker.update(J))


def test_tracker_follows_a_drifting_J_and_a_conjugate_pair(path: str) -> None:
    J0, direction = planted()
    tracker = make(path, S, N, k=3, iters=2, dtype="float64")
    drift = 1e-4  # per epoch, relative to the bulk scale
    for epoch in range(10):
        J = J0 + drift * epoch * direction
        got = tracked(tracker, J)
        expected = leading(J, 3)
        # lags by a fraction of one epoch's change (about drift per epoch)
        assert np.abs(got - expected).max() < 0.2 * drift
    assert np.all(np.abs(expected[:, :2].imag) > 0.5)  # k = 3 covers the pair
    np.testing.assert_array_equal(expected[:, 0], expected[:, 1].conj())
    for _ in range(10):  # J stops moving: a few products per epoch converge it fully
        got = tracked(tracker, J)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    # The warm start is what makes 2 products enough: a cold start with 2 is far off.
    cold = make(path, S, N, k=3, iters=2, warmup_iters=2, dtype="float64")
    assert np.abs(tracked(cold, J) - expected).max() > 1e3 * np.abs(got - expected).max()


def test_float32_default_and_output_layout(path: str) -> None:
    J, _ = planted(1)
    tracker = make(path, S, N, k=4)
    out = tracker.update(J.astype(np.float32))
    assert out.shape == (S, 4) and out.dtype == np.complex128
    for _ in range(5):
        out = tracker.update(J.astype(np.float32))
    vals = out
    mags = np.abs(vals)
    assert np.all(np.diff(mags, axis=-1) <= 1e-6)  # by descending magnitude
    assert np.all(vals[:, 1].imag > 0) and np.allclose(vals[:, 1], vals[:, 2].conj())
    np.testing.assert_allclose(np.sort_complex(vals[:, :3]), leading(J, 3), atol=1e-5)


def test_shift_tracks_the_rightmost_outlier_instead_of_minus_b(path: str) -> None:
    """b = 3 puts -3 first by magnitude; shift = g favours max Re (the outlier at 1.6)."""
    rng = np.random.default_rng(2)
    u = rng.standard_normal((S, N, 1))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    J = G * rng.standard_normal((S, N, N)) / np.sqrt(N) - 3.0 / N + 1.6 * u * u.transpose(0, 2, 1)
    eigs = np.linalg.eigvals(J)
    rightmost = np.take_along_axis(eigs, np.argmax(eigs.real, -1)[:, None], -1)[:, 0]
    largest = np.take_along_axis(eigs, np.argmax(np.abs(eigs), -1)[:, None], -1)[:, 0]
    assert np.all(largest.real < -2.5) and np.all(rightmost.real > 1.2)
    plain = make(path, S, N, k=1, dtype="float64")
    shifted = make(path, S, N, k=1, dtype="float64", shift=G, warmup_iters=60)
    np.testing.assert_allclose(plain.update(J)[:, 0], largest, atol=1e-6)
    np.testing.assert_allclose(shifted.update(J)[:, 0], rightmost, atol=1e-6)


def test_no_full_eigendecomposition(monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    """Per update only p x p eigenproblems: any N x N eig would defeat the purpose."""
    J, _ = planted(3)
    tracker = make(path, S, N, k=4)
    for module, name in [(np.linalg, "eigvals"), (np.linalg, "eig"), (torch.linalg, "eig")]:
        real = getattr(module, name)

        def small_only(a, *args, _real=real, **kwargs):
            assert a.shape[-1] <= tracker.p, "the tracker eigendecomposed an N x N matrix"
            return _real(a, *args, **kwargs)

        monkeypatch.setattr(module, name, small_only)
    monkeypatch.setattr(torch.linalg, "eigvals", lambda *a, **k: pytest.fail("torch eigvals"))
    tracker.update(J.astype(np.float32))
    assert tracker.basis.shape[-1 if path == "torch ops" else -2] == 8


def test_bad_input_raises_value_error(path: str) -> None:
    tracker = make(path, 2, 10, k=2)
    if path != "torch ops":
        with pytest.raises(ValueError, match=r"J must be \(S, N, N\)"):
            tracker.update(np.zeros((3, 10, 10)))
    with pytest.raises(ValueError, match="non-finite"):
        tracker.update(np.full((2, 10, 10), np.nan))
    with pytest.raises(ValueError, match="k=11"):
        LeadingEigTracker(2, 10, k=11)
    with pytest.raises(ValueError, match="iters"):
        LeadingEigTracker(2, 10, iters=0)
    with pytest.raises(ValueError, match="dtype"):
        LeadingEigTracker(2, 10, dtype="float16")


@pytest.mark.slow
def test_overhead_benchmark_runs() -> None:
    """benchmarks/tracking_overhead.py end to end at a tiny size (it prints the ratio)."""
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "tracking_overhead.py"
    args = ["--seeds", "2", "--N", "32", "--batch", "4", "--T", "20", "--epochs", "2"]
    result = subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "ratio with/without:" in result.stdout


def test_outlier_recorder_counts_the_planted_outliers_and_the_jacobian_max_re(path: str) -> None:
    """The per-epoch curve values: planted outliers (2 and 1.5 +- 0.8i, outside the g = 1 bulk)
    are counted, the bulk is not, and max Re of the Jacobian at the origin (tanh: J - I) is the
    rightmost outlier's real part minus one, as from a full decomposition."""
    from rnnlab.config import load_config
    from rnnlab.training.monitor import OutlierRecorder

    cfg = load_config(None, [f"model.N={N}", f"model.g={G}", "record.track_k=4"])
    recorder = OutlierRecorder(cfg, S, torch.device("cpu"))
    J, _ = planted(seed=5)
    values = recorder.update(torch.from_numpy(J.astype(np.float32)))
    assert values["n_outliers"].dtype == np.int32
    np.testing.assert_array_equal(values["n_outliers"], np.full(S, 3))
    exact = np.linalg.eigvals(J).real.max(axis=-1) - 1.0
    np.testing.assert_allclose(values["max_re_jac0"], exact, atol=1e-3)
    assert values["tracked"].shape == (S, 4)
