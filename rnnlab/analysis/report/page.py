"""The self-contained report page: bokeh figures, an embedded HoloMap slider, headline tables.

The page is plain bokeh (`file_html` with inline resources), not panel: panel's saved pages link
CSS, icons and an ES-module shim from cdn.holoviz.org (or a relative static/ path) and render
incompletely offline. A HoloMap is embedded by updating HoloViews' bokeh plot to every frame,
capturing each frame's data sources, and swapping them from a bokeh slider or select (a small
CustomJS callback, rnnlab.analysis.report.widgets), so the page needs no server and makes no
network request.
"""

from __future__ import annotations

import html

import holoviews as hv
import xarray as xr
from bokeh.core.validation import silence
from bokeh.core.validation.warnings import FIXED_SIZING_MODE
from bokeh.document import Document
from bokeh.embed import file_html
from bokeh.resources import Resources

from rnnlab.analysis.report import headline as summary
from rnnlab.analysis.report.inloop_figures import INLOOP_SECTION
from rnnlab.analysis.report.widgets import _tidy, embed_holomap


class OfflineResources(Resources):
    """Inline bokeh JS/CSS without the external URLs that imported extensions declare.

    Bokeh adds the `__javascript__`/`__css__` of every imported model class to a page, so merely
    importing panel (HoloViews does) would put a relative or CDN <script src> into report.html.
    """

    def __init__(self, **kwargs):
        super().__init__(mode="inline", **kwargs)

    def clone(self, *, components=None) -> OfflineResources:
        comps = list(self.components) if components is None else components
        return OfflineResources(components=comps)

    def _collect_external_resources(self, resource_attr) -> list[str]:
        return []


SECTIONS = [
    (
        "Learning",
        ["learning_curve", "trajectories"],
        "Training MSE per seed (thin) and its mean (bold) against the task optimum, with the "
        "last snapshot's MSE ± SE on fresh trials (error bars); one evaluation trial of the "
        "trained network against its target.",
    ),
    (
        "Spectrum of J",
        ["spectrum", "outlier_paths"],
        "Eigenvalues of J with the bulk edge |λ| = g (1 + 2/√N) (the finite-N edge the outlier "
        "rule uses) and the outliers predicted from the rank-R fit of ΔJ (mean-field overlap "
        "matrix; exact determinant lemma on J0). Pick a seed and move the slider to watch the "
        "outlier leave the bulk. Right: outliers of all seeds, coloured by epoch.",
    ),
    (
        "Stability",
        ["outlier_re", "jacobian_re"],
        "Re λ_out of J against the stability edge Re λ = 1 (at the origin the Jacobian is −I + J),"
        " and the leading eigenvalue of the Jacobian at the mean state against Re λ = 0 "
        "(diamonds: crossing epochs (Jacobian at mean state)).",
    ),
    (
        "Low-rank structure of ΔJ = J − J0",
        ["singular_values", "explained"],
        "Singular values of the learned change at the last epoch, and the fraction of ‖ΔJ‖²_F "
        "captured by its best rank-1 and rank-2 approximations during training.",
    ),
    (
        "Alignment with the task",
        ["align_u", "align_v"],
        "|cos| between the leading output (u_1) and input (v_1) vectors of ΔJ and the task vectors "
        "(columns of B, readouts w, the uniform vector and their images under J0).",
    ),
    (
        "Cluster structure",
        ["block_J", "block_dJ"],
        "Mean of J and of ΔJ within and between the clusters of neurons, at the last epoch "
        "(pick a seed; one colour scale for all seeds).",
    ),
    INLOOP_SECTION,
]


def _bokeh_roots(figs: dict[str, object]) -> list:
    roots = []
    for name, obj in figs.items():
        if isinstance(obj, hv.HoloMap):
            roots.append(embed_holomap(obj, name))
        else:
            model = hv.render(obj, backend="bokeh")
            model.output_backend = "canvas"
            _tidy(model)
            model.name = name
            roots.append(model)
    return roots


def page_document(roots: list) -> Document:
    """One bokeh Document holding `roots` in order. Added under one freeze, the document walks
    its model graph once; `file_html` of the bare list adds root after root and walked the whole
    graph again at each (3.1 s of 4.4 s for the default run's 16 plots; the same page)."""
    doc = Document()
    with doc.models.freeze():
        for root in roots:
            doc.add_root(root)
    return doc


CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222;
       margin: 24px auto; max-width: 1440px; padding: 0 16px; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.25em; margin-top: 1.6em;
     border-bottom: 1px solid #ddd; padding-bottom: 4px; }
