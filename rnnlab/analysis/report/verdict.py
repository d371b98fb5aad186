"""The verdict block at the top of report.html and summary.md: per run, short answers to the
questions rnnlab exists for, each with the numbers behind it and the number of seeds.

Did the network learn the task (fresh-trial MSE ± SE against the optimum)? Did ΔJ become
low-rank (functional rank, R for 90% of ‖ΔJ‖²)? Did outliers leave the bulk (count at epoch 0
and at the end)? Did Re λ_out cross 1, and when? Which prediction matches the measured outlier,
and from which rank (the outlier ladder)? Does ΔJ need its own J0 (shuffle control)? What fixed
points do the dynamics have? And, where linear theory gives one, the task's own eigenvalue.
"""

from __future__ import annotations

import html

import numpy as np
import xarray as xr

from rnnlab.analysis.report.headline import fmt
from rnnlab.analysis.report.inloop_summary import zero_input
from rnnlab.data.members import member_names, member_runs

__all__ = ["LOW_RANK", "verdict", "markdown", "html_block"]

LOW_RANK = 5  # "low-rank" when the median rank needed is at most this


def _finite(x) -> np.ndarray:
    x = np.asarray(x, float)
    return x[np.isfinite(x)]


def _span(x, digits: str = ".3g") -> str:
    """'a' or 'a–b' over the finite values (range across seeds)."""
    v = _finite(x)
    if v.size == 0:
        return "–"
    lo, hi = v.min(), v.max()
    if np.isclose(lo, hi, rtol=1e-3, atol=1e-12):
        return format(lo, digits)
    return f"{lo:{digits}}–{hi:{digits}}"


def _ints(x) -> str:
    v = _finite(x)
    if v.size == 0:
        return "–"
    lo, hi = int(v.min()), int(v.max())
    return str(lo) if lo == hi else f"{lo}–{hi}"


def _per_seed(names: list[str], values, fmt_one) -> str:
    return ", ".join(f"{fmt_one(v)} ({n})" for n, v in zip(names, values, strict=True))


def _cx(z: complex) -> str:
    if not np.isfinite(z):
        return "–"
    if abs(z.imag) < 1e-9:
        return f"{z.real:.3g}"
    return f"{z.real:.3g} {'+' if z.imag >= 0 else '−'} {abs(z.imag):.3g}i"


def _learned(h: xr.Dataset, names: list[str]) -> str:
    opt = h.attrs["mse_optimal"]
    mse, se = h["mse_fresh"].values, h["mse_fresh_se"].values
    if not np.isfinite(mse).any():
        fixed = h["final_mse"].values
        few = h.attrs.get("n_eval_trials", "few")
        return (
            f"final MSE {_span(fixed, '.4g')} on the archive's {few}"
            f" fixed evaluation trials (MSE* = {fmt(opt)}); so few trials scatter by tens of %: "
            "run the analysis with the network analyses (no --no-network) for fresh-trial MSE ± SE."
        )
    trials = h.attrs.get("n_trials", "?")
    text = f"MSE on {trials} fresh trials per seed {_span(mse, '.4g')} against MSE* = {fmt(opt)}"
    if not (np.isfinite(opt) and opt > 0):
        return text + "."
    z = (mse - opt) / se
    rel = 100 * (mse - opt) / opt
    rel_se = 100 * se / opt
    text += "; excess " + _per_seed(
        names, zip(rel, rel_se, strict=True), lambda p: f"{p[0]:+.1f}% ± {p[1]:.1f}%"
    )
    within = int(np.sum(np.abs(z) <= 2))
    text += f". {within} of {len(mse)} within 2 SE of the optimum"
    above = [n for n, zz in zip(names, z, strict=True) if zz > 2]
    below = [n for n, zz in zip(names, z, strict=True) if zz < -2]
    if above:
        text += f"; above it by more than 2 SE: {', '.join(above)}"
    if below:
        text += (
            f"; BELOW it by more than 2 SE: {', '.join(below)} (the optimum is the steady-state"
            " Kalman filter's, from the task config: check the config the network was trained on)"
        )
    return text + "."


def _low_rank(h: xr.Dataset) -> str:
    fr, r90 = h["functional_rank"].values, h["rank90"].values
    parts = []
    med_fr = np.median(_finite(fr)) if _finite(fr).size else np.nan
    med_90 = np.median(_finite(r90)) if _finite(r90).size else np.nan
    if np.isfinite(med_fr):
        word = "yes" if med_fr <= LOW_RANK else "no"
        parts.append(
            f"functionally {word}: J0 + ΔJ_R keeps all but 5% of the gain of learning from "
            f"R = {_ints(fr)} on (functional rank, median {med_fr:g})"
        )
    if np.isfinite(med_90):
        word = "yes" if med_90 <= LOW_RANK else "no"
        parts.append(f"by variance {word}: 90% of ‖ΔJ‖²_F needs R = {_ints(r90)}")
    if not parts:
        return "–"
    text = "; ".join(parts)
    if np.isfinite(med_fr) and np.isfinite(med_90) and med_fr < med_90:
        text += ". The SVD rank of ΔJ overstates the rank of what does the work"
    return text + "."


