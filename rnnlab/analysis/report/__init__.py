"""The report: figures (holoviews), their style, headline tables, the self-contained page, and the
`rnnlab analyze` command that writes report.html, summary.md and analysis.nc.

The exports load on first use (PEP 562): `rnnlab analyze` imports this package's light modules
(inputs, workers) without HoloViews, bokeh or matplotlib, which its plotting processes import.
"""

from __future__ import annotations

from importlib import import_module

# The submodule `figures` keeps its name here: build.figures (all figures by name) is not
# re-exported, since `rnnlab.analysis.report.figures` must stay the module.
_EXPORTS = {
    "ReportError": "rnnlab.errors",
    "prepare": "rnnlab.analysis.report.inputs",
    "write_pngs": "rnnlab.analysis.report.build",
    "write_report": "rnnlab.analysis.report.build",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
