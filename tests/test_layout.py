"""The package's layout (docs/architecture.md), checked on its source: an AST walk over every
module of rnnlab finds each import of another rnnlab module, and subprocesses check that the
light entry points never load torch.

Rules: (a) no import cycle between modules (module-level imports); (b) rnnlab/data imports only
rnnlab.errors and rnnlab.config (any level, function bodies included); (c) no module imports a
layer above its own (LAYERS), at module level nor inside a function, except in rnnlab/__init__.py,
which imports only inside functions; rnnlab.analysis (report included) imports the torch layers
(network, bptt, training) only inside functions, the ones that simulate networks; spectra imports
nothing of bptt but rnnlab.bptt.mkl (any level); (d) at most six modules flat in rnnlab/;
(e) torch stays out of `import rnnlab`, reading an archive, analysing it, the spectra conventions
and theory, and the import of every module outside network, bptt and training.

How imports are counted: `from rnnlab.x import y` is an import of the submodule rnnlab.x.y when
there is one, else of rnnlab.x; `import rnnlab.x.y` one of rnnlab.x.y; parent packages run
implicitly are not counted. The root package (rnnlab/__init__.py) is the parent of every module
and imports only inside functions, so `import rnnlab` alone depends on nothing; using one of its
lazy exports (`rnnlab.run`, `from rnnlab import open_archive`) counts as importing the modules
that export comes from, at the place of use. Imports under `if TYPE_CHECKING:` never run: they
count for the layer rules but not for cycles.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

import rnnlab

PACKAGE = Path(rnnlab.__file__).resolve().parent
ROOT = "rnnlab"

# lowest first; a module belongs to the layer of its longest matching prefix
LAYERS: list[tuple[str, ...]] = [
    ("rnnlab.errors", "rnnlab.config"),
    ("rnnlab.runtime",),
    ("rnnlab.data", "rnnlab.network"),
    ("rnnlab.bptt",),
    ("rnnlab.spectra",),
    ("rnnlab.training",),
    ("rnnlab.analysis",),  # rnnlab.analysis.report excluded: its own layer, next
    ("rnnlab.analysis.report",),
    ("rnnlab.cli", "rnnlab.__main__"),
]
DATA_MAY_IMPORT = {"rnnlab.errors", "rnnlab.config"}
SPECTRA_MAY_IMPORT_FROM_BPTT = {"rnnlab.bptt.mkl"}
FLAT_REQUIRED = {"__init__", "cli", "config", "errors"}
MAX_FLAT = 6
TORCH_LAYERS = ("rnnlab.network", "rnnlab.bptt", "rnnlab.training")


# -- reading the package ---------------------------------------------------------------------
def read_package(folder: Path = PACKAGE) -> dict[str, str]:
    """{module name: source} of every module of the package in `folder`."""
    sources = {}
    for path in sorted(folder.rglob("*.py")):
        parts = path.relative_to(folder.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        sources[".".join(parts)] = path.read_text(encoding="utf-8")
    return sources


def is_package(name: str, modules: set[str]) -> bool:
    return any(other.startswith(name + ".") for other in modules)


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


@dataclass(frozen=True)
class Edge:
    """`source` imports rnnlab module `target` at `line`; where: module, function or typing."""

    source: str
    target: str
    line: int
    where: str
    via: str = ""  # the root export used (rnnlab.run), if any

    def __str__(self) -> str:
        how = f" (through rnnlab.{self.via})" if self.via else ""
        return f"{self.source}:{self.line} imports {self.target}{how} [{self.where}-level]"


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(tree: ast.AST, where: str = "module"):
    """(node, where) for every node, `where` being module, function or typing."""
    for child in ast.iter_child_nodes(tree):
        inner = where
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            inner = "function"
        yield child, where
        if isinstance(child, ast.If) and _is_type_checking(child.test) and where == "module":
            for stmt in child.body:
                yield stmt, "typing"
                yield from _walk(stmt, "typing")
            for stmt in child.orelse:
                yield stmt, where
                yield from _walk(stmt, where)
            continue
        yield from _walk(child, inner)


def _raw_imports(name: str, tree: ast.Module, modules: set[str]):
    """(target, line, where, alias) of each rnnlab import in one module; alias: the name bound
    to the root package (import rnnlab [as r]) or the root export imported (from rnnlab import
    run)."""
    package = name if is_package(name, modules) else name.rpartition(".")[0]
    for node, where in _walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if not within(alias.name, ROOT):
                    continue
                if alias.name == ROOT:
                    yield ROOT, node.lineno, where, ("bind", alias.asname or ROOT)
                    continue
                target = alias.name
                while target not in modules and "." in target:
                    target = target.rpartition(".")[0]
                yield target, node.lineno, where, None
                if alias.asname is None:  # `import rnnlab.x` also binds the name rnnlab
                    yield ROOT, node.lineno, where, ("bind", ROOT)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join([*base, node.module] if node.module else base)
            else:
                origin = node.module or ""
            if not within(origin, ROOT):
                continue
            for alias in node.names:
                sub = f"{origin}.{alias.name}"
                if sub in modules:
                    yield sub, node.lineno, where, None
                elif origin == ROOT:
                    yield ROOT, node.lineno, where, ("export", alias.name)
                else:
                    yield origin, node.lineno, where, None


def root_exports(sources: dict[str, str]) -> dict[str, set[str]]:
    """{name: modules it is imported from} of the root package's lazy exports (its top-level
    functions and the `if name == "...":` branches of its module __getattr__)."""
    if ROOT not in sources:
        return {}
    modules = set(sources)
    tree = ast.parse(sources[ROOT])

    def targets(node: ast.AST) -> set[str]:
        wrapper = ast.Module(body=[node] if isinstance(node, ast.stmt) else node, type_ignores=[])
        return {t for t, _, _, extra in _raw_imports(ROOT, wrapper, modules) if extra is None}

    functions = {
        f.name: f for f in tree.body if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    exports = {name: targets(f) for name, f in functions.items() if name != "__getattr__"}
    if "__getattr__" in functions:
        for node in ast.walk(functions["__getattr__"]):
            test = getattr(node, "test", None)
            if not (isinstance(node, ast.If) and isinstance(test, ast.Compare)):
                continue
            if not (
                isinstance(test.ops[0], ast.Eq) and isinstance(test.comparators[0], ast.Constant)
            ):
                continue
            name = test.comparators[0].value
            found = targets(node.body)
            for stmt in ast.walk(ast.Module(body=node.body, type_ignores=[])):
                if isinstance(stmt, ast.Return) and isinstance(stmt.value, ast.Name):
                    found |= exports.get(stmt.value.id, set())
            exports[name] = exports.get(name, set()) | found
    return exports


def find_imports(sources: dict[str, str]) -> list[Edge]:
    """Every import of one rnnlab module by another (see the module docstring for the counting)."""
    modules = set(sources)
    exports = root_exports(sources)
    edges = []
    for name, text in sources.items():
        tree = ast.parse(text)
        bound = set()
        for target, line, where, extra in _raw_imports(name, tree, modules):
            if extra is None:
                edges.append(Edge(name, target, line, where))
            elif extra[0] == "bind":
                bound.add(extra[1])
            else:
                for module in sorted(exports.get(extra[1], set())):
                    edges.append(Edge(name, module, line, where, via=extra[1]))
        if not bound or name == ROOT:
            continue
        for node, where in _walk(tree):  # uses of the root's lazy exports: rnnlab.run(...)
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in bound
                and node.attr in exports
            ):
                for module in sorted(exports[node.attr]):
                    edges.append(Edge(name, module, node.lineno, where, via=node.attr))
    return [e for e in edges if e.target != e.source]


# -- the rules -------------------------------------------------------------------------------
def layer_of(name: str) -> int | None:
    best, depth = None, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if within(name, prefix) and prefix.count(".") > depth:
                best, depth = index, prefix.count(".")
    return best


def cycle_errors(edges: list[Edge]) -> list[str]:
    """One line per import cycle (module-level imports), as a chain with line numbers."""
    graph: dict[str, dict[str, Edge]] = {}
    for e in edges:
        if e.where == "module":
            graph.setdefault(e.source, {}).setdefault(e.target, e)
    errors, done = [], set()
    state: dict[str, int] = {}  # 1: on the stack, 2: finished
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == 1:
                loop = stack[stack.index(nxt) :] + [nxt]
                key = frozenset(loop)
                if key not in done:
                    done.add(key)
                    steps = [str(graph[a][b]) for a, b in zip(loop, loop[1:], strict=False)]
                    errors.append(" -> ".join(loop) + ": " + "; ".join(steps))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return errors


def data_errors(edges: list[Edge]) -> list[str]:
    """rnnlab.data imports, at any level, only itself, rnnlab.errors and rnnlab.config."""
    return [
        str(e)
        for e in edges
        if within(e.source, "rnnlab.data")
        and not within(e.target, "rnnlab.data")
        and e.target not in DATA_MAY_IMPORT
    ]


def layer_errors(edges: list[Edge], modules: set[str]) -> list[str]:
    """Imports of a higher layer, at any level but in the root's functions (and modules that
    belong to no layer)."""
    errors = [
        f"{name} belongs to no layer: add it to LAYERS in tests/test_layout.py"
        for name in sorted(modules)
        if name != ROOT and layer_of(name) is None
    ]
    for e in edges:
        if e.source == ROOT:
            if e.where != "function":
                errors.append(f"{e}: rnnlab/__init__.py imports only inside functions")
            continue
        low, high = layer_of(e.source), layer_of(e.target)
        if low is not None and high is not None and high > low:
            errors.append(f"{e}: layer {high} {LAYERS[high]} is above layer {low} {LAYERS[low]}")
    return errors


def analysis_errors(edges: list[Edge]) -> list[str]:
    """rnnlab.analysis (report included) imports the torch layers only inside functions (the
    functions that simulate networks), so that reading and analysing archives stays light."""
    return [
        f"{e}: analysis imports {TORCH_LAYERS} only inside functions that simulate networks"
        for e in edges
        if within(e.source, "rnnlab.analysis")
        and e.where != "function"
        and any(within(e.target, p) for p in TORCH_LAYERS)
    ]


def spectra_errors(edges: list[Edge]) -> list[str]:
    """Of bptt, spectra imports (at any level) only rnnlab.bptt.mkl."""
    return [
        f"{e}: spectra may use only {sorted(SPECTRA_MAY_IMPORT_FROM_BPTT)} of bptt"
        for e in edges
        if within(e.source, "rnnlab.spectra")
        and within(e.target, "rnnlab.bptt")
        and e.target not in SPECTRA_MAY_IMPORT_FROM_BPTT
    ]


def flat_errors(folder: Path) -> list[str]:
    """At most MAX_FLAT modules directly in the package folder, FLAT_REQUIRED among them."""
    flat = sorted(p.stem for p in folder.glob("*.py"))
    errors = [f"{name}.py missing from {folder}" for name in sorted(FLAT_REQUIRED - set(flat))]
    if len(flat) > MAX_FLAT:
        errors.append(f"{len(flat)} modules flat in {folder}: {flat}; at most {MAX_FLAT}")
    return errors


def all_errors(sources: dict[str, str]) -> list[str]:
    edges = find_imports(sources)
    found = cycle_errors(edges) + data_errors(edges) + layer_errors(edges, set(sources))
    return found + analysis_errors(edges) + spectra_errors(edges)


# -- the package itself ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def sources() -> dict[str, str]:
    return read_package()


@pytest.fixture(scope="module")
def edges(sources) -> list[Edge]:
    return find_imports(sources)


def test_the_walk_sees_the_package(sources, edges):
    assert {"rnnlab", "rnnlab.cli", "rnnlab.data.writer", "rnnlab.analysis.report.build"} <= set(
        sources
    )
    assert len(sources) > 60
    found = {(e.source, e.target, e.where) for e in edges}
    assert ("rnnlab.training.trainer", "rnnlab.bptt.dynamics", "module") in found
    # from rnnlab.analysis.report import figures: the submodule
    assert ("rnnlab.analysis.report.build", "rnnlab.analysis.report.figures", "module") in found
    assert ("rnnlab.cli", "rnnlab.training.run", "function") in found
    # `import rnnlab` then rnnlab.open_archive(...): the modules behind that export
    assert ("rnnlab.analysis.report.command", "rnnlab.data.reader", "function") in found
    exports = root_exports(sources)
    assert exports["run"] == {"rnnlab.training.run"} and exports["load_config"] == {"rnnlab.config"}
    assert exports["open_archive"] == {"rnnlab.data.reader", "rnnlab.runtime"}


def test_no_import_cycles(edges):
    errors = cycle_errors(edges)
    assert not errors, "import cycles:\n" + "\n".join(errors)


def test_data_imports_only_errors_and_config(edges):
    errors = data_errors(edges)
    assert not errors, "rnnlab.data imports beyond errors and config:\n" + "\n".join(errors)


def test_no_module_imports_a_layer_above_it(sources, edges):
    errors = layer_errors(edges, set(sources))
    assert not errors, "imports from above:\n" + "\n".join(errors)


def test_analysis_imports_torch_layers_only_in_functions(edges):
    errors = analysis_errors(edges)
    assert not errors, "\n".join(errors)


def test_spectra_uses_only_mkl_of_bptt(edges):
    errors = spectra_errors(edges)
    assert not errors, "\n".join(errors)


def test_at_most_six_flat_modules():
    errors = flat_errors(PACKAGE)
    assert not errors, "\n".join(errors)


# -- each rule can fail: planted violations in made-up packages --------------------------------
BASE = {
    "rnnlab": """
        def open_archive(p):
            from rnnlab.data.reader import read
            return read(p)
        def __getattr__(name):
            if name == "run":
                from rnnlab.training.run import run
                return run
            if name == "open_archive":
                return open_archive
        __version__ = "0"
    """,
    "rnnlab.errors": "",
    "rnnlab.config": "from rnnlab.errors import E",
    "rnnlab.runtime": "",
    "rnnlab.data": "",
    "rnnlab.data.reader": "from rnnlab.config import C\nfrom . import schema",
    "rnnlab.data.schema": "",
    "rnnlab.network": "",
    "rnnlab.network.params": "import torch\nfrom rnnlab.config import C",
    "rnnlab.bptt": "",
    "rnnlab.bptt.mkl": "",
    "rnnlab.bptt.dynamics": "from rnnlab.network import params",
    "rnnlab.spectra": "",
    "rnnlab.spectra.theory": "from rnnlab.bptt.mkl import gemm",
    "rnnlab.training": "",
    "rnnlab.training.run": "from rnnlab.bptt.dynamics import step\nimport rnnlab.data.reader",
    "rnnlab.analysis": "from rnnlab.analysis import pipeline",
    "rnnlab.analysis.pipeline": "from rnnlab.spectra import theory\nfrom rnnlab import __version__",
    "rnnlab.analysis.report": "",
    "rnnlab.analysis.report.build": "import rnnlab\ndef f(p):\n    return rnnlab.open_archive(p)",
    "rnnlab.cli": "def main():\n    from rnnlab.analysis.report.build import f",
}


def planted(changes: dict[str, str] | None = None) -> dict[str, str]:
    """The made-up package BASE with some modules' sources replaced or added."""
    sources = {name: textwrap.dedent(text) for name, text in BASE.items()}
    sources.update({name: textwrap.dedent(text) for name, text in (changes or {}).items()})
    return sources


