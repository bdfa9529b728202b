"""The package's import structure: every module imports, the module-level import graph of ``qmlapp`` has
no cycles, the UI sits on top, and the service layer stays light (no TensorFlow, no Streamlit)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Not importable on their own: the CLI's entry point runs the CLI, Alembic's env.py needs Alembic's context.
NOT_IMPORTED = {"qmlapp.__main__", "db.migrations.env"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules(*packages: str) -> dict[str, Path]:
    return {_module_name(p): p for pkg in packages for p in sorted((ROOT / pkg).rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.Module, module_level: bool) -> list[ast.Import | ast.ImportFrom]:
    """Import statements executed when the module is imported (``module_level``: also those in top-level
    ``if``/``try`` blocks, not under ``TYPE_CHECKING``), or every import statement in the file."""
    if not module_level:
        return [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    out: list[ast.Import | ast.ImportFrom] = []
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.append(node)
        elif isinstance(node, ast.If) and not _is_type_checking(node):
            pending.extend(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            pending.extend(node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body])
    return out


def import_graph(modules: dict[str, Path], module_level: bool = True) -> dict[str, set[str]]:
    """Module → the modules of ``modules`` it imports (``from pkg import mod`` counts as importing ``pkg.mod``)."""

    def owner(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps: set[str] = set()
        for node in _import_nodes(ast.parse(path.read_text(), str(path)), module_level):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            deps.update(d for t in targets if (d := owner(t)) is not None and d != name)
        graph[name] = deps
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path (first node repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return [*path[path.index(dep):], dep]
            if dep not in state and (cycle := visit(dep)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)) is not None:
            return cycle
    return None


def test_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_every_module_imports() -> None:
    names = sorted(set(_modules("qmlapp", "db")) - NOT_IMPORTED)
    code = ("import importlib, sys, traceback\n"
            "failed = []\n"
            f"for name in {names!r}:\n"
            "    try:\n"
            "        importlib.import_module(name)\n"
            "    except Exception:\n"
            "        failed.append(name + ': ' + traceback.format_exc(limit=3))\n"
            "print('\\n'.join(failed))\n"
            "sys.exit(1 if failed else 0)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]


def test_module_level_imports_of_qmlapp_have_no_cycle() -> None:
    graph = import_graph(_modules("qmlapp"))
    assert graph["qmlapp.worker"] >= {"qmlapp.services", "qmlapp.registry"}  # the parser sees real edges
    assert find_cycle(graph) is None, " → ".join(find_cycle(graph) or [])


def test_the_service_layer_never_imports_its_callers() -> None:
    """Not even inside a function: services, registry and sweeps sit below the worker, the Dask dispatcher,
    the CLI and the UI."""
    graph = import_graph(_modules("qmlapp"), module_level=False)
    for low in ("qmlapp.services", "qmlapp.registry"):
        reachable: set[str] = set()
        todo = [low]
        while todo:
            for dep in graph[todo.pop()] - reachable:
                reachable.add(dep)
                todo.append(dep)
        callers = {"qmlapp.worker", "qmlapp.distributed", "qmlapp.sweeps", "qmlapp.cli", low}
        assert not reachable & callers, f"{low} reaches {sorted(reachable & callers)}"
    outside_ui = {m: deps for m, deps in graph.items() if not m.startswith("qmlapp.ui")}
    offenders = sorted(m for m, deps in outside_ui.items() if any(d.startswith("qmlapp.ui") for d in deps))
    assert offenders == [], f"only the UI may import the UI: {offenders}"


def test_registry_services_and_sweeps_import_neither_tensorflow_nor_streamlit() -> None:
    code = ("import sys, qmlapp.registry, qmlapp.services, qmlapp.sweeps; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'tensorflow_quantum', 'streamlit'}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         timeout=300)
    assert out.stdout.strip() == "[]"
