"""judges/ imports one way: its modules form a graph without a cycle, and it imports no other part of judgeq.

Every import statement counts, at module level, inside functions and under
``TYPE_CHECKING`` alike, so the order in docs/architecture.md holds for a
reader as well as for the interpreter, and a lazy import cannot hide a cycle.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(30)

PACKAGE = Path(__file__).parents[1] / "judges"
OTHER_PARTS = ("ledger", "workers", "online", "runs", "scheduler", "cli", "benchmarks")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, known: set[str]) -> set[str]:
    """The modules ``path`` imports, as absolute names (a submodule named in ``from . import x`` included)."""
    own = module_name(path)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in known)
    return names


def import_graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    known = {module_name(path) for path in paths}
    return {module_name(path): imported(path, known) for path in paths}


def test_the_graph_sees_lazy_and_type_only_imports() -> None:
    # The parser must see what the rule is about, or the test below proves nothing.
    graph = import_graph()
    assert "judges.llm" in graph["judges.types.llm"]  # imported inside the LLM type's build
    assert "judges.spec" in graph["judges.egress"]  # imported under TYPE_CHECKING
    assert "judges.local" in graph["judges.catalog"]  # ``from . import local``


def test_judges_imports_form_no_cycle() -> None:
    graph = import_graph()
    internal = {module: {name for name in names if name in graph and name != module} for module, names in graph.items()}
    try:
        order = list(graphlib.TopologicalSorter(internal).static_order())
    except graphlib.CycleError as exc:
        raise AssertionError(f"judges/ imports in a circle: {' -> '.join(exc.args[1])}") from None
    position = {module: index for index, module in enumerate(order)}
    # The order docs/architecture.md states: registering below the builtins, lookups above them, building on top.
    assert position["judges.registry"] < position["judges.local"] < position["judges.catalog"] < position["judges.spec"]
    assert position["judges.code_version"] < position["judges.version"] < position["judges.resolved"]
    # Judge types: the entry's shape below every entry, the entries below their lookups, which version,
    # resolved judges, the config and the builder use; an entry sees those only through its arguments.
    entries = [module for module in graph if module.startswith("judges.types.") and module != "judges.types.entry"]
    assert entries
    for entry in entries:
        assert position["judges.types.entry"] < position[entry] < position["judges.types"]
    assert position["judges.types"] < position["judges.version"] < position["judges.resolved"] < position["judges.config"]
    above = {"judges.types", "judges.version", "judges.resolved", "judges.config", "judges.build"}
    assert not {module: names & above for module in entries if (names := internal[module]) & above}
    assert not [module for module, names in internal.items() if "judges.build" in names]  # nothing builds below the top


def test_judges_imports_no_other_part_of_judgeq() -> None:
    offenders = {
        module: sorted(name for name in names if name.split(".")[0] in OTHER_PARTS)
        for module, names in import_graph().items()
    }
    assert {module: names for module, names in offenders.items() if names} == {}