def test_the_made_up_package_is_clean():
    assert all_errors(planted()) == []


IN_FUNCTION = "def f():\n    {}"
PLANTED = [
    # (a) cycles, also through `from package import submodule` and relative imports
    (
        "rnnlab.data.schema",
        "from rnnlab.data import reader",
        "rnnlab.data.reader -> rnnlab.data.schema -> rnnlab.data.reader",
    ),
    ("rnnlab.errors", "from . import config", "rnnlab.config -> rnnlab.errors -> rnnlab.config"),
    # (b) data imports beyond errors and config, at any level, also through a root export
    (
        "rnnlab.data.schema",
        IN_FUNCTION.format("import rnnlab.network.params"),
        "rnnlab.data.schema:2 imports rnnlab.network.params [function-level]",
    ),
    (
        "rnnlab.data.schema",
        "import rnnlab\n" + IN_FUNCTION.format("rnnlab.run()"),
        "rnnlab.data.schema:3 imports rnnlab.training.run (through rnnlab.run) [function-level]",
    ),
    (
        "rnnlab.data.schema",
        "from rnnlab.runtime import x",
        "rnnlab.data.schema:1 imports rnnlab.runtime [module-level]",
    ),
    (
        "rnnlab.data.schema",
        "if TYPE_CHECKING:\n    from rnnlab.spectra import theory",
        "imports rnnlab.spectra.theory [typing-level]",
    ),
    # (c) a higher layer, at module level or inside a function (but in the root)
    (
        "rnnlab.bptt.mkl",
        "from rnnlab.training.run import run",
        "layer 5 ('rnnlab.training',) is above layer 3 ('rnnlab.bptt',)",
    ),
    (
        "rnnlab.config",
        IN_FUNCTION.format("from rnnlab.bptt import dynamics"),
        "rnnlab.config:2 imports rnnlab.bptt.dynamics [function-level]",
    ),
    (
        "rnnlab.analysis.pipeline",
        IN_FUNCTION.format("from rnnlab.analysis.report import build"),
        "imports rnnlab.analysis.report.build [function-level]: layer 7",
    ),
    (
        "rnnlab.analysis.report.build",
        "from rnnlab.cli import main",
        "layer 8 ('rnnlab.cli', 'rnnlab.__main__') is above",
    ),
    (
        "rnnlab.network.params",
        "from rnnlab import run",
        "imports rnnlab.training.run (through rnnlab.run) [module-level]",
    ),
    ("rnnlab", "from rnnlab.config import C", "rnnlab/__init__.py imports only inside functions"),
    ("rnnlab.extra", "", "rnnlab.extra belongs to no layer"),
    # analysis: the torch layers only inside functions
    (
        "rnnlab.analysis.pipeline",
        "from rnnlab.training.run import run",
        "rnnlab.analysis.pipeline:1 imports rnnlab.training.run [module-level]: analysis imports",
    ),
    ("rnnlab.analysis.report.build", "import rnnlab.network.params", "analysis imports"),
    # spectra: of bptt only mkl
    (
        "rnnlab.spectra.theory",
        IN_FUNCTION.format("from rnnlab.bptt.dynamics import step"),
        "spectra may use only",
    ),
]


