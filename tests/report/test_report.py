"""The analysis report: files written, offline HTML, summary numbers, and the page in a browser.

The archive and the analysis results are built here by hand, following docs/archive.md and the
analysis contract: J = J0 + dJ with J0 = g W - (b/N) 11^T and a planted rank-2 dJ, so the
numbers the report must show are known independently of the report code.
"""

from __future__ import annotations

import contextlib
import io
import re
from html.parser import HTMLParser

import numpy as np
import pytest
import xarray as xr

from rnnlab.analysis.report import build as report_module
from rnnlab.analysis.report import figures as plots
from rnnlab.analysis.report import headline as summary
from rnnlab.analysis.report import style as plot_style
from rnnlab.analysis.report.build import ReportError, write_report
from rnnlab.analysis.report.inputs import prepare
from rnnlab.errors import RnnlabError

SEEDS, EPOCHS, N = [0, 1, 2], [0, 20, 40, 60, 80, 100], 40
G, B_MEAN, MSE_OPT = [0.8, 0.85, 0.9], 1.0, 0.2
INPUTS, OUTPUTS = ["stim1", "stim2", "cue"], ["out1", "out2"]
PLOT_TITLES = [  # every plot the page must show (title prefixes)
    "Learning curve", "Example trial", "Spectrum of J", "Outlier trajectories", "Outliers of J vs",
    "Leading eigenvalue of the Jacobian", "Singular values of ΔJ", "Variance of ΔJ explained",
    "Alignment of u_1", "Alignment of v_1", "Block means of J,", "Block means of ΔJ",
    "Loss of J0 + ΔJ_R", "Outlier ladder", "Fixed points at input 0", "Fixed points at zero input",
]  # fmt: skip
TRIALS, TRUNC = 500, [0, 1, 2, N]  # fresh trials and truncation ranks of the in-loop results


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def make_archive(seed: int = 0) -> xr.Dataset:
    """Archive-shaped Dataset: 3 seeds, 6 epochs, N = 40, planted rank-2 dJ growing linearly."""
    rng = np.random.default_rng(seed)
    S, E, C = len(SEEDS), len(EPOCHS), EPOCHS[-1] + 1
    frac = np.asarray(EPOCHS, float) / EPOCHS[-1]
    Bm = rng.normal(size=(S, E, N, 3)) / np.sqrt(N)
    wm = rng.normal(size=(S, E, N, 2)) / np.sqrt(N)
    J0 = np.asarray(G)[:, None, None] * rng.normal(size=(S, N, N)) / np.sqrt(N) - B_MEAN / N
    dJ = np.empty((S, E, N, N))
    for s in range(S):
        u1 = _unit(wm[s, -1, :, 0] + 0.3 * rng.normal(size=N) / np.sqrt(N))
        v1 = _unit(u1 + 0.8 * _unit(Bm[s, -1, :, 0]))
        u2, v2 = _unit(rng.normal(size=N)), _unit(rng.normal(size=N))
        low = (1.6 + 0.1 * s) * np.outer(u1, v1) + 0.4 * np.outer(u2, v2)
        for e, f in enumerate(frac):
            dJ[s, e] = f * (low + 0.02 * rng.normal(size=(N, N)) / np.sqrt(N))
    ev = np.linalg.eigvals(J0[:, None] + dJ)
    ev = np.take_along_axis(ev, np.lexsort((-ev.imag, -ev.real), axis=-1), axis=-1)
    ep = np.arange(C, dtype=float)
    decay = np.exp(-ep / np.array([25.0, 30.0, 35.0])[:, None])
    mse_curve = MSE_OPT + 0.8 * decay * (1 + 0.05 * rng.normal(size=(S, C)))
    mse = mse_curve[:, EPOCHS] + 0.01 * rng.random((S, E))
    time = np.arange(100) * 0.01
    target = np.sin(2 * np.pi * (1.3 * time[None, None, :, None] + rng.random((S, 2, 1, 2))))
    traj = target[:, None] * np.array([0.2, 0.95])[None, :, None, None, None]
    ds = xr.Dataset(
        {
            "J0": (("seed", "neuron", "neuron_pre"), J0),
            "dJ": (("seed", "epoch", "neuron", "neuron_pre"), dJ),
            "B": (("seed", "epoch", "neuron", "input"), Bm),
            "w": (("seed", "epoch", "neuron", "output"), wm),
            "loss": (("seed", "epoch"), mse + 0.013),
            "mse": (("seed", "epoch"), mse),
            "loss_curve": (("seed", "curve_epoch"), mse_curve + 0.013),
            "mse_curve": (("seed", "curve_epoch"), mse_curve),
            "mse_optimal": ((), MSE_OPT),
            "eigvals": (("seed", "epoch", "eig"), ev),
            "eval_target": (("seed", "trial", "time", "output"), target),
            "traj_output": (("seed", "traj_epoch", "trial", "time", "output"), traj),
        },
        coords={
            "seed": SEEDS,
            "epoch": EPOCHS,
            "curve_epoch": np.arange(C),
            "traj_epoch": [0, EPOCHS[-1]],
            "input": INPUTS,
            "output": OUTPUTS,
            "time": ("time", time, {"units": "s"}),
            "g": ("seed", G),
            "b": ("seed", [B_MEAN] * 3),
        },  # fmt: skip
        attrs={"config": "[task]\nname = 'denoise'\n", "title": "hand-built test archive"},
    )
    for name in ds.data_vars:
        ds[name].attrs.update(long_name=name, units="1")
    return ds


