"""The package's shape: imports go one way down, no module imports itself in a circle, no room is too big.

A function over 60 lines is the exception: each one is named in ``LONG_FUNCTIONS`` with its reason.

Every module is read with ``ast``: every ``import`` and ``from ... import`` counts, at the top, inside
functions (lazy imports) and under ``TYPE_CHECKING`` alike, since each is a dependency all the same.
Relative imports are resolved; ``from package import name`` depends on the submodule ``name`` when
there is one, else on the package. The layers and what each may import are in docs/architecture.md.
"""

from __future__ import annotations

import ast
import textwrap
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "esa_scheduler"
MAX_LINES = 400

FOUNDATION = frozenset(
    {
        "__init__",
        "addresses",
        "config",
        "entrypoints",
        "errors",
        "fc_context",
        "files",
        "logs",
        "strict_json",
        "timeutil",
    }
)
"""Top-level modules any layer may import; they import no layer (only one another)."""
TOP = frozenset({"__main__", "cli"})
"""The command line: it may import anything, and nothing imports it."""
LAYERS = frozenset({"edge", "emulator", "engine", "invocation", "views"})
MAY_IMPORT: dict[str, frozenset[str]] = {
    "foundation": frozenset({"foundation"}),
    "engine": frozenset({"foundation", "engine"}),
    "edge": frozenset({"foundation", "edge"}),
    "invocation": frozenset({"foundation", "engine", "edge", "invocation"}),
    "views": frozenset({"foundation", "engine", "invocation", "views"}),
    "emulator": frozenset({"foundation", "edge", "emulator"}),
    "top": frozenset({"foundation", "engine", "edge", "invocation", "views", "emulator", "top"}),
}
OVERSIZED: dict[str, str] = {}
"""Modules allowed over ``MAX_LINES`` for now, each with the reason; an entry that is no longer needed fails."""
MAX_FUNCTION_LINES = 60
LONG_FUNCTIONS: dict[str, str] = {
    "bench/reconcile_bench.py::main": "a bench script's report: its flags, the three measurements and both outputs "
    "(table and make bench's JSON rows) read top to bottom as one page",
    "esa_scheduler/emulator/server.py::serve": "one parameter per `esa-scheduler emulator` flag (a third of its "
    "lines); the checks, the server's lifetime and the restore of the signal handlers it replaced are one sequence",
    "esa_scheduler/invocation/notify/message.py::compose": "the sections of one message in the order a reader sees "
    "them (alerts, recovered, changed, holds, coming up), then the title and data that count those same sections",
}
"""Functions (``file::Class.name``) allowed over ``MAX_FUNCTION_LINES``, each with the reason it reads better
whole; an entry that is no longer needed fails."""


@dataclass(frozen=True)
class Import:
    """One import statement's dependency: who imports what, and where it is written."""

    importer: str
    file: str
    line: int
    imported: str

    def where(self) -> str:
        return f"{self.file}:{self.line}"


def module_names(root: Path) -> dict[str, Path]:
    """Every module of the package under ``root``, by dotted name (a package is its ``__init__``)."""
    found = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _base(importer: str, path: Path, node: ast.ImportFrom) -> str:
    """The module a ``from`` import names, with a relative one resolved against the importer's package."""
    if not node.level:
        return node.module or ""
    package = importer.split(".") if path.name == "__init__.py" else importer.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imports_of(importer: str, path: Path, modules: dict[str, Path], root: Path) -> list[Import]:
    """Every dependency of one module on the package, wherever in the file the import is written."""
    found = []
    shown = str(path.relative_to(root))
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=shown)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _base(importer, path, node)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for target in dict.fromkeys(targets):
            if (target == PACKAGE or target.startswith(PACKAGE + ".")) and target != importer:
                found.append(Import(importer, shown, node.lineno, target))
    return sorted(found, key=lambda edge: edge.line)


def import_graph(root: Path = ROOT) -> list[Import]:
    """The dependencies of every module of the package on the package."""
    modules = module_names(root)
    return [edge for name, path in modules.items() for edge in imports_of(name, path, modules, root)]


def layer_of(module: str) -> str | None:
    """``foundation``, ``top`` or the layer folder a module is in; ``None`` for a top-level module that
    is not classified yet (it has to be, before anything can say what it may import)."""
    parts = module.split(".")
    head = parts[1] if len(parts) > 1 else "__init__"
    if head in LAYERS:
        return head
    if head in FOUNDATION:
        return "foundation"
    if head in TOP:
        return "top"
    return None


