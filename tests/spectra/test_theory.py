"""rnnlab.spectra.theory against random-matrix facts and numerical eigenvalues of sampled
matrices."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.spectra import theory as th


def ginibre(n: int, seed: int) -> np.ndarray:
    """W_ij ~ N(0, 1/N)."""
    return np.random.default_rng(seed).standard_normal((n, n)) / np.sqrt(n)


def unit_pair(n: int, rho: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random unit u, v with v.u = rho exactly."""
    q, _ = np.linalg.qr(rng.standard_normal((n, 2)))
    return q[:, 0], rho * q[:, 0] + np.sqrt(1.0 - rho**2) * q[:, 1]


def edge(g: float, n: int) -> float:
    """Finite-N bulk edge of the documented rule, written out: g (1 + 2 / sqrt(N))."""
    return g * (1.0 + th.EDGE_MARGIN / np.sqrt(n))


@pytest.mark.parametrize("n", [400, 600])
def test_spectral_radius_of_gW_is_g(n: int) -> None:
    """Within 5% of g on average over seeds, 10% for each draw.

    The finite-N radius exceeds g by about 0.6 g / sqrt(N) (sd 0.3 g / sqrt(N)): at N = 400 a
    single draw is over 5% about one time in ten, the mean of three far more rarely.
    """
    g = 1.3
    radii = np.array([np.abs(np.linalg.eigvals(g * ginibre(n, seed))).max() for seed in range(3)])
    assert abs(radii.mean() - th.bulk_radius(g)) < 0.05 * g
    assert np.all(np.abs(radii - g) < 0.10 * g)


@pytest.mark.parametrize("theta,rho", [(1.25, 1.0), (1.6, 0.6), (-1.5, -0.8), (2.5, 0.4)])
def test_imposed_rank_one_outlier_sits_at_m_rho(theta: float, rho: float) -> None:
    g, n = 1.0, 400
    for seed in range(3):
        rng = np.random.default_rng(100 + seed)
        u, v = unit_pair(n, rho, rng)
        m = theta / rho
        eigs = np.linalg.eigvals(g * ginibre(n, seed) + m * np.outer(u, v))
        nearest = eigs[np.argmin(np.abs(eigs - theta))]
        assert th.meanfield_outliers(m, u, v) == pytest.approx([theta])
        sd = th.outlier_spread(theta, g, n, kappa=1.0 / abs(rho))
        assert abs(nearest - theta) < 4.0 * sd
        assert sd < 3.0 / np.sqrt(n)  # "a few 1/sqrt(N)"
        if abs(theta) >= 1.5 * g:  # clear of the edge by many sd: detected, and alone
            outside = eigs[np.abs(eigs) > edge(g, n)]
            assert outside.size == 1 and abs(outside[0] - theta) < 4.0 * sd


@pytest.mark.parametrize("theta,rho", [(0.5, 1.0), (0.79, 0.7), (-0.7, -0.5)])
def test_no_outlier_below_the_edge(theta: float, rho: float) -> None:
    g, n = 1.0, 400
    for seed in range(3):
        rng = np.random.default_rng(200 + seed)
        u, v = unit_pair(n, rho, rng)
        eigs = np.linalg.eigvals(g * ginibre(n, seed) + (theta / rho) * np.outer(u, v))
        assert np.all(np.abs(eigs) <= edge(g, n))


@pytest.mark.parametrize("b", [1.5, 2.5])
def test_mean_term_eigenvalue_at_minus_b(b: float) -> None:
    g, n = 1.0, 400
    for seed in range(3):
        eigs = np.linalg.eigvals(g * ginibre(n, seed) - b / n)
        outside = eigs[np.abs(eigs) > edge(g, n)]
        # -(b/N) 11^T = m u v^T with u = v = 1/sqrt(N): theta = -b, kappa = 1.
        assert outside.size == 1
        assert abs(outside[0] - th.mean_eigenvalue(b)) < 4.0 * th.outlier_spread(b, g, n)
    assert th.mean_eigenvalue(b) == -b