def _svd(mat, rank):
    U, sv, Vt = np.linalg.svd(mat)
    u, v = np.moveaxis(U[..., :rank], -1, -2), Vt[..., :rank, :]
    sign = np.where(u.sum(-1) < 0, -1.0, 1.0)[..., None]  # sign rule: sum(u_r) >= 0
    total = np.maximum((sv**2).sum(-1, keepdims=True), 1e-300)
    return sv[..., :rank], u * sign, v * sign, sv[..., :rank] ** 2 / total, sv


def make_results(ds: xr.Dataset, rank: int = 2) -> xr.Dataset:
    """Analysis results for `ds` following the contract (names, dims, complex outliers)."""
    dJ, J0 = ds.dJ.values, ds.J0.values
    J = J0[:, None] + dJ
    S, E = dJ.shape[:2]
    m, u, v, expl, sv = _svd(dJ, rank)
    kappa = -np.einsum("seij,sij->se", dJ, J0) / np.einsum("sij,sij->s", J0, J0)[:, None]
    vecs = [ds.B.values[..., i] for i in range(3)] + [ds.w.values[..., i] for i in range(2)]
    vecs.append(np.ones_like(vecs[0]))
    vec = np.stack([_unit(x) for x in vecs], -2)
    labels = [f"B:{n}" for n in INPUTS] + [f"w:{n}" for n in OUTPUTS] + ["ones"]
    g, ev = np.asarray(G), ds.eigvals.values
    out, mf = np.full((S, E, 2), np.nan + 0j), np.full((S, E, 2), np.nan + 0j)
    for s in range(S):
        for e in range(E):
            o = ev[s, e][np.abs(ev[s, e]) > 1.1 * g[s]]
            o = o[np.argsort(-o.real)][:2]
            out[s, e, : len(o)] = o
            lam = np.linalg.eigvals(np.diag(m[s, e]) @ v[s, e] @ u[s, e].T)
            lam = lam[np.abs(lam) > g[s]][:2]
            mf[s, e, : len(lam)] = lam
    max_re_jac = ev.real.max(-1) - 1.0
    clus = (u[:, -1, 0] < 0).astype(int)
    onehot = np.eye(2)[clus]  # (seed, neuron, cluster)
    count = onehot.sum(1)

    def block(M):
        total = np.einsum("sia,seij,sjb->seab", onehot, M, onehot)
        return total / (count[:, None, :, None] * count[:, None, None, :])

    R = ("seed", "epoch", "rank")
    res = xr.Dataset(
        {
            "m": (R, m),
            "u": (R + ("neuron",), u),
            "v": (R + ("neuron_pre",), v),
            "explained": (R, expl),
            "explained_cum": (R, np.cumsum(expl, -1)),
            "sv": (("seed", "epoch", "sv"), sv),
            "kappa": (("seed", "epoch"), kappa),
            "align_u": (R + ("vector",), np.abs(np.einsum("serk,sevk->serv", u, vec))),
            "align_v": (R + ("vector",), np.abs(np.einsum("serk,sevk->serv", v, vec))),
            "outlier": (("seed", "epoch", "outlier"), out),
            "outlier_meanfield": (("seed", "epoch", "outlier"), mf),
            "outlier_exact": (("seed", "epoch", "outlier"), out + 0.01),
            "n_outliers": (("seed", "epoch"), np.isfinite(out.real).sum(-1)),
            "max_re_jac": (("seed", "epoch"), max_re_jac),
            "crossing_epoch": (("seed",), [np.nan, 63.0, 84.5]),
            "bulk_radius": (("seed",), g),
            "cluster": (("seed", "neuron"), clus),
            "block_J": (("seed", "epoch", "cluster", "cluster_pre"), block(J)),
            "block_dJ": (("seed", "epoch", "cluster", "cluster_pre"), block(dJ)),
        },  # fmt: skip
        coords={"seed": SEEDS, "epoch": EPOCHS, "rank": np.arange(1, rank + 1), "vector": labels},
    )
    return res.merge(inloop_results(ds, res))


