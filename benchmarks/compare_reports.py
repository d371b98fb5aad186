"""Compare two report directories of `rnnlab analyze`: same page, summary, analyses and PNGs.

Used to check that a speed-up leaves the report unchanged: each figure of report.html (a root
of its bokeh documents, by name) with generated ids (p1234, uuids) renumbered in order of first
appearance, whatever document it is in (the page is rendered in parts, one document each), the
documents' other fields, the page's HTML around them, summary.md, the values of analysis.nc,
and the PNGs (existence; size within `--png-tol`). Exit status 1 and a line per difference
otherwise. With `--content` the page's figures are compared by what they show (ranges, axes,
every layer's data and style, legends, every frame of the widgets: benchmarks/figure_content.py)
instead of by their bokeh JSON: for a change in how the figures are drawn.

    python benchmarks/compare_reports.py [--content] OLD_DIR NEW_DIR
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ID = re.compile(r"^(p\d+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
DOCS = re.compile(r'<script type="application/json" id="[^"]+">\s*(.*?)\s*</script>', re.S)
RENDER_ITEMS = re.compile(r"const render_items = \[.*?\];", re.S)
ROOT_ID = re.compile(r'data-root-id="[^"]*"')


def _renumber(obj, ids: dict):
    """`obj` with generated ids (and keys that are ids) replaced by their order of appearance."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            k2 = ids.setdefault(k, f"ID{len(ids)}") if ID.match(k) else k
            out[k2] = _renumber(v, ids)
        return out
    if isinstance(obj, list):
        return [_renumber(v, ids) for v in obj]
    if isinstance(obj, str) and ID.match(obj):
        return ids.setdefault(obj, f"ID{len(ids)}")
    return obj


def page_parts(html: str) -> tuple[object, str]:
    """The normalised figures ({name: root JSON} and the documents' other fields) and the page
    text outside the documents (uuids, root ids and the render items, which list ids, blanked)."""
    docs = DOCS.findall(html)
    if len(docs) != 1:
        raise SystemExit(f"expected one documents JSON block, found {len(docs)}")
    figures, fields = {}, set()
    for doc in json.loads(docs[0]).values():
        for root in doc["roots"]:
            figures[root["attributes"].get("name")] = _renumber(root, {})
        rest = _renumber({k: v for k, v in doc.items() if k != "roots"}, {})
        fields.add(json.dumps(rest, sort_keys=True))
    rest = RENDER_ITEMS.sub("RENDER_ITEMS", DOCS.sub("DOCS", html))
    rest = UUID.sub("UUID", ROOT_ID.sub("ROOT_ID", rest))
    return {"figures": figures, "documents": sorted(fields)}, rest


def _first_diff(a, b, path="") -> str:
    if type(a) is not type(b):
        return f"{path}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, dict):
        if a.keys() != b.keys():
            return f"{path}: keys {sorted(set(a) ^ set(b))[:5]}"
        for k in a:
            if a[k] != b[k]:
                return _first_diff(a[k], b[k], f"{path}/{k}")
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return _first_diff(x, y, f"{path}[{i}]")
    return f"{path}: {str(a)[:80]!r} != {str(b)[:80]!r}"


def compare(old: Path, new: Path, png_tol: float, content: bool = False) -> list[str]:
    problems = []
    old_html = (old / "report.html").read_text(encoding="utf-8")
    new_html = (new / "report.html").read_text(encoding="utf-8")
    a_doc, a_rest = page_parts(old_html)
    b_doc, b_rest = page_parts(new_html)
    if content:  # what the figures show, however their bokeh models are made
        problems += [
            f"report.html: {p}" for p in _figure_content().compare_pages(old_html, new_html)
        ]
    elif a_doc != b_doc:
        problems.append("report.html documents differ at " + _first_diff(a_doc, b_doc))
    if a_rest != b_rest:
        problems.append("report.html differs outside the documents JSON")
    if (old / "summary.md").read_text() != (new / "summary.md").read_text():
        problems.append("summary.md differs")
    import xarray as xr

    with xr.open_dataset(old / "analysis.nc") as a, xr.open_dataset(new / "analysis.nc") as b:
        try:
            xr.testing.assert_identical(a.load(), b.load())
        except AssertionError as err:
            problems.append(f"analysis.nc differs: {str(err)[:300]}")
    pngs, new_pngs = (sorted(p.name for p in (d / "figures").glob("*.png")) for d in (old, new))
    if pngs != new_pngs:
        problems.append(f"PNGs differ: {pngs} != {new_pngs}")
    for name in set(pngs) & set(new_pngs):
        sa, sb = ((d / "figures" / name).stat().st_size for d in (old, new))
        if abs(sa - sb) > png_tol * sa:
            problems.append(f"{name}: {sa} bytes != {sb} bytes")
    return problems


def _figure_content():
    """benchmarks/figure_content.py, wherever this script is run from."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "figure_content", Path(__file__).with_name("figure_content.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("--png-tol", type=float, default=0.0, help="relative PNG size tolerance")
    ap.add_argument("--content", action="store_true",
                    help="compare the page's figures by what they show (benchmarks/"
                         "figure_content.py), not by their bokeh JSON")  # fmt: skip
    args = ap.parse_args()
    problems = compare(args.old, args.new, args.png_tol, args.content)
    for p in problems:
        print(p)
    print("same report" if not problems else f"{len(problems)} difference(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