def test_outlier_spread_matches_sampled_sd() -> None:
    """sd of the outlier of g W + theta u u^T over 80 draws; found by batched power iteration,
    which converges at rate g / theta to the largest-magnitude eigenvalue (the outlier)."""
    g, n, theta, draws = 1.0, 300, 1.6, 80
    rng = np.random.default_rng(300)
    u = rng.standard_normal((draws, n, 1))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    J = g * rng.standard_normal((draws, n, n)) / np.sqrt(n) + theta * u * u.transpose(0, 2, 1)
    x = rng.standard_normal((draws, n, 1))
    for _ in range(120):
        y = J @ x
        lam = (x.transpose(0, 2, 1) @ y)[:, 0, 0] / (x.transpose(0, 2, 1) @ x)[:, 0, 0]
        x = y / np.linalg.norm(y, axis=1, keepdims=True)
    assert np.all(np.abs(J @ x - lam[:, None, None] * x) < 1e-6)  # converged eigenpairs
    predicted = th.outlier_spread(theta, g, n)
    assert np.std(lam) == pytest.approx(predicted, rel=0.25)
    assert abs(np.mean(lam) - theta) < 4.0 * predicted / np.sqrt(draws) + 0.02
    assert th.outlier_spread(0.9, g, n) == np.inf
    # the closed form: kappa g theta / sqrt(N (theta^2 - g^2)), broadcast over theta
    thetas = np.array([1.5, -3.0])
    expected = 2.0 * 0.5 * np.abs(thetas) / np.sqrt(100 * (thetas**2 - 0.25))
    np.testing.assert_allclose(th.outlier_spread(thetas, 0.5, 100, kappa=2.0), expected)


def test_bulk_radius_and_mean_eigenvalue_with_slopes() -> None:
    mask = np.zeros(1000)
    mask[:300] = 1.0  # ReLU active fraction f = 0.3
    assert th.bulk_radius(1.4, mask) == pytest.approx(1.4 * np.sqrt(0.3))
    assert th.mean_eigenvalue(2.0, mask) == pytest.approx(-0.6)
    assert th.bulk_radius(1.4, np.ones(10)) == pytest.approx(1.4)
    assert th.bulk_radius(1.4, 0.5) == pytest.approx(0.7)  # one scalar slope for all neurons
    slopes = np.array([[1.0, 0.0], [0.5, 0.5]])
    np.testing.assert_allclose(th.bulk_radius(2.0, slopes), [2.0 * np.sqrt(0.5), 1.0])


def test_relu_jacobian_bulk_radius_and_mean_eigenvalue() -> None:
    """-I + J diag(phi'(h)) at a ReLU state: bulk g sqrt(f) about -1, mean term at -1 - b f."""
    g, b, n = 1.2, 4.0, 600
    for seed in range(2):
        rng = np.random.default_rng(400 + seed)
        slopes = (rng.standard_normal(n) >= 0.25).astype(float)  # f ~ 0.4
        f = slopes.mean()
        jac = (g * ginibre(n, seed) - b / n) * slopes - np.eye(n)
        eigs = np.linalg.eigvals(jac)
        radius = th.bulk_radius(g, slopes)
        assert radius == pytest.approx(g * np.sqrt(f))
        dist = np.abs(eigs + 1.0)
        # Effective problem: the f N active columns, bulk g sqrt(f), u = v = 1_A / sqrt(fN).
        outliers = eigs[dist > radius * (1.0 + th.EDGE_MARGIN / np.sqrt(f * n))]
        assert outliers.size == 1
        sd = th.outlier_spread(b * f, g * np.sqrt(f), f * n)
        assert abs(outliers[0] - (-1.0 + th.mean_eigenvalue(b, slopes))) < 4.0 * sd
        # the bulk fills the disc up to the finite-N edge (N_eff = f N active columns)
        bulk = dist[dist <= radius * 1.5]
        assert radius * 0.95 < bulk.max() < radius * (1.0 + th.EDGE_MARGIN / np.sqrt(f * n))


def test_euler_map_eigenvalues() -> None:
    rng = np.random.default_rng(5)
    J = 1.3 * rng.standard_normal((60, 60)) / np.sqrt(60)
    lam = np.linalg.eigvals(J)
    for alpha in (0.1, 0.5, 1.0):
        step = (1.0 - alpha) * np.eye(60) + alpha * J
        got = np.linalg.eigvals(step)
        predicted = th.euler_map_eigenvalues(lam, alpha)
        cost = np.abs(got[:, None] - predicted[None, :])
        assert np.all(cost.min(axis=1) < 1e-10) and np.all(cost.min(axis=0) < 1e-10)
    # real lambda: the map is stable iff lambda < 1 (0 < alpha <= 1), like the ODE
    real = np.linspace(-0.9, 2.0, 30) + 0.013  # avoid the marginal lambda = 1 itself
    stable = np.abs(th.euler_map_eigenvalues(real, 0.2)) < 1.0
    np.testing.assert_array_equal(stable, real < 1.0)