def inloop_results(ds: xr.Dataset, res: xr.Dataset) -> xr.Dataset:
    """Hand-made results of the in-loop analyses (evaluate, functional_rank, shuffle_control,
    outlier_ladder, fixed_points, lambda_task) for the report: known numbers, by contract."""
    S, E, last = len(SEEDS), len(EPOCHS), EPOCHS[-1]
    mse = MSE_OPT * np.array([1.0, 1.01, 1.2])  # seed 0 at the optimum, seed 2 20% above
    se = MSE_OPT * np.array([0.008, 0.009, 0.01])
    loss = np.array([[0.9, 0.25, 0.205, 0.2], [0.8, 0.5, 0.3, 0.21], [0.7, 0.3, 0.26, 0.25]])
    ladder_rank = [0, 1, 2, 3, N]
    measured = res["outlier"].values[:, -1]  # (seed, outlier)
    exact = np.repeat(measured[:, None], len(ladder_rank), 1) + 0.5  # far below R = 2, then on
    exact[:, 2:] = measured[:, None]
    fp_u1 = np.full((S, E, 1, 3), np.nan)
    fp_u1[:, :, 0, 0] = 0.0  # the origin
    fp_u1[2, -2:, 0, :] = [-0.4, 0.0, 0.4]  # seed 2: a pitchfork at the last two epochs
    stable = np.where(np.isfinite(fp_u1), 1.0, np.nan)
    stable[2, -2:, 0, 1] = 0.0
    n_fp = np.isfinite(fp_u1).sum(-1).astype(float)
    n_st = np.nansum(stable, -1)
    coords = {"eval_epoch": [last], "trunc_rank": TRUNC, "ladder_rank": ladder_rank,
              "control": ["trained", "shuffled J0", "J0 only"], "u_const": [0.0]}  # fmt: skip
    attrs = {"n_trials": TRIALS, "units": "1"}
    return xr.Dataset(
        {
            "mse": (("seed", "eval_epoch"), mse[:, None], attrs),
            "mse_se": (("seed", "eval_epoch"), se[:, None], attrs),
            "excess": (("seed", "eval_epoch"), mse[:, None] - MSE_OPT, attrs),
            "mse_optimal": (("seed",), np.full(S, MSE_OPT)),
            "loss": (("seed", "eval_epoch", "trunc_rank"), loss[:, None]),
            "loss_se": (("seed", "eval_epoch", "trunc_rank"), 0.002 + 0 * loss[:, None]),
            "functional_rank": (("seed", "eval_epoch"), [[2.0], [40.0], [2.0]]),
            "shuffle_lost": (("seed", "eval_epoch"), [[0.1], [0.9], [0.6]]),
            "lambda_task": (("seed",), [np.nan, np.nan, np.nan]),
            "ladder_measured": (("seed", "eval_epoch", "outlier"), measured[:, None]),
            "ladder_exact": (("seed", "eval_epoch", "ladder_rank", "outlier"), exact[:, None]),
            "ladder_meanfield": (
                ("seed", "eval_epoch", "ladder_rank", "outlier"),
                exact[:, None] + 1,
            ),
            "ladder_from_rank": (
                ("seed", "eval_epoch", "outlier"),
                np.where(np.isfinite(measured), 2.0, np.nan)[:, None],
            ),
            "ladder_from_rank_meanfield": (
                ("seed", "eval_epoch", "outlier"),
                np.full(measured.shape, np.nan)[:, None],
            ),
            "ladder_tol": (
                ("seed", "eval_epoch", "outlier"),
                np.full(measured.shape, 0.1)[:, None],
            ),
            "fp_u1": (("seed", "epoch", "u_const", "fp"), fp_u1),
            "fp_stable": (("seed", "epoch", "u_const", "fp"), stable),
            "n_fixed_points": (("seed", "epoch", "u_const"), n_fp),
            "n_stable": (("seed", "epoch", "u_const"), n_st),
            "n_unstable": (("seed", "epoch", "u_const"), n_fp - n_st),
        },  # fmt: skip
        coords=coords,
    )


