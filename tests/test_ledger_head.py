"""A ledger at head is opened without alembic: the head read from the migration files is alembic's own."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ledger.migrate import file_head, head_revision, upgrade

from .processes import REPO, base_env

pytestmark = pytest.mark.timeout(120)

OPEN_AND_LIST = """
import sys
from ledger.store import Ledger
Ledger(sys.argv[1]).runs.list_runs(limit=1)
print(sorted(m for m in sys.modules if m.split(".")[0] == "alembic"))
"""


def test_the_files_name_the_head_alembic_finds() -> None:
    assert file_head() == head_revision()


def test_a_ledger_at_head_is_opened_and_read_without_importing_alembic(empty_ledger_url: str) -> None:
    upgrade(empty_ledger_url)
    res = subprocess.run([sys.executable, "-c", OPEN_AND_LIST, empty_ledger_url], env=base_env(), cwd=REPO,
                         capture_output=True, text=True, timeout=100)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


def test_an_empty_ledger_is_still_migrated_by_alembic(empty_ledger_url: str) -> None:
    res = subprocess.run([sys.executable, "-c", OPEN_AND_LIST, empty_ledger_url], env=base_env(), cwd=REPO,
                         capture_output=True, text=True, timeout=100)
    assert res.returncode == 0, res.stderr
    assert "alembic" in res.stdout  # the locked path: alembic created the schema