def direction_problems(graph: list[Import]) -> list[str]:
    """Each import against the directions, as ``file:line: importer (layer) imports module (layer)``."""
    problems = []
    for edge in graph:
        source, target = layer_of(edge.importer), layer_of(edge.imported)
        if source is None or target is None:
            unknown = edge.importer if source is None else edge.imported
            problems.append(f"{edge.where()}: {unknown} is in no layer (add it to FOUNDATION or TOP)")
        elif target not in MAY_IMPORT[source]:
            allowed = ", ".join(sorted(MAY_IMPORT[source]))
            problems.append(
                f"{edge.where()}: {edge.importer} ({source}) imports {edge.imported} ({target}); "
                f"{source} may import only {allowed}"
            )
    return problems


def cycle_problems(graph: list[Import]) -> list[str]:
    """Every import that closes a circle, each with the whole circle: ``a (file:line) -> b (...) -> a``.

    For each import ``a -> b``, the shortest way back from ``b`` to ``a`` (breadth first); the same
    circle found from another of its imports is reported once."""
    edges: dict[str, dict[str, Import]] = {}
    for edge in graph:
        edges.setdefault(edge.importer, {}).setdefault(edge.imported, edge)
    seen: set[frozenset[tuple[str, str]]] = set()
    problems = []
    for first in (e for targets in edges.values() for e in targets.values()):
        back = _shortest_path(edges, first.imported, first.importer)
        if back is None:
            continue
        circle = [first, *back]
        key = frozenset((e.importer, e.imported) for e in circle)
        if key in seen:
            continue
        seen.add(key)
        steps = " -> ".join(f"{e.importer} ({e.where()})" for e in circle)
        problems.append(f"import cycle: {steps} -> {first.importer}")
    return problems