@pytest.mark.parametrize(("module", "source", "needle"), PLANTED)
def test_each_rule_catches_a_planted_violation(module, source, needle):
    errors = all_errors(planted({module: source}))
    assert any(needle in line for line in errors), errors


def test_allowed_imports_pass():
    simulate = "def simulate():\n    from rnnlab.training.trainer import forward"
    allowed = planted(
        {
            "rnnlab.analysis.pipeline": simulate,  # torch layers inside a function
            "rnnlab.data.schema": "if TYPE_CHECKING:\n    from rnnlab.data import reader",
            "rnnlab.data.reader": "from . import schema\nimport rnnlab\nv = rnnlab.__version__",
            "rnnlab.network.params": "from rnnlab.data import schema",  # same layer
            "rnnlab.training.trainer": "",
        }
    )
    assert all_errors(allowed) == []


def test_flat_module_limit_can_fail(tmp_path):
    for stem in [*FLAT_REQUIRED, "runtime", "extra"]:
        (tmp_path / f"{stem}.py").write_text("")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deep.py").write_text("")  # modules of sub-packages do not count
    assert flat_errors(tmp_path) == []
    (tmp_path / "seventh.py").write_text("")
    (error,) = flat_errors(tmp_path)
    assert error.startswith(f"7 modules flat in {tmp_path}: [") and error.endswith("at most 6")
    (tmp_path / "errors.py").unlink()
    assert f"errors.py missing from {tmp_path}" in flat_errors(tmp_path)


