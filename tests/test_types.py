"""The packages type-check (STYLE.md: a typed public surface, mypy clean)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .processes import REPO

pytestmark = pytest.mark.timeout(240)


def test_mypy_is_clean() -> None:
    res = subprocess.run([sys.executable, "-m", "mypy", "scheduler", "workers", "judges", "ledger", "online"],
                         cwd=REPO, capture_output=True, text=True, timeout=230)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