def _outliers(h: xr.Dataset, res: xr.Dataset) -> str:
    n0, n1 = h["n_outliers0"].values, h["n_outliers"].values
    edge = _span(res["bulk_radius"].values)
    word = "yes" if np.nanmean(n1) > np.nanmean(n0) else "no more than at the start"
    return (
        f"{word}: eigenvalues of J outside the bulk edge g (1 + 2/√N) = {edge}: {_ints(n0)} at "
        f"epoch 0, {_ints(n1)} at epoch {h.attrs['last_epoch']} (mean {np.nanmean(n1):.3g})."
    )


def _crossing(h: xr.Dataset, names: list[str]) -> str:
    up, down = h["crossing_origin"].values, h["recross_origin"].values
    crossed = np.isfinite(up)
    n = len(up)
    if not crossed.any():
        text = f"no: max Re λ(J) stayed below 1 in all {n} seeds"
    else:
        text = f"in {int(crossed.sum())} of {n} seeds, at crossing epoch (Jacobian at origin) "
        text += ", ".join(
            f"{u:.3g} ({nm})" for nm, u, c in zip(names, up, crossed, strict=True) if c
        )
        back = [
            (nm, d) for nm, d, u in zip(names, down, up, strict=True) if np.isfinite(d) and d > u
        ]
        if back:
            text += "; back below 1 at epoch " + ", ".join(f"{d:.3g} ({nm})" for nm, d in back)
    last = h["max_re_last"].values
    text += f". At epoch {h.attrs['last_epoch']} max Re λ(J) = {_span(last)}"
    above = int(np.sum(last >= 1))
    text += f" ({above} of {n} at or above 1)" if above else " (below 1 in all seeds)"
    mean_state = _finite(h["crossing_mean"].values)
    if mean_state.size:
        text += f". Crossing epoch (Jacobian at mean state): {_span(mean_state)}" + (
            f" (n = {mean_state.size})" if mean_state.size < n else ""
        )
    return text + "."


def _prediction(h: xr.Dataset, res: xr.Dataset, names: list[str]) -> str:
    last = res.isel(epoch=-1)
    rank = h.attrs.get("fit_rank", 2)
    measured = last["outlier"].values
    lead = []
    for i in range(measured.shape[0]):
        re = np.real(measured[i])
        lead.append(measured[i][np.nanargmax(np.where(np.isfinite(re), re, -np.inf))]
                    if np.isfinite(re).any() else complex(np.nan, np.nan))  # fmt: skip
    lead = np.array(lead)
    if not np.isfinite(lead).any():
        return "no outlier at the last epoch."
    text = "leading outlier " + _per_seed(names, lead, _cx)
    tol = h["ladder_tol"].values
    for key, label in (("outlier_exact", "exact"), ("outlier_meanfield", "mean field")):
        pred = last[key].values
        miss = np.array(
            [
                np.nanmin(np.abs(pred[i] - lead[i])) if np.isfinite(pred[i]).any() else np.nan
                for i in range(len(lead))
            ]  # fmt: skip
        )
        hit = np.isfinite(miss) & (miss <= np.where(np.isfinite(tol), tol, 0.0))
        if np.isfinite(miss).any():
            verdict = (
                f"within the spread in {int(hit.sum())} of {len(lead)} seeds"
                if hit.any()
                else "misses it in every seed"
            )
            text += f". {label.capitalize()} (rank-{rank} fit): {verdict} (off by {_span(miss)})"
        else:
            text += f". {label.capitalize()} (rank-{rank} fit): predicts no outlier there"
    ladder, ladder_mf = h["ladder_from"].values, h["ladder_from_mf"].values
    if np.isfinite(tol).any():
        text += (
            f". Ladder: J0 + ΔJ_R reproduces it within its finite-N spread (±{_span(tol, '.2g')})"
            f" from R = "
            + _per_seed(names, ladder, lambda r: "never" if not np.isfinite(r) else f"{r:g}")
        )
        if np.isfinite(ladder_mf).any():
            text += "; ΔJ_R alone (mean field) from R = " + _per_seed(
                names, ladder_mf, lambda r: "never" if not np.isfinite(r) else f"{r:g}"
            )
        else:
            text += "; ΔJ_R alone (mean field) at no R: the outlier needs J0"
    return text + "."


def _shuffle(h: xr.Dataset) -> str:
    lost = h["shuffle_lost"].values
    v = _finite(lost)
    if v.size == 0:
        return ""
    word = (
        "needs its own J0" if np.median(v) > 0.5 else "mostly works on any J0 of these statistics"
    )
    return (
        f"ΔJ on a random permutation of J0's entries loses {_span(100 * lost, '.0f')}% "
        f"(median {100 * np.median(v):.0f}%) of the gain of learning: the learned structure "
        f"{word}."
    )


