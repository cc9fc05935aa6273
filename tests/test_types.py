"""The packages type-check (a typed public surface, mypy clean).

mypy takes a minute or more of one core, so it is not a test: ``scripts/test``
(README's test command) runs it beside the suite and fails when it fails.
These tests keep that so: every package is in ``[tool.mypy] files``, and the
script, run with stand-ins for Python, runs mypy and passes its failure on.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from .processes import REPO

#: Stands in for python3 and .venv/bin/python: records its arguments, exits as FAIL_<module> says.
STUB = """#!/usr/bin/env bash
echo "$*" >> "$STUB_LOG"
if [ "$1 $2" = "-m venv" ]; then mkdir -p "$3/bin" && cp "$0" "$3/bin/python"; exit 0; fi
var="FAIL_$2"; exit "${!var:-0}"
"""


def test_mypy_checks_every_package() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages = {pattern.rstrip("*") for pattern in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages and set(pyproject["tool"]["mypy"]["files"]) == packages


def run_script(tmp_path: Path, **fail: int) -> tuple[int, list[str]]:
    (tmp_path / "scripts").mkdir(exist_ok=True)
    for script in ("test", "system-packages"):  # the test command installs the tests' programs first
        shutil.copy(REPO / "scripts" / script, tmp_path / "scripts" / script)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "python3").write_text(STUB)
    (bin_dir / "python3").chmod(0o755)
    shutil.rmtree(tmp_path / ".venv", ignore_errors=True)
    log = tmp_path / "calls.log"
    log.unlink(missing_ok=True)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", STUB_LOG=str(log),
               **{f"FAIL_{module}": str(code) for module, code in fail.items()})
    res = subprocess.run(["bash", str(tmp_path / "scripts" / "test"), "-x"], env=env, capture_output=True,
                         text=True, timeout=30)
    return res.returncode, log.read_text().splitlines()


def test_the_test_command_runs_mypy_beside_the_suite(tmp_path: Path) -> None:
    code, calls = run_script(tmp_path)
    assert code == 0
    assert "-m mypy" in calls  # no paths: the packages are [tool.mypy] files
    assert "-m pytest -n 4 --dist worksteal --durations=25 -x" in calls  # the script's arguments go to pytest


@pytest.mark.parametrize("fail", [{"mypy": 1}, {"pytest": 1}, {"mypy": 1, "pytest": 1}])
def test_the_test_command_fails_when_mypy_or_the_suite_fails(tmp_path: Path, fail: dict[str, int]) -> None:
    code, calls = run_script(tmp_path, **fail)
    assert code != 0
    assert "-m mypy" in calls and "-m pytest -n 4 --dist worksteal --durations=25 -x" in calls  # both ran to the end
