"""The report: figures (holoviews), their style, headline tables, the self-contained page, and the
`rnnlab analyze` command that writes report.html, summary.md and analysis.nc."""

# The submodule `figures` keeps its name here: build.figures (all figures by name) is not
# re-exported, since `rnnlab.analysis.report.figures` must stay the module.
from rnnlab.analysis.report.build import ReportError, prepare, write_pngs, write_report

__all__ = ["ReportError", "prepare", "write_pngs", "write_report"]
