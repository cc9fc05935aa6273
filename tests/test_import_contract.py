"""The floor plan as a contract: import-linter checks the packages' layers (pyproject.toml, [tool.importlinter]).

The layers are docs/architecture.md's table: cli > scheduler > workers >
online > runs > judges | ledger > judgeq. A higher layer may import a lower
one; an import the other way, direct or through a chain, lazy or type-only,
breaks the contract and this test. The second test shows the check bites on
this code: the same packages with two layers swapped are reported broken.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.timeout(120)


def _lint(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT), "--config", str(config), "--no-cache"], cwd=REPO, capture_output=True,
                          text=True, timeout=100)


def test_the_packages_keep_their_layers() -> None:
    res = _lint(REPO / "pyproject.toml")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "1 kept, 0 broken" in res.stdout


def test_an_arrow_against_the_layers_is_reported(tmp_path: Path) -> None:
    swapped = tmp_path / "swapped.toml"
    swapped.write_text(
        '[tool.importlinter]\nroot_packages = ["runs", "online"]\n\n'
        '[[tool.importlinter.contracts]]\nname = "runs above online (wrong)"\ntype = "layers"\n'
        'layers = ["runs", "online"]\n')
    res = _lint(swapped)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "BROKEN" in res.stdout and "online." in res.stdout and "-> runs" in res.stdout