# -- (e) torch stays out of the light paths --------------------------------------------------
PROBE = """
import json, sys, traceback
package, code = {package!r}, {code!r}
def where(frame):
    if frame.filename == "<code>":
        return f"<code>:{{frame.lineno}}: {{code.splitlines()[frame.lineno - 1].strip()}}"
    return f"{{frame.filename[len(package) - 6:]}}:{{frame.lineno}}: {{frame.line}}"
class Watch:
    chain = None
    def find_spec(self, name, path=None, target=None):
        if name == "torch" and Watch.chain is None:
            stack = traceback.extract_stack()[:-1]
            keep = [f for f in stack if f.filename.startswith(package) or f.filename == "<code>"]
            Watch.chain = [where(f) for f in keep]
        return None
sys.meta_path.insert(0, Watch())
exec(compile(code, "<code>", "exec"))
print(json.dumps({{"torch": "torch" in sys.modules, "chain": Watch.chain}}))
"""


def torch_after(code: str) -> dict:
    """Run `code` in a fresh interpreter: whether torch got imported, and the rnnlab lines (the
    import chain) that were running when it was first asked for."""
    script = PROBE.format(package=str(PACKAGE), code=textwrap.dedent(code))
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def assert_no_torch(code: str) -> None:
    result = torch_after(code)
    chain = "\n  ".join(result["chain"] or [])
    assert not result["torch"], f"torch imported; the chain, outermost first:\n  {chain}"