def _shortest_path(edges: dict[str, dict[str, Import]], start: str, goal: str) -> list[Import] | None:
    came: dict[str, Import | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            path = []
            while (step := came[node]) is not None:
                path.append(step)
                node = step.importer
            return path[::-1]
        for target, edge in edges.get(node, {}).items():
            if target not in came:
                came[target] = edge
                queue.append(target)
    return None


def _sources(root: Path) -> list[Path]:
    """The project's Python outside tests/: the package, handler.py, bench/ and scripts/."""
    files = [*(root / PACKAGE).rglob("*.py"), *root.glob("*.py"), *(root / "bench").glob("*.py")]
    return sorted([*files, *(root / "scripts").glob("*.py")])


def oversized(root: Path = ROOT) -> dict[str, int]:
    """Every module outside tests/ over ``MAX_LINES``, with its length."""
    lengths = {str(p.relative_to(root)): len(p.read_text(encoding="utf-8").splitlines()) for p in _sources(root)}
    return {name: n for name, n in sorted(lengths.items()) if n > MAX_LINES}


def long_functions(root: Path = ROOT) -> dict[str, int]:
    """Every function outside tests/ over ``MAX_FUNCTION_LINES`` (from ``def`` to its last line, signature
    and docstring included), as ``file::Class.name`` with its length."""
    found: dict[str, int] = {}

    def visit(node: ast.AST, file: str, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                length = (child.end_lineno or child.lineno) - child.lineno + 1
                if not isinstance(child, ast.ClassDef) and length > MAX_FUNCTION_LINES:
                    found[f"{file}::{name}"] = length
                visit(child, file, f"{name}.")

    for path in _sources(root):
        shown = str(path.relative_to(root))
        visit(ast.parse(path.read_text(encoding="utf-8"), filename=shown), shown, "")
    return found


# --------------------------------------------------------------------------- the package itself


def test_every_top_level_module_is_in_a_layer() -> None:
    unclassified = sorted(name for name in module_names(ROOT) if layer_of(name) is None)
    assert not unclassified, f"classify as foundation or top (tests/test_architecture.py): {unclassified}"


def test_imports_go_one_way_down() -> None:
    problems = direction_problems(import_graph())
    assert not problems, "imports against the directions:\n" + "\n".join(problems)


def test_no_module_imports_itself_in_a_circle() -> None:
    problems = cycle_problems(import_graph())
    assert not problems, "\n".join(problems)


def test_no_module_is_over_400_lines() -> None:
    found = oversized()
    too_long = {name: n for name, n in found.items() if name not in OVERSIZED}
    assert not too_long, f"modules over {MAX_LINES} lines (split them along their concerns): {too_long}"
    stale = sorted(set(OVERSIZED) - set(found))
    assert not stale, f"no longer over {MAX_LINES} lines (or gone): remove from OVERSIZED: {stale}"


def test_every_folder_of_modules_is_a_package_the_wheel_finds() -> None:
    """pyproject.toml finds packages by their ``__init__.py``: a folder of modules without one would
    work in the editable checkout and be missing from an installed wheel."""
    folders = {path.parent for path in (ROOT / PACKAGE).rglob("*.py") if "__pycache__" not in path.parts}
    missing = sorted(str(f.relative_to(ROOT)) for f in folders if not (f / "__init__.py").is_file())
    assert not missing, f"folders of modules without __init__.py (left out of the wheel): {missing}"


def test_a_function_over_60_lines_is_the_exception_with_a_reason() -> None:
    found = long_functions()
    too_long = {name: n for name, n in found.items() if name not in LONG_FUNCTIONS}
    assert not too_long, (
        f"functions over {MAX_FUNCTION_LINES} lines (split them, or name them in LONG_FUNCTIONS with the reason "
        f"they read better whole): {too_long}"
    )
    stale = sorted(set(LONG_FUNCTIONS) - set(found))
    assert not stale, f"no longer over {MAX_FUNCTION_LINES} lines (or gone): remove from LONG_FUNCTIONS: {stale}"


# --------------------------------------------------------------------------- the checks can fail


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in {"esa_scheduler/__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / "__init__.py").touch()
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def test_a_lazy_or_type_checking_import_against_the_directions_is_named_by_file_and_line(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "esa_scheduler/engine/plan.py": """\
                from typing import TYPE_CHECKING
                if TYPE_CHECKING:
                    from esa_scheduler.invocation.store import Store
                def run():
                    from ..edge import client
            """,
            "esa_scheduler/invocation/store.py": "from esa_scheduler.engine import plan\n",
            "esa_scheduler/edge/client.py": "import esa_scheduler.views.table\n",
            "esa_scheduler/views/table.py": "",
            "esa_scheduler/config.py": "from esa_scheduler.engine.plan import run\n",
            "esa_scheduler/newthing.py": "",
        },
    )
    problems = direction_problems(import_graph(root))
    assert problems == [
        "esa_scheduler/config.py:1: esa_scheduler.config (foundation) imports esa_scheduler.engine.plan (engine); "
        "foundation may import only foundation",
        "esa_scheduler/edge/client.py:1: esa_scheduler.edge.client (edge) imports esa_scheduler.views.table "
        "(views); edge may import only edge, foundation",
        "esa_scheduler/engine/plan.py:3: esa_scheduler.engine.plan (engine) imports esa_scheduler.invocation.store "
        "(invocation); engine may import only engine, foundation",
        "esa_scheduler/engine/plan.py:5: esa_scheduler.engine.plan (engine) imports esa_scheduler.edge.client "
        "(edge); engine may import only engine, foundation",
    ]
    assert [name for name in module_names(root) if layer_of(name) is None] == ["esa_scheduler.newthing"]


def test_every_cycle_is_reported_with_its_path(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "esa_scheduler/engine/a.py": "from . import b\n",
            "esa_scheduler/engine/b.py": "x = 1\nfrom esa_scheduler.engine.c import thing\n",
            "esa_scheduler/engine/c.py": "def f():\n    from .a import g\n",
            "esa_scheduler/engine/d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .e import E\n",
            "esa_scheduler/engine/e.py": "from esa_scheduler.engine import d\n",
            "esa_scheduler/engine/f.py": "from esa_scheduler.engine import a, d\n",
        },
    )
    assert cycle_problems(import_graph(root)) == [
        "import cycle: esa_scheduler.engine.a (esa_scheduler/engine/a.py:1) -> esa_scheduler.engine.b "
        "(esa_scheduler/engine/b.py:2) -> esa_scheduler.engine.c (esa_scheduler/engine/c.py:2) "
        "-> esa_scheduler.engine.a",
        "import cycle: esa_scheduler.engine.d (esa_scheduler/engine/d.py:3) -> esa_scheduler.engine.e "
        "(esa_scheduler/engine/e.py:1) -> esa_scheduler.engine.d",
    ]


@pytest.mark.parametrize("lines", [MAX_LINES, MAX_LINES + 1])
def test_a_module_over_400_lines_is_found(tmp_path: Path, lines: int) -> None:
    root = _tree(tmp_path, {"esa_scheduler/engine/big.py": "x = 1\n" * lines, "bench/b.py": "y = 2\n" * lines})
    expected = {"bench/b.py": lines, "esa_scheduler/engine/big.py": lines} if lines > MAX_LINES else {}
    assert oversized(root) == expected


@pytest.mark.parametrize("lines", [MAX_FUNCTION_LINES, MAX_FUNCTION_LINES + 1])
def test_a_function_over_60_lines_is_found_by_its_class_and_name(tmp_path: Path, lines: int) -> None:
    body = ["x = 1"] * (lines - 1)  # after the def line
    module = [
        "def long():",
        *(f"    {line}" for line in body),
        "class Outer:",
        "    def short(self):",
        "        pass",
        "    async def long(self):",
        *(f"        {line}" for line in body),
    ]
    root = _tree(tmp_path, {"esa_scheduler/engine/fns.py": "\n".join(module) + "\n"})
    expected = {"esa_scheduler/engine/fns.py::long": lines, "esa_scheduler/engine/fns.py::Outer.long": lines}
    assert long_functions(root) == (expected if lines > MAX_FUNCTION_LINES else {})