@pytest.fixture(scope="module")
def data():
    archive = make_archive()
    return archive, make_results(archive)


@pytest.fixture(scope="module")
def report(data, tmp_path_factory):
    """The report of `data` (quiet; what it printed to stderr is kept for the quiet test)."""
    archive, results = data
    outdir = tmp_path_factory.mktemp("report")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        written = write_report(archive, results, outdir, quiet=True)
    return outdir, written, err.getvalue()


def md_table(text: str, heading: str) -> tuple[list[str], dict[str, list[str]]]:
    """Header and rows (keyed by first cell) of the markdown table under `## heading`."""
    block = text.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    lines = [ln for ln in block.splitlines() if ln.startswith("|") and "---" not in ln]
    cells = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines]
    return cells[0], {row[0]: row for row in cells[1:]}


def cell(header, rows, key, column) -> str:
    return rows[key][header.index(column)]


def close(text: str, value: float, rel: float = 6e-4) -> bool:
    """`text` (a 4-significant-digit number) represents `value`."""
    return abs(float(text) - value) <= rel * abs(value) + 1e-12


# --- pure helpers against closed forms ---------------------------------------------------------


@pytest.mark.parametrize(
    ("sv", "frac", "expected"),
    [
        ([3.0, 1.0, 1.0, 1.0], 0.9, 3),  # energies 9,1,1,1: cumulative 0.75, 0.83, 0.92
        ([3.0, 1.0, 1.0, 1.0], 0.75, 1),  # exactly 75% in the first value
        ([np.sqrt(0.9), np.sqrt(0.1)], 0.9, 1),  # boundary: 90% exactly
        ([1.0, 1.0, 1.0, 1.0, 1.0], 0.9, 5),  # flat spectrum: needs k/5 >= 0.9
        ([2.0, 0.0, 0.0], 0.999, 1),  # exactly rank 1
    ],
)
def test_rank_needed_matches_closed_form(sv, frac, expected):
    da = xr.DataArray(np.asarray(sv), dims="sv")
    assert int(summary.rank_needed(da, frac)) == expected


def test_rank_needed_nan_for_zero_matrix_and_bad_frac():
    assert np.isnan(float(summary.rank_needed(xr.DataArray(np.zeros(4), dims="sv"))))
    with pytest.raises(ValueError, match="frac"):
        summary.rank_needed(xr.DataArray(np.ones(3), dims="sv"), 1.5)


def test_fmt_across_is_mean_and_sample_sd():
    vals = np.array([1.0, 2.0, 4.0, np.nan])
    assert summary.fmt_across(vals).endswith(" (n = 3)")  # 3 of the 4 have a value
    assert "(n =" not in summary.fmt_across(vals[:3])
    mean, sd = fmt_parts(summary.fmt_across(vals))
    assert mean == pytest.approx(7 / 3, rel=1e-3)
    assert sd == pytest.approx(
        np.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2), rel=1e-2
    )
    assert summary.fmt_across(np.array([np.nan])) == summary.MISSING


def fmt_parts(text: str) -> tuple[float, float]:
    mean, sd = text.split("(n =")[0].split("±")
    return float(mean), float(sd)


