"""rnnlab.spectra.conventions: ordering, slopes, Jacobian, bulk edge, outlier rule, tracks,
crossings."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.spectra import conventions as sp
from rnnlab.spectra.theory import EDGE_MARGIN


def similar_to(eigs: list[complex], seed: int) -> np.ndarray:
    """A real matrix with the given eigenvalues (conjugate pairs as 2x2 rotation blocks)."""
    blocks, done = [], set()
    for i, z in enumerate(eigs):
        if i in done:
            continue
        if z.imag == 0:
            blocks.append(np.array([[z.real]]))
        else:
            j = next(j for j in range(i + 1, len(eigs)) if eigs[j] == z.conjugate())
            done.add(j)
            blocks.append(np.array([[z.real, -abs(z.imag)], [abs(z.imag), z.real]]))
    n = sum(b.shape[0] for b in blocks)
    D = np.zeros((n, n))
    k = 0
    for b in blocks:
        D[k : k + b.shape[0], k : k + b.shape[0]] = b
        k += b.shape[0]
    P = np.random.default_rng(seed).standard_normal((n, n)) + 3 * np.eye(n)
    return P @ D @ np.linalg.inv(P)


def test_sorted_eigvals_order_and_batch() -> None:
    # exact ties in floating point are the conjugate pairs (LAPACK gives them one real part)
    eigs = [0.5 - 2j, 0.5 + 2j, 1.5 + 0j, -1.0 + 0j, 0.7 + 0j, -3.0 + 1j, -3.0 - 1j]
    A = np.stack([similar_to(eigs, 0), similar_to(eigs, 1)])
    got = sp.sorted_eigvals(A)
    expected = [1.5, 0.7, 0.5 + 2j, 0.5 - 2j, -1.0, -3.0 + 1j, -3.0 - 1j]
    assert np.all(got[:, 2].imag > 0) and np.all(got[:, 2].real == got[:, 3].real)
    assert got.shape == (2, 7) and got.dtype == np.complex128
    np.testing.assert_allclose(got, np.stack([expected, expected]), atol=1e-9)


def test_single_precision_eigvals_keep_order_and_known_values() -> None:
    eigs = [0.5 - 2j, 0.5 + 2j, 1.5 + 0j, -1.0 + 0j, 0.7 + 0j, -3.0 + 1j, -3.0 - 1j]
    A = np.stack([similar_to(eigs, 0), similar_to(eigs, 1)])
    got = sp.sorted_eigvals(A, single=True)
    expected = [1.5, 0.7, 0.5 + 2j, 0.5 - 2j, -1.0, -3.0 + 1j, -3.0 - 1j]
    assert got.shape == (2, 7) and np.all(got[:, 2].imag > 0)
    np.testing.assert_allclose(got, np.stack([expected, expected]), atol=1e-4)
    # a random bulk (g = 1.2, N = 200): each float32 eigenvalue within 1e-4 of a float64 one
    J = 1.2 * np.random.default_rng(3).standard_normal((2, 200, 200)) / np.sqrt(200)
    single, double = sp.sorted_eigvals(J, single=True), sp.sorted_eigvals(J)
    distance = np.abs(single[:, :, None] - double[:, None, :]).min(axis=-1)
    assert distance.max() < 1e-4
    assert np.all(np.diff(single.real, axis=-1) <= 0)


def test_dphi_matches_finite_differences() -> None:
    h = np.linspace(-2.3, 2.1, 23)  # avoids 0, where ReLU has a kink
    eps = 1e-6
    phis = {"tanh": np.tanh, "relu": lambda x: np.maximum(x, 0.0), "linear": lambda x: x}
    for name, phi in phis.items():
        fd = (phi(h + eps) - phi(h - eps)) / (2 * eps)
        np.testing.assert_allclose(sp.dphi_numpy(h, name), fd, atol=1e-8)
        right = (phi(eps) - phi(0.0)) / eps  # right derivative at the origin
        assert sp.dphi_at_origin(name) == pytest.approx(right, abs=1e-6)
        assert float(sp.dphi_numpy(0.0, name)) == sp.dphi_at_origin(name)
    with pytest.raises(ValueError, match="unknown nonlinearity"):
        sp.dphi_numpy(h, "sigmoid")


@pytest.mark.parametrize("phi", ["tanh", "relu", "linear"])
def test_jacobian_matches_finite_differences_of_the_vector_field(phi: str) -> None:
    rng = np.random.default_rng(2)
    S, n = 2, 12
    J = rng.standard_normal((S, n, n)) / np.sqrt(n)
    h = rng.standard_normal((S, n))
    f = {"tanh": np.tanh, "relu": lambda x: np.maximum(x, 0.0), "linear": lambda x: x}[phi]

    def field(x: np.ndarray) -> np.ndarray:  # tau dh/dt = -h + J phi(h)
        return -x + np.einsum("sij,sj->si", J, f(x))

    eps = 1e-6
    fd = np.stack(
        [(field(h + eps * e) - field(h - eps * e)) / (2 * eps) for e in np.eye(n)], axis=-1
    )
    got = sp.jacobian(J, sp.dphi_numpy(h, phi))
    assert got.shape == (S, n, n)
    np.testing.assert_allclose(got, fd, atol=1e-6)
    # scalar slope: the Jacobian at the origin, -I + phi'(0) J
    np.testing.assert_allclose(sp.jacobian(J, sp.dphi_at_origin(phi)), J - np.eye(n))
    # in float32 (as the archive writer builds it): the same to float32 rounding
    single = sp.jacobian(J, sp.dphi_numpy(h, phi), dtype=np.float32)
    assert single.dtype == np.float32
    np.testing.assert_allclose(single, fd, atol=1e-5)


def test_bulk_edge_rule_and_no_false_outliers() -> None:
    n, g = 300, 1.3
    assert sp.bulk_edge(g, n) == pytest.approx(g * (1 + EDGE_MARGIN / np.sqrt(n)))
    assert sp.bulk_edge(g, n, margin=0.0) == pytest.approx(g)
    assert sp.bulk_edge(g, n, 0.5) == pytest.approx(0.5 * sp.bulk_edge(g, n))
    mask = np.r_[np.ones(120), np.zeros(180)]  # ReLU, f = 0.4: N_eff = 120
    assert sp.bulk_edge(g, n, mask) == pytest.approx(g * np.sqrt(0.4) * (1 + 2 / np.sqrt(120)))
    rng = np.random.default_rng(3)
    for _ in range(6):  # pure bulk: nothing outside the edge, J or Jacobian
        J = g * rng.standard_normal((n, n)) / np.sqrt(n)
        assert not sp.outlier_mask(sp.sorted_eigvals(J), 0.0, sp.bulk_edge(g, n)).any()
        jac = sp.jacobian(J, mask)
        assert not sp.outlier_mask(sp.sorted_eigvals(jac), -1.0, sp.bulk_edge(g, n, mask)).any()
    with pytest.raises(ValueError, match="dphi must have N"):
        sp.bulk_edge(g, n, np.ones(5))


def test_outlier_mask_finds_a_planted_outlier_of_the_jacobian() -> None:
    n, g, theta = 300, 0.9, 1.8
    rng = np.random.default_rng(4)
    u = rng.standard_normal(n)
    u /= np.linalg.norm(u)
    J = g * rng.standard_normal((n, n)) / np.sqrt(n) + theta * np.outer(u, u)
    eigs = sp.sorted_eigvals(sp.jacobian(J, 1.0))
    mask = sp.outlier_mask(eigs, -1.0, sp.bulk_edge(g, n))
    assert mask.sum() == 1 and mask[0]  # the rightmost, near -1 + theta
    assert abs(eigs[0] - (theta - 1.0)) < 0.2
    batch = sp.outlier_mask(np.array([[0.0, 2.0, np.nan], [3.0, -0.5, 1.0]]), 0.0, [1.0, 2.0])
    np.testing.assert_array_equal(batch, [[False, True, False], [True, False, False]])


def test_match_tracks_unpermutes_a_shuffled_set() -> None:
    rng = np.random.default_rng(5)
    prev = rng.standard_normal(7) + 1j * rng.standard_normal(7)
    perm = rng.permutation(7)
    curr = prev[perm] + 1e-3 * (rng.standard_normal(7) + 1j * rng.standard_normal(7))
    idx = sp.match_tracks(prev, curr)
    np.testing.assert_array_equal(perm[idx], np.arange(7))
    np.testing.assert_allclose(curr[idx], prev, atol=1e-2)
    # more slots than values: the unmatched slot gets -1; NaN entries are never matched
    idx = sp.match_tracks([1.0, 5.0, np.nan], [5.1, 0.9])
    np.testing.assert_array_equal(idx, [1, 0, -1])
    idx = sp.match_tracks([1.0, 5.0, 9.0], [8.8])
    np.testing.assert_array_equal(idx, [-1, -1, 0])


def test_outlier_tracks_follow_curves_through_shuffles_and_gaps() -> None:
    epochs = np.arange(30)
    a = 1.5 + 0.02 * epochs + 0.3j  # two outliers drifting on known curves
    b = -1.2 - 0.01 * epochs + 0.0j
    rng = np.random.default_rng(6)
    eigs = np.zeros((30, 6), complex)
    masks = np.zeros((30, 6), bool)
    for e in epochs:
        bulk = 0.5 * (rng.standard_normal(4) + 1j * rng.standard_normal(4))
        values = np.r_[a[e], b[e], bulk]
        present = np.r_[True, not 10 <= e < 15, np.zeros(4, bool)]  # b dips into the bulk
        order = rng.permutation(6)
        eigs[e], masks[e] = values[order], present[order]
    tracks = sp.outlier_tracks(eigs, masks)
    assert tracks.shape == (30, 2)
    slot_a = int(np.argmin(np.abs(tracks[0] - a[0])))
    np.testing.assert_allclose(tracks[:, slot_a], a)
    other = tracks[:, 1 - slot_a]
    gap = (epochs >= 10) & (epochs < 15)
    assert np.all(np.isnan(other[gap]))
    np.testing.assert_allclose(other[~gap], b[~gap])  # back in its own slot after the gap


def test_crossing_epoch_of_a_linear_ramp_is_exact() -> None:
    epochs = np.arange(0, 50, 5.0)
    for root in (12.3, 0.5, 44.9):
        ramp = 0.07 * (epochs - root)
        assert sp.crossing_epoch(epochs, ramp) == pytest.approx(root)
        assert sp.crossing_epoch(epochs, ramp + 0.2, level=0.2) == pytest.approx(root)
    assert np.isnan(sp.crossing_epoch(epochs, -np.ones(10)))
    assert np.isnan(sp.crossing_epoch(epochs, 0.07 * (epochs - 60.0)))
    # starts above: only a crossing after a dip counts; the first of several is returned
    wave = np.array([1.0, -1.0, 1.0, -1.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0])
    assert sp.crossing_epoch(epochs, wave) == pytest.approx(7.5)
    batch = np.stack([0.07 * (epochs - 12.3), -np.ones(10)])
    np.testing.assert_allclose(sp.crossing_epoch(epochs, batch), [12.3, np.nan])
    with pytest.raises(ValueError, match="increasing"):
        sp.crossing_epoch(epochs[::-1], batch)


def test_bad_input_raises_value_error() -> None:
    with pytest.raises(ValueError, match=r"\(\.\.\., N, N\)"):
        sp.sorted_eigvals(np.ones((3, 4)))
    with pytest.raises(ValueError, match="non-finite"):
        sp.sorted_eigvals(np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match="dphi must have N"):
        sp.jacobian(np.eye(3), np.ones(4))
    with pytest.raises(ValueError, match=r"one \(epoch, n\) shape"):
        sp.outlier_tracks(np.ones((3, 2)), np.ones((3, 3), bool))