def _fixed_points(res: xr.Dataset, names: list[str]) -> str:
    if "n_fixed_points" not in res.variables:
        return ""
    zero = zero_input(res)
    nfp = zero["n_fixed_points"].values
    nst = zero["n_stable"].values
    u0 = zero["u_const"].values[()]
    epochs = res["epoch"].values
    text = (
        f"at input {u0:g}, epoch {int(epochs[-1])}: {_ints(nfp[:, -1])} fixed point(s), "
        f"{_ints(nst[:, -1])} stable"
    )
    notes = []
    for i, name in enumerate(names):
        many = epochs[nfp[i] > 1]
        none = epochs[(nst[i] == 0) & np.isfinite(nst[i])]
        if many.size:
            pos = zero["fp_u1"].isel(seed=i).sel(epoch=many).values
            where = _span(np.abs(pos[np.isfinite(pos) & (np.abs(pos) > 1e-9)]))
            notes.append(
                f"{name}: {_ints(nfp[i][nfp[i] > 1])} at epochs {_epochs(many)}"
                + (f" (off the origin at |u_1ᵀh*| = {where})" if where != "–" else "")
            )
        if none.size:
            notes.append(f"{name}: no stable fixed point at epochs {_epochs(none)}")
    if notes:
        text += "; several or none stable: " + "; ".join(notes)
    return text + "."


def _epochs(e: np.ndarray) -> str:
    e = [int(x) for x in e]
    return ", ".join(map(str, e)) if len(e) <= 4 else f"{e[0]}–{e[-1]} ({len(e)} snapshots)"


def _task_pole(h: xr.Dataset, res: xr.Dataset) -> str:
    if "lambda_task" not in res.variables:
        return ""
    lam = h["lambda_task"].values
    if not np.isfinite(lam).any():
        return (
            "no closed form for this network (λ_task, the Kalman filter's pole as an eigenvalue "
            "of J, needs φ = linear on denoise or track)."
        )
    edge = res["bulk_radius"].values
    text = f"the steady-state Kalman filter needs an eigenvalue λ_task = {_span(lam)} of J"
    inside = np.abs(lam) <= edge
    if inside.all():
        return text + f", inside the bulk edge ({_span(edge)}): no outlier is needed for it."
    outl = res["outlier"].isel(epoch=-1).values
    miss = np.array(
        [
            np.nanmin(np.abs(outl[i] - lam[i])) if np.isfinite(outl[i]).any() else np.nan
            for i in range(len(lam))
        ]  # fmt: skip
    )
    return text + f"; the nearest outlier of J at the last epoch is {_span(miss)} away."


def _one(h: xr.Dataset, res: xr.Dataset) -> list[tuple[str, str]]:
    names = member_names(h)  # one run per block: `seed 0`, ...
    items = [
        ("Did the network learn the task?", _learned(h, names)),
        ("Did ΔJ become low-rank?", _low_rank(h)),
        ("Did outliers leave the bulk?", _outliers(h, res)),
        ("Did Re λ_out cross 1, and when?", _crossing(h, names)),
        (
            "Which prediction matches the measured outlier, from which rank?",
            _prediction(h, res, names),
        ),
        ("Does ΔJ work without its own J0?", _shuffle(h)),
        ("Fixed points of the dynamics", _fixed_points(res, names)),
        ("Task eigenvalue from theory", _task_pole(h, res)),
    ]
    return [(q, a) for q, a in items if a]


def verdict(head: xr.Dataset, results: xr.Dataset) -> list[dict]:
    """Per run (members grouped by `run` when they come from several): its label, number of
    seeds and the (question, answer) items. `head` is headline.headline's dataset, `results`
    as inputs.prepare returns it (same members, same order)."""
    runs = member_runs(head)
    groups = [(None, np.arange(head.sizes["seed"]))]
    if runs:
        labels = list(dict.fromkeys(runs))
        groups = [(lab, np.flatnonzero(np.array(runs) == lab)) for lab in labels]
    out = []
    for label, pos in groups:
        h = head.isel(seed=pos)
        h.attrs = head.attrs
        items = _one(h, results.isel(seed=pos))
        out.append({"run": label, "n": len(pos), "items": items})
    return out


def _title(block: dict) -> str:
    who = f"run {block['run']}, " if block["run"] else ""
    return f"Verdict ({who}n = {block['n']} seed{'s' if block['n'] != 1 else ''})"


def _q(question: str) -> str:
    return question if question.endswith("?") else question + ":"


def markdown(blocks: list[dict]) -> str:
    """The verdict as markdown sections."""
    parts = []
    for b in blocks:
        lines = [f"## {_title(b)}", ""]
        lines += [f"- **{_q(q)}** {a}" for q, a in b["items"]]
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def html_block(blocks: list[dict]) -> str:
    """The verdict as HTML (a definition list per run)."""
    esc = html.escape
    parts = []
    for b in blocks:
        rows = "".join(f"<dt>{esc(_q(q))}</dt><dd>{esc(a)}</dd>" for q, a in b["items"])
        parts.append(f'<h2>{esc(_title(b))}</h2><dl class="verdict">{rows}</dl>')
    return "".join(parts)
