"""The shape of the code: modules import each other without cycles, routes never import
the composition root, and idle reclaim lives beside the reconciler, not in the monitor."""

from __future__ import annotations

import ast
from pathlib import Path

import service

ROOT = Path(service.__file__).parent


def module_imports() -> dict[str, set[str]]:
    """Each module of ``service`` and the ``service`` modules it imports (also those only
    imported for type checking: a cycle there still ties the two together)."""
    modules = {
        ".".join(p.relative_to(ROOT.parent).with_suffix("").parts).removesuffix(".__init__"): p
        for p in ROOT.rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    found.add(full if full in modules else node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that import each other, directly or round about."""
    reach = {name: set(deps) for name, deps in graph.items()}
    changed = True
    while changed:
        changed = False
        for deps in reach.values():
            more = set().union(*(reach[d] for d in deps)) - deps
            if more:
                deps |= more
                changed = True
    groups = {
        frozenset([n, *(d for d in reach[n] if n in reach[d])]) for n in reach if n in reach[n]
    }
    return sorted(sorted(g) for g in groups)


def test_no_module_imports_itself_round_about() -> None:
    assert cycles(module_imports()) == []


def test_the_cycle_finder_finds_one() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_routes_never_import_the_composition_root() -> None:
    graph = module_imports()
    routes = [name for name in graph if name.startswith("service.api.")]
    assert routes and all("service.app" not in graph[name] for name in routes)


def test_idle_reclaim_runs_beside_the_reconciler_not_in_the_monitor() -> None:
    monitor = (ROOT / "monitoring" / "monitor.py").read_text()
    assert "reclaim_idle" not in monitor and "def _reclaim" not in monitor
    assert "IdleReclaim(" in (ROOT / "app.py").read_text()


def test_the_core_is_grouped_by_what_it_holds() -> None:
    """``service/core`` holds sub-packages named for what they hold, no flat modules; and no
    module shares a name with the ``workers/`` or ``images/`` folders or the database package."""
    core = ROOT / "core"
    assert sorted(p.name for p in core.glob("*.py")) == ["__init__.py"]
    groups = sorted(p.name for p in core.iterdir() if (p / "__init__.py").exists())
    assert groups == ["capacity", "control", "identity", "sharing", "workloads"]
    colliding = {"store", "workers", "images"}
    names = {p.stem for p in ROOT.rglob("*.py") if p.parent.name != "api"}
    assert names.isdisjoint(colliding), names & colliding
