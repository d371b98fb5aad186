"""The self-contained report page: bokeh figures, an embedded HoloMap slider, headline tables.

The figures come in parts (`serialize_part`: one bokeh Document each, serialised), so that parts
can be rendered in separate processes (report/workers.py) and put on one page (`assemble`); each
group of figures numbers its bokeh ids from its own base (`ID_BASE`), so parts never share an id
and the page is the same whichever process rendered which part.

The page is plain bokeh (bokeh's file template, inline resources), not panel: panel's saved pages
link CSS, icons and an ES-module shim from cdn.holoviz.org (or a relative static/ path) and render
incompletely offline. A HoloMap is embedded by updating HoloViews' bokeh plot to every frame,
capturing each frame's data sources, and swapping them from a bokeh slider or select (a small
CustomJS callback, rnnlab.analysis.report.widgets), so the page needs no server and makes no
network request.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import bokeh.util.serialization
import holoviews as hv
import xarray as xr
from bokeh.core.json_encoder import serialize_json
from bokeh.core.templates import DOC_JS, FILE, MACROS, get_env
from bokeh.core.validation import silence
from bokeh.core.validation.warnings import FIXED_SIZING_MODE
from bokeh.document import Document
from bokeh.embed.bundle import Bundle, bundle_for_objs_and_resources
from bokeh.embed.util import RenderRoot, standalone_docs_json_and_render_items
from bokeh.embed.wrappers import wrap_in_onload, wrap_in_safely, wrap_in_script_tag
from bokeh.resources import Resources
from bokeh.settings import settings
from bokeh.util.serialization import make_globally_unique_css_safe_id

from rnnlab.analysis.report import bokeh_draw, options
from rnnlab.analysis.report import headline as summary
from rnnlab.analysis.report.inloop_figures import INLOOP_SECTION
from rnnlab.analysis.report.widgets import Frames, _tidy, embed_holomap


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


def bokeh_roots(figs: dict[str, object]) -> list:
    """Each figure (name -> HoloViews object) as a bokeh model named after it (a HoloMap: its
    figure with the widgets that pick its frames)."""
    roots = []
    for name, obj in figs.items():
        if isinstance(obj, hv.HoloMap | Frames):
            roots.append(embed_holomap(obj, name))
        else:
            model = _draw(obj)
            model.output_backend = "canvas"
            _tidy(model)
            model.name = name
            roots.append(model)
    return roots


def _draw(obj):
    """`obj` as a bokeh figure: drawn directly where bokeh_draw knows its layers (the same
    models, a fraction of the time), else by HoloViews."""
    if bokeh_draw.drawable(obj):
        try:
            return bokeh_draw.draw(obj)[0]
        except ValueError:  # nothing finite to range the plot: HoloViews decides
            pass
    return hv.render(options.to_holoviews(obj), backend="bokeh")


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


# bokeh numbers its model ids p1, p2, ... per process; group k of the figures (build.group)
# numbers from ID_BASE * (k + 1)
ID_BASE = 1_000_000


@dataclass
class PagePart:
    """Some figures of the page, rendered: their bokeh Document as JSON (`serialize_json` of
    {docid: document}), its render item (JSON), where each figure goes (name -> RenderRoot) and
    the JS/CSS the figures need. Plain data: it crosses processes by pickle."""

    json: str
    item: dict
    roots: dict[str, RenderRoot]
    bundle: Bundle


def number_ids_from(index: int) -> None:
    """Bokeh models made from now on in this process are numbered from ID_BASE * (index + 1)."""
    with bokeh.util.serialization._simple_id_lock:  # no public way to set where ids start
        bokeh.util.serialization._simple_id = ID_BASE * (index + 1)


def serialize_part(roots: list) -> PagePart:
    """The bokeh `roots` (named figures) in one Document, serialised as a part of the page."""
    doc = page_document(roots)
    silence(FIXED_SIZING_MODE, True)  # frame_width/height are set instead of width/height
    try:
        docs_json, (item,) = standalone_docs_json_and_render_items(doc)
    finally:
        silence(FIXED_SIZING_MODE, False)
    # plain strings: a root's name is bokeh's own str type, which does not pickle
    named = {str(r.name): RenderRoot(str(r.elementid), str(r.id), str(r.name)) for r in item.roots}
    bundle = bundle_for_objs_and_resources([doc], OfflineResources())
    return PagePart(serialize_json(docs_json), item.to_json(), named, bundle)


def merge_bundles(bundles: list[Bundle]) -> Bundle:
    """The JS and CSS of all `bundles`, each file or inline text once, in first-seen order (each
    bundle lists bokeh's components in bokeh's own order, and widgets come with the first part's
    HoloMap)."""

    def union(lists):
        return list(dict.fromkeys(x for lst in lists for x in lst))

    return Bundle(
        union(b.js_files for b in bundles),
        union(b.js_raw for b in bundles),
        union(b.css_files for b in bundles),
        union(b.css_raw for b in bundles),
        {k: v for b in bundles for k, v in b.hashes.items()},
    )


def _plot_script(parts: list[PagePart]) -> str:
    """The documents of all parts in one JSON script tag and the script that renders them (what
    bokeh's `html_page_for_render_items` writes for one document)."""
    docs = "{" + ",".join(p.json.strip()[1:-1] for p in parts) + "}"
    json_id = make_globally_unique_css_safe_id()
    script = wrap_in_script_tag(html.escape(docs, quote=False), "application/json", json_id)
    js = DOC_JS.render(
        docs_json=f"document.getElementById('{json_id}').textContent",
        render_items=serialize_json([p.item for p in parts], pretty=False),
        app_path=None,
        absolute_url=None,
    )
    if not settings.dev:
        js = wrap_in_safely(js)
    return script + wrap_in_script_tag(wrap_in_onload(js))


def assemble(
    parts: list[PagePart],
    head: xr.Dataset,
    attrs: dict,
    title: str,
    verdict: str = "",
    extra: list[dict] | None = None,
) -> str:
    """The page: the verdict (HTML) and headline tables of `head` on top, then the `extra`
    sections (dicts of title, note, plots and an optional html table: a sweep's phase diagram),
    then SECTIONS of the figures in `parts` (plots in no part and empty sections are left
    out)."""
    roots = {name: root for p in parts for name, root in p.roots.items()}
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
            {"title": s, "plots": [x for x in p if x in roots], "note": n}
            for s, p, n in SECTIONS
            if any(x in roots for x in p)
        ),
    ]
    bokeh_js, bokeh_css = merge_bundles([p.bundle for p in parts])
    context = {
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
        "title": f"rnnlab report: {title}",
        "bokeh_js": bokeh_js,
        "bokeh_css": bokeh_css,
        "plot_script": _plot_script(parts),
        "roots": roots,
        "base": FILE,
        "macros": MACROS,
    }
    return get_env().from_string("{% extends base %}\n" + TEMPLATE).render(context)
