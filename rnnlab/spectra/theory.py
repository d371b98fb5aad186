"""Random-matrix predictions for the spectrum of J0 = g W - (b/N) 11^T + sum_r m_r u_r v_r^T.

Pure NumPy/SciPy on plain arrays, so the trainer, the archive writer and the analysis all share it.
Facts used (W_ij ~ N(0, 1/N)): the bulk of g W fills a disc of radius g; for a Jacobian
-I + J diag(phi') it fills a disc of radius g sqrt(<phi'^2>) about -1; the mean term puts an
eigenvalue at -b (-b <phi'> in the Jacobian); a structure independent of W puts outliers at the
eigenvalues of the overlap matrix M_rs = m_r v_r^T u_s once they leave the disc.
"""

from __future__ import annotations

import hashlib
import threading

import numpy as np
import scipy.linalg
from numpy.typing import ArrayLike, NDArray

# Finite-N margin of the bulk edge, in units of radius / sqrt(N_eff): the spectral radius of an
# N x N real Ginibre matrix exceeds 1 by about 0.6/sqrt(N) on average with a Gumbel tail (sd about
# 0.3/sqrt(N)), so 2/sqrt(N) is crossed by a pure bulk in well under 1% of draws (docs/spectra.md).
EDGE_MARGIN = 2.0

__all__ = [
    "EDGE_MARGIN",
    "bulk_radius",
    "euler_map_eigenvalues",
    "exact_outliers",
    "kalman_pole",
    "mean_eigenvalue",
    "meanfield_outliers",
    "outlier_spread",
]


def _mean_slope_moment(dphi: ArrayLike, power: int) -> NDArray[np.float64]:
    """<phi'^power> over the last (neuron) axis (a scalar is one slope for all neurons)."""
    d = np.asarray(dphi, dtype=float)
    if d.ndim and d.shape[-1] == 0:
        raise ValueError(f"dphi must have a non-empty neuron axis, got shape {d.shape}")
    if not np.all(np.isfinite(d)):
        raise ValueError("dphi contains non-finite values")
    return np.mean(d**power, axis=-1) if d.ndim else d**power


def bulk_radius(g: ArrayLike, dphi: ArrayLike | None = None) -> NDArray[np.float64] | float:
    """Radius of the circular bulk: g for J, g sqrt(<phi'^2>) for J diag(phi') (ReLU: g sqrt(f)).

    `dphi` is (..., N); the mean runs over the last axis and broadcasts against `g`.
    """
    g_arr = np.asarray(g, dtype=float)
    if np.any(g_arr < 0):
        raise ValueError(f"g must be >= 0, got {g}")
    if dphi is None:
        return g_arr if g_arr.ndim else float(g_arr)
    out = g_arr * np.sqrt(_mean_slope_moment(dphi, 2))
    return out if np.ndim(out) else float(out)


def mean_eigenvalue(b: ArrayLike, dphi: ArrayLike | None = None) -> NDArray[np.float64] | float:
    """Eigenvalue of the mean term -(b/N) 11^T: -b for J, -b <phi'> for J diag(phi') (ReLU: -b f).

    (b/N) 1 1^T diag(d) = (b/N) 1 d^T has the single non-zero eigenvalue (b/N) d^T 1 = b <d>.
    """
    b_arr = np.asarray(b, dtype=float)
    out = -b_arr if dphi is None else -b_arr * _mean_slope_moment(dphi, 1)
    return out if np.ndim(out) else float(out)


def _as_columns(X: ArrayLike, name: str) -> NDArray[np.float64]:
    """(..., N, R) float array with unit-norm columns; a 1-D vector is rank one (N, 1)."""
    a = np.asarray(X, dtype=float)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim < 2 or a.shape[-2] == 0 or a.shape[-1] == 0:
        raise ValueError(f"{name} must be (..., N, R) with N, R > 0, got shape {a.shape}")
    norms = np.linalg.norm(a, axis=-2, keepdims=True)
    if np.any(norms == 0) or not np.all(np.isfinite(norms)):
        raise ValueError(f"{name} has a zero or non-finite column")
    return a / norms