def test_square_limits_equal_span_and_contain_everything():
    rng = np.random.default_rng(3)
    z = rng.normal(size=50) * 0.3 + 1j * rng.normal(size=50) * 2.0
    (x0, x1), (y0, y1) = plot_style.square_limits(z, radius=0.9)
    assert x1 - x0 == pytest.approx(y1 - y0)
    assert x0 < min(z.real.min(), -0.9) and x1 > max(z.real.max(), 1.0)
    assert y0 < min(z.imag.min(), -0.9) and y1 > max(z.imag.max(), 0.9)


def test_frame_epochs_keep_first_last_and_cap_frames():
    ep = np.arange(0, 500, 5)
    fr = plots.frame_epochs(ep, 12)
    assert len(fr) == 12 and fr[0] == 0 and fr[-1] == 495 and np.all(np.diff(fr) > 0)
    assert list(plots.frame_epochs([0, 10, 20], 12)) == [0, 10, 20]


# --- the written report -------------------------------------------------------------------------


def test_writes_every_file(report):
    outdir, written, _ = report
    expected = {"report.html", "summary.md", "figures/learning_curve.png", "figures/spectrum.png",
                "figures/outlier_re.png"}  # fmt: skip
    assert set(written) == expected
    for rel, path in written.items():
        assert path == outdir / rel and path.stat().st_size > 1000


def test_pngs_are_real_figures(report):
    from PIL import Image

    for rel, path in report[1].items():
        if rel.endswith(".png"):
            img = np.asarray(Image.open(path).convert("L"), float)
            assert img.shape[0] > 300 and img.shape[1] > 400, rel
            assert (img < 100).mean() > 0.002, f"{rel} has almost no dark (ink) pixels"


class _Resources(HTMLParser):
    """Collects the URLs of <script src>, <link href>, <img src> and <iframe src> tags."""

    def __init__(self):
        super().__init__()
        self.urls, self.inline_scripts = [], 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        url = {"script": a.get("src"), "link": a.get("href"), "img": a.get("src"),
               "iframe": a.get("src")}.get(tag)  # fmt: skip
        if url:
            self.urls.append(url)
        elif tag == "script":
            self.inline_scripts += 1


def test_html_is_self_contained(report):
    text = (report[0] / "report.html").read_text(encoding="utf-8")
    parser = _Resources()
    parser.feed(text)
    assert parser.urls == [], f"external resources: {parser.urls}"
    assert parser.inline_scripts >= 2
    assert "/* BEGIN bokeh.min.js */" in text  # BokehJS itself is inlined
    assert not re.search(r"<(script|link)[^>]+(src|href)=[\"']?(https?:)?//", text)


def test_html_headline_table_has_input_numbers(data, report):
    _, results = data
    text = (report[0] / "report.html").read_text(encoding="utf-8")
    table = text.split('<table class="headline">', 1)[1].split("</table>", 1)[0]
    for s in range(len(SEEDS)):
        assert summary.fmt(float(results.mse.isel(seed=s, eval_epoch=-1))) in table
    assert summary.ACROSS_LABEL in table


