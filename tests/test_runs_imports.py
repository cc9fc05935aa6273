"""runs/ and online/ sit below the Celery adapter: neither imports workers/, and runs/ imports neither online/ nor the CLI.

Every import statement counts, at module level, inside functions and under
``TYPE_CHECKING`` alike (as in tests/test_judges_imports.py), so a lazy import
cannot hide an arrow the wrong way. The arrows docs/architecture.md draws:
``scheduler -> online -> runs -> judges, ledger`` and ``workers -> runs, online``; every part may import
the error root, ``judgeq.errors``.
"""

from __future__ import annotations

import graphlib
from pathlib import Path

import pytest

from tests.test_judges_imports import imported, module_name

pytestmark = pytest.mark.timeout(30)

REPO = Path(__file__).parents[1]
PARTS = ("judgeq", "judges", "ledger", "runs", "online", "workers", "scheduler")


def arrows() -> dict[str, dict[str, list[str]]]:
    """Package -> the other judgeq packages it imports -> the modules that import them."""
    found: dict[str, dict[str, list[str]]] = {part: {} for part in PARTS}
    for part in PARTS:
        for path in sorted((REPO / part).rglob("*.py")):
            for name in imported(path, set()):
                top = name.split(".")[0]
                if top in PARTS and top != part:
                    found[part].setdefault(top, []).append(module_name(path))
    return found


def test_the_walk_sees_lazy_and_type_only_imports() -> None:
    # The parser must see what the rules are about, or the tests below prove nothing.
    found = arrows()
    assert "workers.tasks" in found["workers"]["online"]  # online.tick, imported inside a task
    assert "online.job" in found["online"]["runs"]


@pytest.mark.parametrize(("part", "allowed"), [
    ("runs", {"judgeq", "judges", "ledger"}),
    ("online", {"judgeq", "judges", "ledger", "runs"}),
    ("workers", {"judgeq", "judges", "ledger", "runs", "online"}),
])
def test_a_part_imports_only_the_parts_below_it(part: str, allowed: set[str]) -> None:
    wrong = {other: modules for other, modules in arrows()[part].items() if other not in allowed}
    assert wrong == {}, f"{part}/ imports {sorted(wrong)} (from {wrong})"


def test_the_parts_import_each_other_in_no_circle() -> None:
    graph = {part: set(others) for part, others in arrows().items()}
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        raise AssertionError(f"packages import in a circle: {' -> '.join(exc.args[1])}") from None