p.meta, p.note { color: #555; margin: 0.3em 0; } p.note { max-width: 1100px; }
.plots { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
table.headline { border-collapse: collapse; font-size: 0.88em; margin: 0.6em 0; }
.scroll { overflow-x: auto; max-width: 100%; }
table.headline th, table.headline td { padding: 3px 8px; text-align: right;
       border-bottom: 1px solid #e4e4e4; white-space: nowrap; }
table.headline th { white-space: normal; max-width: 7.5em; vertical-align: bottom; }
table.headline th { background: #f3f4f6; border-bottom: 2px solid #bbb; }
table.headline tr.across td { font-weight: 600; border-top: 2px solid #bbb; }
details { margin: 0.6em 0; } pre { background: #f6f6f6; padding: 8px; overflow-x: auto; }
dl.verdict { max-width: 1100px; margin: 0.4em 0 0.8em; } dl.verdict dt { font-weight: 600;
       margin-top: 0.45em; } dl.verdict dd { margin: 0.1em 0 0 1.2em; color: #333; }
"""

TEMPLATE = """
{% block postamble %}<style>{{ css }}</style>{% endblock %}
{% block contents %}
<h1>{{ heading }}</h1>
<p class="meta">{{ meta }}</p>
{{ verdict }}
<h2>Headline numbers (last epoch {{ last_epoch }})</h2>
<div class="scroll">{{ headline }}</div>
<details><summary>Alignments of u_1 and v_1 with the task vectors</summary>
<div class="scroll">{{ align_u }}{{ align_v }}</div></details>
{% for sec in sections %}
<h2>{{ sec.title }}</h2>
<p class="note">{{ sec.note }}</p>
{% if sec.html %}<div class="scroll">{{ sec.html }}</div>{% endif %}
<div class="plots">{% for name in sec.plots %}<div>{{ embed(roots[name]) }}</div>{% endfor %}</div>
{% endfor %}
<h2>Provenance</h2>
<details><summary>Run configuration and versions</summary><pre>{{ provenance }}</pre></details>
{% endblock %}
"""


def _provenance(attrs: dict) -> str:
    keys = ["title", "created", "command", "rnnlab_version", "torch_version", "xarray_version"]
    lines = [f"{k}: {attrs[k]}" for k in keys if k in attrs]
    if "config" in attrs:
        lines += ["", str(attrs["config"])]
    return html.escape("\n".join(lines))


def render_html(
    figs: dict[str, object],
    head: xr.Dataset,
    attrs: dict,
    title: str,
    verdict: str = "",
    extra: list[dict] | None = None,
) -> str:
    """The page: the verdict (HTML) and headline tables of `head` on top, then the `extra`
    sections (dicts of title, note, plots and an optional html table: a sweep's phase diagram),
    then SECTIONS of `figs` (name -> hv object; plots not in `figs` and empty sections are left
    out)."""
    t = summary.tables(head)
    opt = summary.fmt(head.attrs["mse_optimal"])
    meta = (
        f"{head.sizes['seed']} seeds{summary.runs_note(head)} · "
        f"last epoch {head.attrs['last_epoch']} · "
        f"task optimum MSE* = {opt}"
        + (f" · created {attrs['created']}" if "created" in attrs else "")
        + f" · {summary.diverged_note(head)}"
    )
    sections = [
        *(extra or []),
        *(
            {"title": s, "plots": [x for x in p if x in figs], "note": n}
            for s, p, n in SECTIONS
            if any(x in figs for x in p)
        ),
    ]
    variables = {
        "css": CSS,
        "heading": html.escape(f"rnnlab report: {title}"),
        "meta": html.escape(meta),
        "last_epoch": head.attrs["last_epoch"],
        "headline": summary.html_table(*t["main"]),
        "align_u": "<p>u_1</p>" + summary.html_table(*t["u"]),
        "align_v": "<p>v_1</p>" + summary.html_table(*t["v"]),
        "sections": sections,
        "verdict": verdict,
        "provenance": _provenance(attrs),
    }
    roots = _bokeh_roots(figs)
    silence(FIXED_SIZING_MODE, True)  # frame_width/height are set instead of width/height
    try:
        return file_html(
            page_document(roots),
            OfflineResources(),
            title=f"rnnlab report: {title}",
            template=TEMPLATE,
            template_variables=variables,
        )
    finally:
        silence(FIXED_SIZING_MODE, False)