def test_summary_per_seed_rows_match_inputs(data, report):
    archive, results = data
    text = (report[0] / "summary.md").read_text(encoding="utf-8")
    header, rows = md_table(text, "Headline numbers per seed")
    assert set(rows) == {str(s) for s in SEEDS} | {summary.ACROSS_LABEL}
    last = results.isel(epoch=-1)
    fresh = f"MSE ± SE ({TRIALS} fresh trials)"
    assert "final loss" not in header and "final MSE" not in header  # 3 eval trials: not shown
    for i, s in enumerate(SEEDS):
        k = str(s)
        mse, se = fmt_parts(cell(header, rows, k, fresh))
        assert close(str(mse), float(results.mse[i, -1])) and se == pytest.approx(
            float(results.mse_se[i, -1]), rel=0.05
        )
        pct, pct_se = fmt_parts(cell(header, rows, k, "excess over MSE* (%) ± SE"))
        assert pct == pytest.approx(100 * float(results.excess[i, -1]) / MSE_OPT, abs=0.051)
        assert pct_se == pytest.approx(100 * float(results.mse_se[i, -1]) / MSE_OPT, abs=0.051)
        assert cell(header, rows, k, "functional rank") == str(int(results.functional_rank[i, -1]))
        assert cell(header, rows, k, "J0 + ΔJ_R reproduces λ_out from R") == "2"
        assert close(cell(header, rows, k, "g"), G[i])
        # planted m_r are the singular values of dJ at the last epoch: check against numpy's SVD
        sv = np.linalg.svd(archive.dJ.values[i, -1], compute_uv=False)
        assert close(cell(header, rows, k, "m_1"), sv[0])
        assert close(cell(header, rows, k, "m_2"), sv[1])
        frac = np.cumsum(sv**2) / np.sum(sv**2)
        assert int(cell(header, rows, k, "R for 90% of ‖ΔJ‖²")) == np.argmax(frac >= 0.9) + 1
        assert int(cell(header, rows, k, "outliers at the end")) == int(last.n_outliers[i])
        first = int(results.n_outliers.isel(seed=i, epoch=0))
        assert int(cell(header, rows, k, "outliers at epoch 0")) == first
        lead = np.nanmax(last.outlier.values[i].real)
        assert close(cell(header, rows, k, "Re λ_out measured"), lead)
        assert close(cell(header, rows, k, "Re λ_out exact (rank-2 fit)"), lead + 0.01)
        # crossing epoch (Jacobian at origin): max Re λ(J) crossing 1, interpolated, by hand
        top = archive.eigvals.values[i].real.max(axis=-1)
        up = [e for e in range(len(EPOCHS) - 1) if top[e] < 1 <= top[e + 1]]
        origin = cell(header, rows, k, "crossing epoch (Jacobian at origin)")
        if up:
            e = up[0]
            want = EPOCHS[e] + (1 - top[e]) / (top[e + 1] - top[e]) * (EPOCHS[e + 1] - EPOCHS[e])
            assert close(origin, want)
        else:
            assert origin == summary.MISSING
    mean_state = "crossing epoch (Jacobian at mean state)"
    assert cell(header, rows, "0", mean_state) == summary.MISSING
    assert close(cell(header, rows, "2", mean_state), 84.5)
    assert f"MSE* = {MSE_OPT:.4g}" in text


def test_summary_across_seed_row_is_mean_and_sd(data, report):
    archive, results = data
    text = (report[0] / "summary.md").read_text(encoding="utf-8")
    header, rows = md_table(text, "Headline numbers per seed")
    for column, values in [
        (f"MSE ± SE ({TRIALS} fresh trials)", results.mse.values[:, -1]),
        ("m_1", results.m.values[:, -1, 0]),
        ("κ (shrinkage)", results.kappa.values[:, -1]),
    ]:
        mean, sd = fmt_parts(cell(header, rows, summary.ACROSS_LABEL, column))
        assert mean == pytest.approx(values.mean(), rel=1e-3), column
        assert sd == pytest.approx(values.std(ddof=1), rel=2e-2), column
    # crossing epoch: NaN of seed 0 ignored
    across = cell(header, rows, summary.ACROSS_LABEL, "crossing epoch (Jacobian at mean state)")
    assert across.endswith("(n = 2)")  # 2 of the 3 seeds crossed: the mean says so
    mean, _ = fmt_parts(across)
    assert mean == pytest.approx((63.0 + 84.5) / 2, rel=1e-3)


def test_summary_alignment_tables(data, report):
    _, results = data
    text = (report[0] / "summary.md").read_text(encoding="utf-8")
    for which in ("u", "v"):
        header, rows = md_table(text, f"Alignment |cos| of {which}_1 with the task vectors")
        assert header[1:] == list(results.vector.values)
        for i, s in enumerate(SEEDS):
            for vec in ("w:out1", "B:stim1", "ones"):
                want = float(
                    results[f"align_{which}"].isel(seed=i, epoch=-1, rank=0).sel(vector=vec)
                )
                assert close(cell(header, rows, str(s), vec), want), (which, s, vec)


def skip_page(monkeypatch) -> None:
    """write_report without drawing figures or the page (slow; not under test there)."""
    monkeypatch.setattr(report_module, "render_group", lambda *args, **kw: ([], {}))
    monkeypatch.setattr(report_module, "assemble", lambda *args, **kw: "<html></html>")