def test_meanfield_rank_two_complex_pair_and_broadcast() -> None:
    g, n = 0.8, 600
    rng = np.random.default_rng(6)
    q, _ = np.linalg.qr(rng.standard_normal((n, 2)))
    # U diag(m) V^T = Q [[a, -c], [c, a]] Q^T has eigenvalues a +- i c.
    a, c = 1.2, 0.9
    m = np.array([np.hypot(a, c), np.hypot(a, c)])
    V = q @ np.array([[a, c], [-c, a]]).T / np.hypot(a, c)
    mf = th.meanfield_outliers(m, q, V)
    np.testing.assert_allclose(np.sort_complex(mf), [a - 1j * c, a + 1j * c], atol=1e-12)
    eigs = np.linalg.eigvals(g * ginibre(n, 6) + q @ np.diag(m) @ V.T)
    outside = eigs[np.abs(eigs) > edge(g, n)]
    assert outside.size == 2
    sd = th.outlier_spread(np.hypot(a, c), g, n)
    assert np.all(np.min(np.abs(outside[:, None] - mf[None, :]), axis=1) < 5.0 * sd)
    stacked = th.meanfield_outliers(np.stack([m, 2 * m]), np.stack([q, q]), np.stack([V, V]))
    assert stacked.shape == (2, 2)
    np.testing.assert_allclose(np.sort_complex(stacked[1]), 2 * np.sort_complex(mf))


def _numerical_outliers(J: np.ndarray, m, U, V, radius: float) -> np.ndarray:
    Un = U / np.linalg.norm(U, axis=0)
    Vn = V / np.linalg.norm(V, axis=0)
    eigs = np.linalg.eigvals(J + (Un * m) @ Vn.T)
    return -np.sort(-eigs[np.abs(eigs) > radius])


def _structures(n: int, W: np.ndarray, rng: np.random.Generator) -> dict[str, tuple]:
    u, v = unit_pair(n, 0.7, rng)
    q, _ = np.linalg.qr(rng.standard_normal((n, 4)))
    x = rng.standard_normal((n, 2))
    return {
        "rank1": (np.array([2.2]), u[:, None], v[:, None]),
        "rank2_real": (np.array([1.9, -1.6]), q[:, :2], q[:, :2] + 0.3 * q[:, 2:]),
        "rank2_pair": (
            np.array([1.5, 1.5]),
            q[:, :2],
            q[:, :2] @ np.array([[0.6, -0.8], [0.8, 0.6]]),
        ),
        # vectors correlated with the bulk: mean field misses the finite-N shift
        "correlated": (
            np.array([2.0, -2.0]),
            np.c_[x[:, 0] + W @ x[:, 0], x[:, 1] + W @ W @ x[:, 1]],
            x,
        ),
    }


@pytest.mark.parametrize("name", ["rank1", "rank2_real", "rank2_pair", "correlated"])
def test_exact_outliers_match_numerical_eigenvalues(name: str, monkeypatch) -> None:
    g, n = 1.0, 400
    W = ginibre(n, 7)
    m, U, V = _structures(n, W, np.random.default_rng(8))[name]
    radius = edge(g, n)
    expected = _numerical_outliers(g * W, m, U, V, radius)
    assert expected.size >= 1

    # exact_outliers must not eigendecompose an N x N matrix: only R x R (or companion) problems.
    real_eigvals = np.linalg.eigvals

    def small_only(a):
        assert np.shape(a)[-1] < n // 4, "exact_outliers eigendecomposed a large matrix"
        return real_eigvals(a)

    monkeypatch.setattr(np.linalg, "eigvals", small_only)
    got = th.exact_outliers(g * W, m, U, V, radius=radius)
    monkeypatch.undo()
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    if name == "correlated":
        mf = th.meanfield_outliers(m, U, V)
        mf_err = np.min(np.abs(expected[:, None] - mf[None, :]), axis=1).max()
        assert mf_err > 0.05  # mean field misses by many 1/N: the exact theory is needed
    if name == "rank2_pair":
        assert np.all(np.abs(got.imag) > 0.1)


def test_exact_outliers_mean_term_as_a_column_and_default_radius() -> None:
    """b > g: J0 = g W with -(b/N) 11^T passed as a column gives both outliers."""
    g, b, n = 0.9, 2.0, 300
    W = ginibre(n, 9)
    u, v = unit_pair(n, 0.8, np.random.default_rng(10))
    ones = np.ones((n, 1))
    m, U, V = np.array([2.0, -b]), np.hstack([u[:, None], ones]), np.hstack([v[:, None], ones])
    got = th.exact_outliers(g * W, m, U, V)  # default radius: sqrt(N) std(J0) (1 + 2/sqrt(N))
    expected = _numerical_outliers(g * W, m, U, V, edge(g, n))
    assert expected.size == 2
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert got[-1].real == pytest.approx(-b, abs=4 * th.outlier_spread(b, g, n))


