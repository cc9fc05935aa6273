"""judgeq's errors are one tree under ``judgeq.errors.JudgeqError``, drawn in that module's docstring.

``tests/test_exit_codes.py`` checks what the CLI makes of them; here the
tree itself: no error class outside it, and the drawing's exit codes are the
classes' own, so neither can drift from the other.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import re
from pathlib import Path

import judgeq.errors
from judgeq.errors import JudgeqError

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("judgeq", "cli", "scheduler", "workers", "judges", "ledger", "online", "runs")
ERROR_MODULES = ("judgeq.errors", "scheduler.errors", "judges.errors", "online.errors", "ledger.errors",
                 "runs.errors", "workers.errors")
BUILTIN_ERRORS = {name for name, value in vars(builtins).items()
                  if isinstance(value, type) and issubclass(value, BaseException)}


def _base_name(node: ast.expr) -> str:
    return node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""


def test_every_error_class_has_a_base_of_judgeq() -> None:
    """A class built on Python's exceptions alone would be a second root; only JudgeqError may be one."""
    roots = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.ClassDef):
                    bases = [_base_name(b) for b in node.bases]
                    if bases and all(b in BUILTIN_ERRORS for b in bases):
                        roots.append(f"{path.relative_to(REPO)} {node.name}")
    assert roots == ["judgeq/errors.py JudgeqError"]


def test_each_package_base_is_under_the_root() -> None:
    from judges.errors import JudgeError
    from ledger.errors import LedgerError
    from online.errors import OnlineError
    from scheduler.errors import SchedulerError
    from runs.errors import BrokerError

    for base in (SchedulerError, JudgeError, OnlineError, LedgerError, BrokerError):
        assert issubclass(base, JudgeqError), base


def test_the_drawing_says_each_class_s_own_exit_code() -> None:
    classes: dict[str, type[JudgeqError]] = {}
    for name in ERROR_MODULES:
        module = importlib.import_module(name)
        classes.update({k: v for k, v in vars(module).items() if isinstance(v, type) and issubclass(v, JudgeqError)})
    drawn = {}
    for line in (judgeq.errors.__doc__ or "").splitlines():
        found = re.match(r"[\s│├└─]*([\w.]+)\s.*→ (\d)\s*$", line)
        if found and found.group(1).rsplit(".", 1)[-1] in classes:
            drawn[found.group(1).rsplit(".", 1)[-1]] = int(found.group(2))
    assert len(drawn) >= 30, drawn  # the drawing was read
    assert {name: classes[name].exit_code for name in drawn} == drawn