def _overlap_matrix(m: ArrayLike, U: ArrayLike, V: ArrayLike) -> NDArray[np.float64]:
    """M_rs = m_r v_r^T u_s with unit columns, shape (..., R, R)."""
    u, v = _as_columns(U, "U"), _as_columns(V, "V")
    if u.shape[-2:] != v.shape[-2:]:
        raise ValueError(f"U and V must have the same (N, R), got {u.shape} and {v.shape}")
    rank = u.shape[-1]
    m_arr = np.asarray(m, dtype=float)
    if m_arr.ndim == 0:
        m_arr = np.full(rank, float(m_arr))
    if m_arr.shape[-1] != rank:
        raise ValueError(f"m must have R={rank} entries on its last axis, got shape {m_arr.shape}")
    return m_arr[..., :, None] * (np.swapaxes(v, -1, -2) @ u)


def meanfield_outliers(m: ArrayLike, U: ArrayLike, V: ArrayLike) -> NDArray[np.complex128]:
    """Mean-field outliers of J0 + U diag(m) V^T: eigenvalues of M_rs = m_r v_r^T u_s.

    U, V are (..., N, R) (columns normalised here; a 1-D vector means R = 1), m is (..., R) or a
    scalar. The non-zero eigenvalues of U diag(m) V^T equal those of diag(m) V^T U; they are the
    outliers when the structure is independent of W and they lie outside the bulk disc.
    """
    return np.linalg.eigvals(_overlap_matrix(m, U, V)).astype(complex)


def _default_radius(J0: NDArray[np.float64]) -> float:
    """Finite-N bulk edge of J0: sqrt(N) std(J0) (the std ignores the constant -b/N) times
    (1 + EDGE_MARGIN / sqrt(N)), the same rule as `rnnlab.spectra.bulk_edge`."""
    n = J0.shape[0]
    return float(np.sqrt(n) * np.std(J0) * (1.0 + EDGE_MARGIN / np.sqrt(n)))


def _series_starts(
    J0: NDArray[np.float64], mU: NDArray[np.float64], V: NDArray[np.float64], order: int
) -> NDArray[np.complex128]:
    """Roots of the truncated resolvent series det(I - sum_k M_k / lambda^(k+1)) = 0.

    M_k = diag(m) V^T J0^k U; order 0 is mean field, higher orders add the finite-N correlation of
    the vectors with J0 (a block-companion eigenproblem of size R (order + 1)).
    """
    rank = mU.shape[1]
    blocks, x = [], mU
    for _ in range(order + 1):
        blocks.append(V.T @ x)
        x = J0 @ x
    size = rank * (order + 1)
    companion = np.zeros((size, size))
    companion[:rank, :] = np.concatenate(blocks, axis=1)
    companion[rank:, :-rank] = np.eye(size - rank)
    return np.linalg.eigvals(companion).astype(complex)


_BAND_CACHE: dict[bytes, tuple[NDArray[np.float64], NDArray[np.float64]]] = {}
_BAND_LOCK = threading.Lock()


