"""The import graph of ``src/verbnoun``, built with ``ast``: no cycles, nothing imports the CLI.

Every ``import`` counts, at module level or inside a function (a lazy import is still a
dependency), ``TYPE_CHECKING`` blocks included. One edge is left out on purpose: the root
package's ``__getattr__`` that imports the notebook API (``verbnoun.api``) on first use, so that
``from verbnoun import __version__`` stays light; it is a facade over everything, not a
dependency of anything.
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = "verbnoun"
# modules that only declare option types shared by the command modules
OPTION_MODULES = {"verbnoun.cli_options"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SRC / ROOT).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _target(name: str, modules: dict[str, Path]) -> str | None:
    """The module of ours that importing ``name`` runs (the longest known prefix)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [_target(alias.name, modules) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    origin = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    origin = node.module or ""
                # ``from a import b`` imports the module a.b when there is one, else a
                targets = [
                    f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in modules
                    else _target(origin, modules)
                    for alias in node.names
                ]  # fmt: skip
            else:
                continue
            edges.update(t for t in targets if t is not None and t != name)
        graph[name] = edges
    graph[ROOT] = set()  # the lazy notebook-API facade (see the module's docstring)
    return graph


def _is_cli(name: str) -> bool:
    return name.rpartition(".")[2].startswith("cli")


def test_the_graph_is_read_from_the_sources():
    graph = import_graph()
    assert len(graph) > 100
    assert "verbnoun.runs" in graph["verbnoun.evaluate.runner"]
    assert "verbnoun.runs" in graph["verbnoun.annotate.runner"]
    assert "verbnoun.interpret.lexicon" in graph["verbnoun.interpret.open_vocab"]


def test_a_cycle_is_found_and_named():
    with pytest.raises(CycleError) as found:
        tuple(TopologicalSorter({"a": {"b"}, "b": {"c"}, "c": {"a"}}).static_order())
    assert set(found.value.args[1]) == {"a", "b", "c"}


def test_no_import_cycles():
    try:
        tuple(TopologicalSorter(import_graph()).static_order())
    except CycleError as cycle:
        pytest.fail("import cycle: " + " -> ".join(cycle.args[1]))


@pytest.mark.slow
def test_no_module_imports_a_command_module():
    graph = import_graph()
    wrong = sorted(
        f"{name} -> {target}"
        for name, targets in graph.items()
        for target in targets
        if _is_cli(target) and name != "verbnoun.cli" and target not in OPTION_MODULES
    )
    assert not wrong, "imports of command modules: " + ", ".join(wrong)