def test_quiet_and_progress_output(data, report, tmp_path, capsys, monkeypatch):
    archive, results = data
    assert report[2] == ""  # the fixture's quiet=True run printed nothing
    # only the printing is under test here: skip the (slow) page rendering
    skip_page(monkeypatch)
    written = write_report(archive, results, tmp_path / "v", png=False)
    assert set(written) == {"report.html", "summary.md"}
    assert str(tmp_path / "v") in capsys.readouterr().err


# --- inputs -------------------------------------------------------------------------------------


def _to_ri(ds: xr.Dataset) -> xr.Dataset:
    """Complex variables (data or coordinates) as float with a trailing `ri` dim, as on disk."""
    out = ds.copy()
    for name in [n for n, v in ds.variables.items() if np.iscomplexobj(v)]:
        da = ds[name]
        out[name] = xr.concat([da.real, da.imag], dim="ri").transpose(..., "ri")
    return out


def test_ri_and_lazy_inputs_give_the_same_numbers(data):
    archive, results = data
    ref = summary.markdown(summary.headline(*prepare(archive, results)))
    as_coord = results.set_coords(["outlier", "sv"])  # as analyze() returns them
    assert summary.markdown(summary.headline(*prepare(archive, as_coord))) == ref
    ri = summary.markdown(summary.headline(*prepare(_to_ri(archive), _to_ri(as_coord))))
    lazy_in = archive.chunk({"seed": 1}), results.chunk({"seed": 1})
    lazy = summary.markdown(summary.headline(*prepare(*lazy_in)))
    assert ri == ref and lazy == ref


def test_bad_input_raises_one_clear_error(data, tmp_path):
    archive, results = data
    with pytest.raises(ReportError, match="archive lacks variable.*eigvals"):
        write_report(archive.drop_vars("eigvals"), results, tmp_path)
    with pytest.raises(ValueError, match="results lacks variable.*outlier_exact"):
        write_report(archive, results.drop_vars("outlier_exact"), tmp_path)
    with pytest.raises(ReportError, match="seed.*7.*archive lacks"):
        write_report(archive, results.assign_coords(seed=[0, 1, 7]), tmp_path)
    with pytest.raises(ReportError, match="must be an xarray.Dataset"):
        write_report(archive.loss, results, tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ReportError, match="not a directory"):
        write_report(archive, results, tmp_path / "file")


def _two_runs(ds: xr.Dataset, shift: float) -> xr.Dataset:
    """`ds` twice along seed as runs r1 and r2 (r2's losses shifted), `seed` without an index."""
    runs = [ds.assign_coords(run=("seed", [name] * ds.sizes["seed"])) for name in ("r1", "r2")]
    if shift:
        runs[1] = runs[1].assign(loss=runs[1]["loss"] + shift)
    return xr.concat(runs, dim="seed", data_vars="minimal").drop_indexes("seed")


def test_report_of_runs_sharing_seeds(data, tmp_path, monkeypatch):
    """Seeds 0, 1, 2 of two runs: positional selection, rows and legends named by run and seed."""
    archive, results = data
    plain = results.drop_vars(list(inloop_results(archive, results).variables), errors="ignore")
    arch2, res2 = _two_runs(archive, 1.0), _two_runs(plain, 0.0)  # no fresh trials: eval loss
    res2 = res2.isel(seed=[3, 4, 5, 0, 1, 2])  # results in another order than the archive
    skip_page(monkeypatch)
    written = write_report(arch2, res2, tmp_path, png=False, quiet=True)
    text = written["summary.md"].read_text(encoding="utf-8")
    assert "Seeds: 6 from 2 runs." in text
    block = text.split("## Headline numbers per seed", 1)[1].split("\n## ", 1)[0]
    lines = [ln for ln in block.splitlines() if ln.startswith("|") and "---" not in ln]
    cells = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines]
    header, rows = cells[0], {(r[0], r[1]): r for r in cells[1:-1]}
    assert header[:2] == ["run", "seed"] and len(rows) == 6 and cells[-1][0] == summary.ACROSS_LABEL
    col = header.index("final loss (eval trials)")
    for i, s in enumerate(SEEDS):
        loss = float(archive.loss.isel(seed=i, epoch=-1))
        assert close(rows[("r1", str(s))][col], loss) and close(rows[("r2", str(s))][col], loss + 1)
    arch, res = prepare(arch2, res2)
    assert list(arch.run.values) == list(res.run.values) == ["r2"] * 3 + ["r1"] * 3
    assert plots.jacobian_re(res).get(0).label == "r2 seed 0"
    title = plots.spectrum(arch, res).last.opts.get().kwargs["title"]
    assert title.startswith("Spectrum of J, r2 seed 0, epoch")
    with pytest.raises(RnnlabError, match="occurs 2 times"):
        plots.block_heatmap(res, seed=0)
    # an archive that holds one (run, seed) twice cannot be matched to reordered results
    doubled = xr.concat([arch2, arch2.isel(seed=[0])], dim="seed", data_vars="minimal")
    with pytest.raises(ReportError, match="r1 seed 0 more than once"):
        prepare(doubled, res2)