def test_exact_outliers_follow_an_edited_J0() -> None:
    """The Hessenberg form of J0 is cached: editing J0 in place must still give its outliers."""
    n = 200
    J = ginibre(n, 12)
    u, v = unit_pair(n, 0.9, np.random.default_rng(12))
    first = th.exact_outliers(J, 2.0, u, v, radius=edge(1.0, n))
    J[:, :] = 0.5 * J  # same array object, new values: the outlier moves
    second = th.exact_outliers(J, 2.0, u, v, radius=edge(1.0, n))
    expected = _numerical_outliers(J, np.array([2.0]), u[:, None], v[:, None], edge(1.0, n))
    np.testing.assert_allclose(second, expected, rtol=1e-6)
    assert abs(first[0] - second[0]) > 1e-3


def test_exact_outliers_none_when_subcritical() -> None:
    n = 300
    u, v = unit_pair(n, 1.0, np.random.default_rng(11))
    assert th.exact_outliers(ginibre(n, 11), 0.5, u, v).size == 0


def test_bad_input_raises_value_error() -> None:
    W = ginibre(20, 0)
    u = np.ones(20)
    with pytest.raises(ValueError, match="square"):
        th.exact_outliers(W[:, :10], 1.0, u, u)
    with pytest.raises(ValueError, match="U and V"):
        th.exact_outliers(W, 1.0, u, np.ones(19))
    with pytest.raises(ValueError, match="zero"):
        th.meanfield_outliers(1.0, np.zeros(20), u)
    with pytest.raises(ValueError, match="m must"):
        th.meanfield_outliers([1.0, 2.0, 3.0], np.ones((20, 2)), np.ones((20, 2)))
    with pytest.raises(ValueError, match="g must"):
        th.bulk_radius(-1.0)
    with pytest.raises(ValueError, match="alpha"):
        th.euler_map_eigenvalues(1.0, 0.0)
    with pytest.raises(ValueError, match="N must"):
        th.outlier_spread(2.0, 1.0, 0)


def riccati_pole(tau, dt, tau_ou, sigma, obs, steps=200_000):
    """The steady-state Kalman pole by iterating the filter's own recursions (predict, update)
    from the stationary prior until they stop changing, mapped to J's eigenvalue by hand."""
    a = np.exp(-dt / tau_ou)
    q, r = sigma**2 * (1 - a * a), obs**2
    prior = sigma**2
    for _ in range(steps):
        gain = prior / (prior + r)
        post = (1 - gain) * prior
        new = a * a * post + q
        if abs(new - prior) <= 1e-15 * prior:
            break
        prior = new
    pole = a * (1 - prior / (prior + r))
    alpha = dt / tau
    return (pole - (1 - alpha)) / alpha  # 1 - alpha + alpha lambda = pole


@pytest.mark.parametrize(
    "args",
    [
        (0.05, 0.01, 0.2, 1.0, 1.0),  # the default denoise task
        (0.05, 0.01, 0.2, 1.0, 0.1),
        (0.1, 0.01, 0.5, 2.0, 3.0),
        (0.02, 0.02, 0.05, 0.5, 0.7),  # alpha = 1
        (0.05, 0.01, 0.2, 1e-4, 1.0),  # almost no signal: the gain vanishes, the pole is a
    ],
)
def test_kalman_pole_matches_a_direct_riccati_iteration(args):
    assert th.kalman_pole(*args) == pytest.approx(riccati_pole(*args), rel=1e-9, abs=1e-12)
    # and the Euler map of that eigenvalue is the filter's pole, inside the unit circle
    tau, dt = args[:2]
    pole = th.euler_map_eigenvalues(th.kalman_pole(*args), dt / tau)
    assert 0 <= pole.real < np.exp(-dt / args[2]) + 1e-15


def test_kalman_pole_limits_and_broadcasting():
    # no observation noise (the track task): K = 1, pole 0, lambda = 1 - 1/alpha
    assert th.kalman_pole(0.05, 0.01, 0.2, 1.0, 0.0) == pytest.approx(1 - 0.05 / 0.01)
    out = th.kalman_pole(0.05, 0.01, 0.2, 1.0, np.array([0.0, 1.0, 3.0]))
    assert out.shape == (3,) and np.all(np.diff(out) > 0)  # noisier: slower filter
    assert np.isnan(th.kalman_pole(0.05, 0.01, 0.2, 0.0, 0.0))
    with pytest.raises(ValueError, match="dt <= tau"):
        th.kalman_pole(0.01, 0.05, 0.2, 1.0, 1.0)
