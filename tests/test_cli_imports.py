"""cli/ is the front door and nothing else's dependency: no other part imports it, and no command imports main.

``cli.main`` imports the command modules and registers their commands; a
command or view importing ``cli.main`` back would close the circle the
package was built to break. Every import statement counts, lazy and
type-only ones included (``tests/test_judges_imports.py`` reads them).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .test_judges_imports import imported

pytestmark = pytest.mark.timeout(30)

REPO = Path(__file__).parents[1]
BELOW = ("judgeq", "scheduler", "online", "workers", "judges", "ledger")


def test_no_other_part_imports_the_cli() -> None:
    found = {str(path.relative_to(REPO)): sorted(n for n in imported(path, set()) if n.split(".")[0] == "cli")
             for part in BELOW for path in (REPO / part).rglob("*.py")}
    assert {path: names for path, names in found.items() if names} == {}


def test_commands_and_views_never_import_main() -> None:
    modules = [*(REPO / "cli" / "commands").glob("*.py"), *(REPO / "cli" / "views").glob("*.py")]
    assert modules and "cli.state" in imported(REPO / "cli" / "commands" / "offline.py", set())  # the parser sees
    offenders = {str(path.relative_to(REPO)) for path in modules if "cli.main" in imported(path, {"cli.main"})}
    assert offenders == set()


def test_only_the_cli_renders() -> None:
    """No part below cli/ imports rich: tables and bars are views (cli/views), which scheduler's workflows reach
    through the ``scheduler.reporting.Reporter`` their command passes."""
    assert "rich.table" in imported(REPO / "cli" / "views" / "report.py", set())  # the parser sees lazy imports
    found = {str(path.relative_to(REPO)): sorted(n for n in imported(path, set()) if n.split(".")[0] == "rich")
             for part in BELOW for path in (REPO / part).rglob("*.py")}
    assert {path: names for path, names in found.items() if names} == {}