def _hessenberg_band(J0: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(band of -H in LAPACK gbtrf storage, Q) with J0 = Q H Q^T, H upper Hessenberg.

    Cached on J0's bytes (a few entries, thread-safe): the analysis asks about one J0 per epoch.
    """
    key = hashlib.blake2b(J0.tobytes(), digest_size=16).digest() + repr(J0.shape).encode()
    with _BAND_LOCK:
        entry = _BAND_CACHE.get(key)
    if entry is None:
        n = J0.shape[0]
        hess, q = scipy.linalg.hessenberg(J0, calc_q=True)
        # kl = 1, ku = n - 1: row kl + ku + i - j holds entry (i, j); row 0 is LU workspace.
        band = np.zeros((n + 2, n))
        for d in range(-1, n):
            band[n - d, max(d, 0) : n + min(d, 0)] = -np.diagonal(hess, d)
        entry = (band, q)
        with _BAND_LOCK:
            _BAND_CACHE[key] = entry
            while len(_BAND_CACHE) > 4:
                _BAND_CACHE.pop(next(iter(_BAND_CACHE)))
    return entry


class _ShiftedSolver:
    """Evaluates F(lambda) = I - V^T (lambda - J0)^-1 (U diag m) and F'(lambda).

    J0 = Q H Q^T is reduced to Hessenberg form once (O(N^3)); each point then needs one banded
    LU of (lambda I - H) (lower bandwidth 1), O(N^2), and two triangular solves.
    """

    def __init__(self, J0: NDArray[np.float64], mU: NDArray[np.float64], V: NDArray[np.float64]):
        self.band, q = _hessenberg_band(J0)
        self.ku = J0.shape[0] - 1
        self.qt_mu = (q.T @ mU).astype(complex)
        self.qt_vt = (q.T @ V).T
        self.gbtrf, self.gbtrs = scipy.linalg.get_lapack_funcs(("gbtrf", "gbtrs"), dtype=complex)

    def evaluate(
        self, lam: complex
    ) -> tuple[NDArray[np.complex128], NDArray[np.complex128]] | None:
        """(F, F') at lam, or None where lam I - J0 is singular (lam is an eigenvalue of J0)."""
        ab = self.band.astype(complex)
        ab[self.ku + 1] += lam
        lu, piv, info = self.gbtrf(ab, 1, self.ku)
        if info != 0:
            return None
        gu, _ = self.gbtrs(lu, 1, self.ku, self.qt_mu, piv)
        g2u, _ = self.gbtrs(lu, 1, self.ku, gu, piv)
        rank = gu.shape[1]
        # F = I - V^T G (U diag m): same determinant as I - diag(m) V^T G U (Sylvester).
        return np.eye(rank) - self.qt_vt @ gu, self.qt_vt @ g2u


def _newton_root(
    solver: _ShiftedSolver,
    lam: complex,
    known: list[complex],
    tol: float,
    maxiter: int,
    region: tuple[float, float],
) -> complex | None:
    """Newton on det F(lambda) with the `known` roots deflated (Newton-Maehly); None if it fails.

    d/dlambda log det F = tr(F^-1 F'); deflation subtracts sum_k 1/(lambda - known_k) so a start
    cannot fall back onto a root already found. Newton is repelled by the poles (eigenvalues of
    J0); it gives up once |lambda| leaves the annulus `region` (deep in the bulk, or beyond any
    possible eigenvalue, where det F -> 1 and Newton drifts off to infinity).
    """
    floor = None
    for _ in range(maxiter):
        values = solver.evaluate(lam)
        if values is None:
            return None
        F, dF = values
        try:
            dlog = np.trace(np.linalg.solve(F, dF))
        except np.linalg.LinAlgError:
            return lam  # F singular: lam is a root to working precision
        dlog -= sum(1.0 / (lam - k) for k in known)
        if dlog == 0 or not np.isfinite(dlog):
            return None
        step = 1.0 / dlog
        lam = lam - step
        if not region[0] < abs(lam) < region[1]:
            return None
        scale = max(1.0, abs(lam))
        if abs(step) <= tol * scale:
            return lam
        # Rounding floor: once tiny, a step that stops shrinking means lam is as good as it gets.
        if abs(step) <= 1e-9 * scale:
            if floor is not None and abs(step) >= 0.5 * floor:
                return lam
            floor = abs(step)
    return None


def _starts(
    J0: NDArray[np.float64],
    mU: NDArray[np.float64],
    V: NDArray[np.float64],
    radius: float,
    series_order: int,
    n_ring: int,
) -> list[complex]:
    """Newton starts, most trusted first: mean field, truncated series, then a ring outside radius.

    Only points outside `radius` in the closed upper half plane: conjugates of complex roots are
    added once found, as J0, U, V are real. The ring (angles 0..pi at 1.1 radius) catches roots
    that the expansions miss, e.g. near-edge outliers of a strongly non-normal structure.
    """
    guesses = [np.linalg.eigvals(V.T @ mU)]
    guesses += [_series_starts(J0, mU, V, k) for k in range(1, series_order + 1)]
    guesses.append(1.1 * radius * np.exp(1j * np.linspace(0.0, np.pi, n_ring)))
    starts = np.concatenate(guesses).astype(complex)
    starts = starts[(np.abs(starts) > radius) & np.isfinite(starts)]
    return [complex(z.real, abs(z.imag)) for z in starts]


def exact_outliers(
    J0: ArrayLike,
    m: ArrayLike,
    U: ArrayLike,
    V: ArrayLike,
    radius: float | None = None,
    tol: float = 1e-12,
    series_order: int = 6,
    n_ring: int = 9,
    maxiter: int = 60,
    starts: ArrayLike | None = None,
) -> NDArray[np.complex128]:
    """Outliers of J0 + U diag(m) V^T: roots with |lambda| > radius of det(I - diag(m) V^T G U) = 0.

    G = (lambda I - J0)^-1 (matrix determinant lemma), so roots are eigenvalues of the perturbed
    matrix that J0 lacks; unlike mean field this holds for vectors correlated with W. Roots come
    from Newton iteration in the complex plane with solves of (lambda I - J0) (banded, after one
    Hessenberg reduction of J0), started from the mean-field guesses, the truncated resolvent
    series (orders 1..series_order) and `n_ring` points on a ring outside the bulk, deflating
    roots already found; `starts` adds guesses of your own. `radius` defaults to the finite-N
    bulk edge g (1 + EDGE_MARGIN/sqrt(N)) with g = sqrt(N) std(J0). Outliers that J0 has on its
    own (e.g. -b of the mean term) are poles, not roots: to predict them too, pass J0 = g W and
    the mean term as a column (u = v = 1, m = -b). Returns distinct roots by descending real part.
    """
    J = np.asarray(J0, dtype=float)
    if J.ndim != 2 or J.shape[0] != J.shape[1] or J.shape[0] == 0:
        raise ValueError(f"J0 must be a square (N, N) matrix, got shape {J.shape}")
    if not np.all(np.isfinite(J)):
        raise ValueError("J0 contains non-finite values")
    u, v = _as_columns(U, "U"), _as_columns(V, "V")
    if u.ndim != 2 or u.shape != v.shape or u.shape[0] != J.shape[0]:
        raise ValueError(f"U and V must be (N={J.shape[0]}, R), got {u.shape} and {v.shape}")
    m_arr = np.asarray(m, dtype=float).reshape(-1)
    if m_arr.size not in (1, u.shape[1]) or not np.all(np.isfinite(m_arr)):
        raise ValueError(f"m must be a scalar or R={u.shape[1]} finite values, got {m}")
    if tol <= 0 or maxiter < 1:
        raise ValueError(f"tol must be > 0 and maxiter >= 1, got {tol}, {maxiter}")
    r = _default_radius(J) if radius is None else float(radius)
    mU = u * m_arr
    solver = _ShiftedSolver(J, mU, v)
    guesses = _starts(J, mU, v, r, series_order, n_ring)
    if starts is not None:
        guesses = [complex(z) for z in np.atleast_1d(np.asarray(starts))] + guesses
    # No eigenvalue exceeds the norm bound; roots deep inside the bulk are not wanted.
    bound = 1.5 * (np.linalg.norm(J) + float(np.sum(np.abs(m_arr))))
    scale = max(r, 1.0)
    found: list[complex] = []
    for start in guesses:
        # A start this close to a known root would only re-find it (deflated away) or fail.
        if any(abs(start - k) <= 0.02 * scale for k in found):
            continue
        root = _newton_root(solver, start, found, tol, maxiter, (0.8 * r, bound))
        if root is None or any(abs(root - k) <= 1e-8 * scale for k in found):
            continue
        if abs(root.imag) <= 1e-9 * scale:
            found.append(complex(root.real, 0.0))
        else:
            found += [root, root.conjugate()]
    out = np.array([z for z in found if abs(z) > r], dtype=complex)
    return -np.sort(-out)


def outlier_spread(
    theta: ArrayLike, g: ArrayLike, N: ArrayLike, kappa: ArrayLike = 1.0
) -> NDArray[np.float64] | float:
    """Finite-N sd of an outlier about theta = m v^T u: kappa g |theta| / sqrt(N (|theta|^2 - g^2)).

    kappa = |u||v| / |v^T u| (1 for u = v). Derived from the resolvent expansion
    v^T (lambda - gW)^-1 u = sum_k g^k v^T W^k u / lambda^(k+1), whose terms k >= 1 are independent
    with variance |u|^2 |v|^2 / N. Infinite where |theta| <= g (no separated outlier).
    """
    th = np.abs(np.asarray(theta))
    g_arr = np.asarray(g, dtype=float)
    n_arr = np.asarray(N, dtype=float)
    if np.any(n_arr <= 0):
        raise ValueError(f"N must be > 0, got {N}")
    gap = th**2 - g_arr**2
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(
            gap > 0, kappa * g_arr * th / np.sqrt(n_arr * np.where(gap > 0, gap, 1.0)), np.inf
        )
    return out if np.ndim(out) else float(out)


def euler_map_eigenvalues(lam: ArrayLike, alpha: ArrayLike) -> NDArray[np.complex128] | complex:
    """Eigenvalues 1 - alpha + alpha lambda of the Euler map h -> (1 - alpha) h + alpha J h.

    For real lambda the map is stable (|.| < 1) iff lambda < 1 (given 0 < alpha <= 1), as the ODE.
    """
    a = np.asarray(alpha, dtype=float)
    if np.any(a <= 0):
        raise ValueError(f"alpha = dt/tau must be > 0, got {alpha}")
    out = 1.0 - a + a * np.asarray(lam)
    return out if np.ndim(out) else complex(out)


def kalman_pole(
    tau: ArrayLike, dt: ArrayLike, tau_ou: ArrayLike, sigma_ou: ArrayLike, obs_noise: ArrayLike
) -> NDArray[np.float64] | float:
    """The eigenvalue of J at which the linear network's Euler map has the steady-state Kalman pole.

    Task (`denoise`, one stimulus): x_k = a x_{k-1} + sigma_ou sqrt(1 - a^2) xi_k with
    a = exp(-dt/tau_ou), observed as u_k = x_k + obs_noise eta_k. The steady-state Kalman filter
    (estimate from u_1..u_k) is x^_k = p x^_{k-1} + K u_k with pole p = a (1 - K), gain
    K = P / (P + r), r = obs_noise^2, and the prior variance P solving the scalar Riccati equation
    P = a^2 P r / (P + r) + q, q = sigma_ou^2 (1 - a^2), whose positive root is
    P = (sqrt(c^2 + 4 q r) - c) / 2, c = r (1 - a^2) - q. The linear network
    h_k = (1 - alpha) h_{k-1} + alpha (J h_{k-1} + B u_k), y_k = w^T h_k (alpha = dt/tau) is that
    filter when J has the eigenvalue lambda with 1 - alpha + alpha lambda = p
    (`euler_map_eigenvalues`), i.e. lambda = 1 - (1 - p) / alpha. obs_noise = 0 (the `track`
    task) gives K = 1, p = 0, lambda = 1 - 1/alpha. Broadcasts; NaN where K is undefined
    (sigma_ou = obs_noise = 0).
    """
    tau_a, dt_a = np.asarray(tau, dtype=float), np.asarray(dt, dtype=float)
    tau_ou_a = np.asarray(tau_ou, dtype=float)
    sigma, noise = np.asarray(sigma_ou, dtype=float), np.asarray(obs_noise, dtype=float)
    if np.any(tau_a <= 0) or np.any(dt_a <= 0) or np.any(dt_a > tau_a):
        raise ValueError(f"need 0 < dt <= tau, got dt={dt}, tau={tau}")
    if np.any(tau_ou_a <= 0) or np.any(sigma < 0) or np.any(noise < 0):
        raise ValueError(
            f"need tau_ou > 0, sigma_ou >= 0, obs_noise >= 0; got {tau_ou}, {sigma_ou}, {obs_noise}"
        )
    a = np.exp(-dt_a / tau_ou_a)
    q, r = sigma**2 * (1.0 - a * a), noise**2
    c = r * (1.0 - a * a) - q
    disc = np.sqrt(c * c + 4.0 * q * r)
    with np.errstate(invalid="ignore", divide="ignore"):
        # both forms of the positive root, each free of cancellation where it is used
        prior = np.where(c <= 0, (disc - c) / 2.0, 2.0 * q * r / (disc + c))
        gain = np.where(prior + r > 0, prior / (prior + r), np.nan)
    pole = a * (1.0 - gain)
    out = 1.0 - (1.0 - pole) / (dt_a / tau_a)
    return out if np.ndim(out) else float(out)
