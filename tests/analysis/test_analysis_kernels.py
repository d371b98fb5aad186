"""NumPy kernels of rnnlab.analysis against closed forms and random-matrix facts."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from rnnlab.analysis import np_alignment, np_clusters, np_lowrank, np_summaries


def orthonormal(rng, n, r):
    q, _ = np.linalg.qr(rng.normal(size=(n, r)))
    return q


def planted_lowrank(rng, n=80, m=(5.0, 3.0), noise=0.0):
    a, c = orthonormal(rng, n, len(m)), orthonormal(rng, n, len(m))
    x = (a * np.asarray(m)) @ c.T + noise * rng.normal(size=(n, n)) / np.sqrt(n)
    return x, a, c


def test_lowrank_recovers_planted_rank2_plus_noise():
    rng = np.random.default_rng(0)
    n, noise = 200, 0.5
    x, a, c = planted_lowrank(rng, n, noise=noise)
    m, u, v, expl, cum, sv = np_lowrank.lowrank(x, 2)
    # noise of operator norm 2*noise: singular values move by O(noise^2/m), angles by O(noise/m)
    assert np.allclose(m, [5.0, 3.0], atol=0.2)
    assert np.max(scipy.linalg.subspace_angles(u.T, a)) < 0.25
    assert np.max(scipy.linalg.subspace_angles(v.T, c)) < 0.25
    # explained fractions: closed form from the Frobenius norm of the input
    assert np.allclose(expl, m**2 / np.sum(x**2), rtol=1e-10)
    assert np.allclose(cum, np.cumsum(expl))
    assert sv.shape == (n,) and np.all(np.diff(sv) <= 1e-12)
    # the fit reproduces the matrix: m_r = u_r^T x v_r
    assert np.allclose(np.einsum("ri,ij,rj->r", u, x, v), m)


def test_lowrank_sign_rule_and_unit_norm():
    rng = np.random.default_rng(1)
    x, _, _ = planted_lowrank(rng, 50)
    for sign in (1, -1):
        m, u, v, *_ = np_lowrank.lowrank(sign * x, 2)
        assert np.allclose(np.linalg.norm(u, axis=-1), 1) and np.allclose(
            np.linalg.norm(v, axis=-1), 1
        )
        top = u[np.arange(2), np.abs(u).argmax(axis=-1)]
        assert np.all(top > 0)
        # flipping the input flips v, not u (u's sign is fixed by the rule)
        if sign == 1:
            u1, v1 = u, v
        else:
            assert np.allclose(u, u1) and np.allclose(v, -v1)


def test_lowrank_batched_equals_loop_and_float32_promoted():
    rng = np.random.default_rng(2)
    xs = np.stack([planted_lowrank(rng, 30)[0] for _ in range(6)]).reshape(2, 3, 30, 30)
    batched = np_lowrank.lowrank(xs.astype(np.float32), 2)
    assert all(a.dtype == np.float64 for a in batched)
    for i in range(2):
        for j in range(3):
            single = np_lowrank.lowrank(xs[i, j], 2)
            for b, s in zip(batched, single, strict=True):
                assert np.allclose(b[i, j], s, atol=1e-4)


def test_lowrank_zero_rank_deficient_and_nonfinite():
    rng = np.random.default_rng(3)
    x, _, _ = planted_lowrank(rng, 40, m=(2.0,))
    stack = np.stack([np.zeros((40, 40)), x, np.full((40, 40), np.nan)])
    m, u, v, expl, cum, sv = np_lowrank.lowrank(stack, 2)
    assert np.all(m[0] == 0) and np.isnan(u[0]).all() and np.isnan(expl[0]).all()
    # rank one: the second component is below the numerical rank
    assert m[1, 1] == 0 and np.isnan(u[1, 1]).all() and expl[1, 1] == 0
    assert np.isclose(expl[1, 0], 1.0)
    assert np.isnan(m[2]).all() and np.isnan(sv[2]).all()


def test_lowrank_returns_copies_not_views():
    x, _, _ = planted_lowrank(np.random.default_rng(4), 40)
    for out in np_lowrank.lowrank(x, 2):
        assert out.base is None or out.base.size == out.size


@pytest.mark.parametrize("rank", [0, 41])
def test_lowrank_bad_rank(rank):
    with pytest.raises(ValueError, match="rank"):
        np_lowrank.lowrank(np.eye(40), rank)


def test_shrinkage_recovers_planted_kappa_and_structure():
    rng = np.random.default_rng(5)
    n, g, kappa = 300, 1.2, 0.3
    j0 = g * rng.normal(size=(n, n)) / np.sqrt(n)
    lr, a, c = planted_lowrank(rng, n, m=(2.0,))
    dj = -kappa * j0 + lr
    k, m, u, v, *_ = np_lowrank.shrinkage(dj, j0, 1)
    # error of kappa = <lr, J0>/||J0||^2 = m a^T J0 c / (g^2 N): O(m / (g N^1.5))
    assert abs(k - kappa) < 10 * 2.0 / (g * n**1.5)
    assert np.isclose(m[0], 2.0, atol=1e-2)
    assert np.max(scipy.linalg.subspace_angles(u.T, a)) < 0.05


def test_shrinkage_ones_alignment_of_balance_change():
    rng = np.random.default_rng(6)
    n = 100
    j0 = rng.normal(size=(n, n)) / np.sqrt(n) - 2.0 / n
    dj = 2.0 / n * np.ones((n, n)) - 0.1 * j0  # balance removes -b 11^T/N, decay shrinks J0
    *_, ones_u, ones_v = np_lowrank.shrinkage(dj, j0, 2)
    assert ones_u[0] > 0.999 and ones_v[0] > 0.999
    assert ones_u[1] < 0.5


def test_shrinkage_broadcasts_j0_over_epochs_and_zero_j0():
    rng = np.random.default_rng(7)
    j0 = rng.normal(size=(1, 20, 20))
    dj = np.stack([-t * j0[0] for t in (0.1, 0.2, 0.3)])
    kappa = np_lowrank.shrinkage(dj, j0, 1)[0]
    assert np.allclose(kappa, [0.1, 0.2, 0.3])
    assert np.isnan(np_lowrank.shrinkage(dj[0], np.zeros((20, 20)), 1)[0])


def test_imposed_strength_closed_form():
    rng = np.random.default_rng(8)
    n, rho, dm = 50, 0.6, 0.7
    u = orthonormal(rng, n, 2)
    v = rho * u[:, 0] + np.sqrt(1 - rho**2) * u[:, 1]
    u = u[:, 0]
    j0 = rng.normal(size=(n, n)) / np.sqrt(n)
    j = j0 + dm * np.outer(u, v)
    # v^T (dm u v^T) u / v^T u = dm v^T u
    assert np.isclose(np_lowrank.imposed_strength(j, j0, u, v), dm * rho)


def test_abs_cos_and_task_vectors():
    rng = np.random.default_rng(9)
    n = 30
    b, w, j0 = rng.normal(size=(n, 2)), rng.normal(size=(n, 1)), rng.normal(size=(n, n))
    vec = np_alignment.task_vectors(np.concatenate([b, w], axis=1), 2, j0)
    expect = [b[:, 0], b[:, 1], w[:, 0], np.ones(n), j0 @ b[:, 0], j0 @ b[:, 1], j0.T @ w[:, 0]]
    assert np.allclose(vec, np.array(expect))
    x, y = rng.normal(size=n), rng.normal(size=n)
    cos = x @ y / np.linalg.norm(x) / np.linalg.norm(y)
    assert np.isclose(np_alignment.abs_cos(x, -y), abs(cos))
    au, av = np_alignment.alignment(np.stack([x, y]), np.stack([y, x]), vec[:2])
    assert au.shape == (2, 2) and np.isclose(au[1, 0], np_alignment.abs_cos(y, b[:, 0]))
    assert np.isclose(av[0, 1], np_alignment.abs_cos(y, b[:, 1]))


def test_kmeans_finds_planted_blobs_deterministically():
    rng = np.random.default_rng(10)
    truth = np.repeat([0, 1, 2], 40)
    centers = np.array([[4.0, 0, 0], [0, 4.0, 0], [0, 0, 4.0]])
    x = centers[truth] + rng.normal(size=(120, 3))
    perm = rng.permutation(120)
    labels = np_clusters.kmeans(x[perm], 3)
    again = np_clusters.kmeans(x[perm], 3)
    assert np.array_equal(labels, again)
    # same partition as the truth (up to renaming)
    pairs = set(zip(labels, truth[perm], strict=True))
    assert len(pairs) == 3
    # cluster 0 has the largest centroid in feature 0
    assert np.all(truth[perm][labels == 0] == 0)


def test_kmeans_bad_k():
    with pytest.raises(ValueError, match="k must be"):
        np_clusters.kmeans(np.zeros((5, 2)), 6)


def test_normalize_blocks_equalises_units():
    rng = np.random.default_rng(11)
    x = np.concatenate([1e3 * rng.normal(size=(50, 2)), 1e-3 * rng.normal(size=(50, 3))], axis=1)
    y = np_clusters.normalize_blocks(x, np.array([0, 0, 1, 1, 1]))
    assert np.isclose(np.mean(np.sum(y[:, :2] ** 2, axis=1)), 1)
    assert np.isclose(np.mean(np.sum(y[:, 2:] ** 2, axis=1)), 1)


def test_block_means_match_explicit_blocks():
    rng = np.random.default_rng(12)
    mat = rng.normal(size=(2, 12, 12))
    lab = rng.integers(0, 3, size=12)
    lab[:3] = [0, 1, 2]
    out = np_clusters.block_means(mat, lab, lab, 4)
    for a in range(3):
        for b in range(3):
            assert np.allclose(out[:, a, b], mat[:, lab == a][:, :, lab == b].mean(axis=(1, 2)))
    assert np.isnan(out[:, 3]).all()  # empty cluster 3


def test_seed_stats_known_sample_with_nan_and_complex():
    x = np.concatenate([np.arange(1.0, 102.0), [np.nan]])
    mean, sd, q05, q50, q95 = np_summaries.seed_stats(x)
    assert mean == 51 and q50 == 51 and np.isclose(q05, 6) and np.isclose(q95, 96)
    assert np.isclose(sd, np.sqrt(101 * 102 / 12))  # sample sd of 1..101
    z = np_summaries.seed_stats(np.arange(1.0, 102.0) - 1j * np.arange(1.0, 102.0))
    assert np.isclose(z[0], 51 - 51j) and np.isclose(z[1], sd + 1j * sd)
    assert np.isclose(z[2], 6 - 96j)  # part by part: q05 of Im is -96
