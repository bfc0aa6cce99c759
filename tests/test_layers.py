"""The layers, read statically: ``reports -> neural -> mdm_exact``, never back, and no import cycle.

The import graph is read with :mod:`ast` from every ``.py`` file under ``mdm_exact/``,
``neural/`` and ``reports/``, with every import statement wherever it is (module level, inside
functions, under ``if TYPE_CHECKING``), so a lazy import cannot hide an upward dependency.
An edge goes from a module to the module it names: ``from a.b import c`` is an edge to
``a.b.c`` if that is a module of the tree, else to ``a.b``; the parent packages that Python
imports on the way are not edges (every module would otherwise be in a cycle with its package).
The checker itself is tested on small synthetic trees with planted violations.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("mdm_exact", "neural", "reports")

#: layer -> top-level names it must never import
FORBIDDEN = {
    "mdm_exact": ("neural", "reports", "torch", "matplotlib"),
    "neural": ("reports",),
}


def modules_of(root: Path, packages=PACKAGES) -> dict:
    """``{module name: (path, is_package)}`` of every ``.py`` file under ``root/<package>``."""
    found = {}
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            is_pkg = parts[-1] == "__init__"
            if is_pkg:
                parts = parts[:-1]
            found[".".join(parts)] = (path, is_pkg)
    return found


def _resolve(module: str, is_pkg: bool, level: int, name: str | None) -> str:
    """The absolute module of ``from <.. level dots><name> import ...`` inside ``module``."""
    if level == 0:
        return name or ""
    base = module.split(".") if is_pkg else module.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def import_graph(root: Path, packages=PACKAGES) -> dict:
    """``{module: {imported module name: first line number}}`` (internal and external names)."""
    mods = modules_of(root, packages)
    graph = {}
    for mod, (path, is_pkg) in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        edges = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    edges.setdefault(alias.name, node.lineno)
            elif isinstance(node, ast.ImportFrom):
                target = _resolve(mod, is_pkg, node.level, node.module)
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    edges.setdefault(sub if sub in mods else target, node.lineno)
            elif isinstance(node, ast.Call) and _is_dynamic_import(node):
                edges.setdefault(node.args[0].value, node.lineno)
        edges.pop(mod, None)
        graph[mod] = edges
    return graph


def _is_dynamic_import(node: ast.Call) -> bool:
    """``importlib.import_module("literal")`` or ``__import__("literal")``."""
    f = node.func
    named = (isinstance(f, ast.Attribute) and f.attr == "import_module") or (isinstance(f, ast.Name) and f.id in ("import_module", "__import__"))
    return named and bool(node.args) and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)


def upward_imports(graph: dict, forbidden=FORBIDDEN) -> list:
    """``(module, imported, line)`` for every import a layer must not make."""
    bad = []
    for mod, edges in graph.items():
        banned = forbidden.get(mod.split(".")[0], ())
        for target, line in edges.items():
            if target.split(".")[0] in banned:
                bad.append((mod, target, line))
    return sorted(bad)


def import_cycles(graph: dict) -> list:
    """Strongly connected components of the internal graph that are cycles (sorted lists)."""
    nodes = set(graph)
    succ = {m: sorted(t for t in edges if t in nodes) for m, edges in graph.items()}
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):  # Tarjan, iteratively (no recursion limit on deep graphs)
        work = [(v, iter(succ[v]))]
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        while work:
            node, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(succ[w])))
                    break
                if w in on_stack:
                    low[node] = min(low[node], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == node:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return sorted(out)


# --------------------------------------------------------------------------- the project


@pytest.fixture(scope="module")
def graph():
    return import_graph(ROOT)


def test_the_graph_sees_lazy_imports(graph):
    """Sanity: the reader finds imports inside functions, so the other tests mean something."""
    assert "mdm_exact.sampler.exact" in graph["mdm_exact.runtime.kinds"]  # imported inside kind_exact
    assert "reports.build" in graph["reports.plugin"]  # imported inside the handler
    assert len(graph) > 50


def test_no_layer_imports_a_layer_above_it(graph):
    bad = upward_imports(graph)
    assert not bad, "upward imports (module, imported, line):\n" + "\n".join(map(str, bad))


def test_no_import_cycles(graph):
    cycles = import_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


# --------------------------------------------------------------------------- the checker itself


def _tree(tmp_path, files: dict) -> Path:
    for rel, text in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return tmp_path


CLEAN = {
    "mdm_exact/__init__.py": "",
    "mdm_exact/core.py": "import numpy as np\n",
    "mdm_exact/sub/__init__.py": "",
    "mdm_exact/sub/a.py": "from . import b\nfrom ..core import np\n",
    "mdm_exact/sub/b.py": "import mdm_exact.core\n",
    "neural/__init__.py": "",
    "neural/net.py": "import torch\nfrom mdm_exact.sub import a\n",
    "reports/__init__.py": "",
    "reports/fig.py": "import matplotlib\nfrom neural import net\n",
}


def test_checker_passes_a_clean_tree(tmp_path):
    g = import_graph(_tree(tmp_path, CLEAN))
    assert upward_imports(g) == [] and import_cycles(g) == []
    assert set(g["mdm_exact.sub.a"]) == {"mdm_exact.sub.b", "mdm_exact.core"}  # relative imports resolved


@pytest.mark.parametrize(
    "rel, text, want",
    [
        ("mdm_exact/core.py", "def f():\n    import neural.net\n", ("mdm_exact.core", "neural.net", 2)),
        ("mdm_exact/core.py", "def f():\n    from reports import fig\n", ("mdm_exact.core", "reports.fig", 2)),
        ("mdm_exact/core.py", "try:\n    import torch\nexcept ImportError:\n    pass\n", ("mdm_exact.core", "torch", 2)),
        ("mdm_exact/sub/b.py", "import importlib\ndef f():\n    importlib.import_module('matplotlib.pyplot')\n",
         ("mdm_exact.sub.b", "matplotlib.pyplot", 3)),
        ("neural/net.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import reports.fig\n",
         ("neural.net", "reports.fig", 3)),
    ],
)
def test_checker_finds_a_planted_upward_import(tmp_path, rel, text, want):
    g = import_graph(_tree(tmp_path, {**CLEAN, rel: text}))
    assert want in upward_imports(g)


def test_checker_finds_a_planted_cycle_through_a_lazy_import(tmp_path):
    files = {**CLEAN, "mdm_exact/core.py": "def f():\n    from mdm_exact.sub.a import x\n"}
    g = import_graph(_tree(tmp_path, files))
    assert import_cycles(g) == [["mdm_exact.core", "mdm_exact.sub.a", "mdm_exact.sub.b"]]
    files["reports/other.py"] = "import reports.fig\n"
    files["reports/fig.py"] = "from reports import other\n"
    g = import_graph(_tree(tmp_path, files))
    assert ["reports.fig", "reports.other"] in import_cycles(g)