# --- the page in a real browser ------------------------------------------------------------------


@pytest.mark.slow
def test_page_renders_offline_in_chromium(report, tmp_path):
    from browser import chromium_available, inspect_page

    if not chromium_available():
        pytest.skip("needs /usr/bin/chromium and the playwright package (CI installs both)")
    check = inspect_page(
        report[0] / "report.html", screenshot=tmp_path / "report.png", select="seed 2"
    )
    assert check.blocked == [], f"page tried the network: {check.blocked}"
    assert check.console_errors == [] and check.page_errors == []
    titles = [p["title"] for p in check.plots]
    for prefix in PLOT_TITLES:
        found = [p for p in check.plots if p["title"].startswith(prefix)]
        assert len(found) == 1, f"{prefix!r} not rendered once; plots: {titles}"
        assert found[0]["points"] > 0 and found[0]["ink"] > 100, found[0]
    assert len(check.plots) == len(PLOT_TITLES)
    # moving the epoch slider to the left end shows the first epoch, without errors
    assert check.slider_moved
    spectrum = [p for p in check.plots_after_slider if p["title"].startswith("Spectrum of J")]
    assert spectrum[0]["title"].endswith(f"epoch {EPOCHS[0]}") and spectrum[0]["ink"] > 100
    # the seed selectors (spectrum, two heatmaps) offer every seed; picking one shows it
    assert check.selects == [[f"seed {s}" for s in SEEDS]] * 3
    spectrum = [p for p in check.plots_after_select if p["title"].startswith("Spectrum of J")]
    assert spectrum[0]["title"] == f"Spectrum of J, seed 2, epoch {EPOCHS[0]}"
    assert spectrum[0]["ink"] > 100
    assert check.console_errors == [] and check.page_errors == [] and check.blocked == []
    assert (tmp_path / "report.png").stat().st_size > 10_000


@pytest.mark.slow
def test_end_to_end_tiny_run(tiny_archive, tmp_path):
    """A real tiny run -> analyze -> write_report: the page renders offline, numbers match."""
    import rnnlab
    from rnnlab.analysis import analyze, compute

    archive = rnnlab.open_archive([tiny_archive])
    opts = {"n_trials": 50, "ranks": (1, 2), "ladder_ranks": (1, 2)}
    results = compute(analyze(archive, network=opts), progress=False)
    written = write_report(archive, results, tmp_path, png=False, quiet=True)
    text = written["summary.md"].read_text(encoding="utf-8")
    header, rows = md_table(text, "Headline numbers per seed")
    mse = results["mse"].isel(eval_epoch=-1).values
    for i, s in enumerate(archive["seed"].values):
        got, _ = fmt_parts(cell(header, rows, str(s), "MSE ± SE (50 fresh trials)"))
        assert close(str(got), float(mse[i]))
    assert "## Verdict (n = 2 seeds)" in text
    from browser import chromium_available, inspect_page

    if not chromium_available():
        pytest.skip("needs /usr/bin/chromium and the playwright package (CI installs both)")
    check = inspect_page(written["report.html"])
    assert check.blocked == [] and check.console_errors == [] and check.page_errors == []
    assert len(check.plots) == len(PLOT_TITLES)
    assert all(p["ink"] > 100 for p in check.plots), check.plots
