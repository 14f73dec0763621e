"""The tree says how the library is built: one package per stage with the same surface, small modules and
functions, and no import cycle (imports inside functions included: a cycle hidden there is still a cycle)."""
from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from recsys import build

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "recsys"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
STAGE_PACKAGES = ("ingest", "aggregates", "rules", "model", "index", "products", "evaluation")


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(LIBRARY.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project modules it imports (anywhere in the file), plus the packages Python initialises on
    the way (importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__`` first)."""
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("recsys"):
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    targets.add(sub if sub in modules else node.module)
            elif isinstance(node, ast.Import):
                targets.update(a.name for a in node.names if a.name.startswith("recsys"))
        for t in list(targets):
            parts = t.split(".")
            targets.update(".".join(parts[:i]) for i in range(2, len(parts)))
        edges[name] = {t for t in targets if t in modules and t != name and not name.startswith(t + ".")}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        x = stack.pop()
                        on.discard(x)
                        comp.append(x)
                        if x == v:
                            break
                    if len(comp) > 1:
                        found.append(sorted(comp))
            elif w not in index:
                index[w] = low[w] = len(index)
                stack.append(w)
                on.add(w)
                work.append((w, iter(sorted(edges[w]))))
            elif w in on:
                low[v] = min(low[v], index[w])
    return found


def test_the_cycle_finder_finds_a_known_cycle_and_passes_a_chain():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_the_library_has_no_import_cycle():
    assert cycles(import_graph(_modules())) == []


@pytest.mark.parametrize("package", STAGE_PACKAGES)
def test_every_stage_package_builds_and_loads_through_the_same_surface(package):
    import importlib
    mod = importlib.import_module(f"recsys.{package}")
    assert callable(mod.build) and callable(mod.load), f"recsys.{package} must export build() and load()"
    params = list(inspect.signature(mod.build).parameters.values())
    assert params[0].name == "root"
    kw = {p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}
    if package != "ingest":  # the events stage also takes its input paths
        assert {"force", "progress"} <= kw, f"recsys.{package}.build(root, *, force, progress, ...)"


def test_the_build_runs_each_derived_stage_through_its_package():
    assert [s.name for s in build.STAGES] == list(STAGE_PACKAGES[1:])
    for spec in build.STAGES:
        assert spec.target == f"recsys.{spec.name}:build"
        assert spec.function() is __import__(f"recsys.{spec.name}", fromlist=["build"]).build


def test_modules_and_functions_stay_small():
    long_modules, long_functions = {}, {}
    for path in [*LIBRARY.rglob("*.py"), *(ROOT / "ui").rglob("*.py"), *(ROOT / "pages").glob("*.py"),
                 ROOT / "app.py"]:
        text = path.read_text()
        name = str(path.relative_to(ROOT))
        if text.count("\n") > MAX_MODULE_LINES:
            long_modules[name] = text.count("\n")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long_functions[f"{name}:{node.name}"] = n
    assert not long_modules, f"split these modules (over {MAX_MODULE_LINES} lines): {long_modules}"
    assert not long_functions, f"split these functions (over {MAX_FUNCTION_LINES} lines): {long_functions}"