def test_probe_reports_the_import_chain():
    result = torch_after("import rnnlab.training.trainer")
    assert result["torch"]
    assert result["chain"][0] == "<code>:1: import rnnlab.training.trainer"
    assert result["chain"][1].startswith("rnnlab/training/trainer.py:")
    assert any("rnnlab/training/trainer.py" in line for line in result["chain"])


def test_import_rnnlab_and_load_config_no_torch():
    assert_no_torch("import rnnlab\nrnnlab.load_config(None, ['model.N=8'])")


def test_reading_an_archive_no_torch(tiny_archive):
    assert_no_torch(f"import rnnlab\nds = rnnlab.open_archive({str(tiny_archive)!r}).load()")


def test_analysing_an_archive_no_torch(tiny_archive):
    assert_no_torch(
        f"""
        import rnnlab, rnnlab.analysis
        ds = rnnlab.open_archive({str(tiny_archive)!r})
        res = rnnlab.analysis.compute(rnnlab.analysis.analyze(ds), progress=False)
        assert "m" in res and res.sizes["seed"] == 2
        """
    )


def test_spectra_conventions_and_theory_no_torch():
    assert_no_torch("import rnnlab.spectra.conventions, rnnlab.spectra.theory")


def test_light_layers_import_no_torch(sources):
    """Every module of config, errors, runtime, data, spectra, analysis (report too) and the CLI
    imports without torch (torch comes only with network, bptt and training)."""
    light = [
        name
        for name in sorted(sources)
        if name not in (ROOT, "rnnlab.__main__")  # (runs the CLI: tests/cli/test_startup.py)
        and not any(within(name, p) for p in ("rnnlab.network", "rnnlab.bptt", "rnnlab.training"))
    ]
    assert "rnnlab.spectra.tracker" in light and "rnnlab.analysis.report.page" in light
    assert_no_torch("\n".join(f"import {name}" for name in light))
