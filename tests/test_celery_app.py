"""``celery -A scheduler.celery_app``: Celery's own command line reaches a real judgeq worker through real Redis.

Celery's ``-A`` takes an app object, never a factory (see the module's docstring), so
``scheduler.celery_app`` builds one from the environment at import; these tests run
Celery's CLI as an operator would, in a process of its own, beside a ``judgeq worker``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from workers.dispatch import TASK_NAME

from .processes import Worker, base_env

pytestmark = pytest.mark.timeout(180)


def celery(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``celery -A scheduler.celery_app ARGS`` with this interpreter, run to completion."""
    return subprocess.run([sys.executable, "-m", "celery", "-A", "scheduler.celery_app", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=90)


@pytest.fixture
def env(tmp_path: Path, redis_url: str) -> dict[str, str]:
    return base_env(JUDGEQ_BROKER_URL=redis_url, JUDGEQ_LEDGER_URL=f"sqlite:///{tmp_path / 'judgeq.db'}")


def test_inspect_ping_and_registered_reach_a_judgeq_worker(env: dict[str, str], tmp_path: Path) -> None:
    """The worker answers ``inspect ping`` by its name, and ``inspect registered`` lists judgeq's tasks."""
    worker = Worker("local", env).wait_ready()
    try:
        ping = celery(["inspect", "ping", "--destination", worker.name, "--timeout", "10"], env, tmp_path)
        assert ping.returncode == 0, ping.stdout + ping.stderr
        assert worker.name in ping.stdout and "pong" in ping.stdout, ping.stdout
        registered = celery(["inspect", "registered", "--destination", worker.name, "--timeout", "10"], env,
                            tmp_path)
        assert registered.returncode == 0, registered.stdout + registered.stderr
        for task in (TASK_NAME, "judgeq.online_tick", "judgeq.budget_tick"):
            assert task in registered.stdout, registered.stdout
    finally:
        worker.stop()


def test_the_app_is_built_from_the_environments_settings(env: dict[str, str], tmp_path: Path,
                                                          redis_url: str) -> None:
    """``celery report`` shows judgeq's configuration (JSON only, no result backend) on JUDGEQ_BROKER_URL."""
    report = celery(["report"], env, tmp_path)
    assert report.returncode == 0, report.stdout + report.stderr
    assert "task_serializer: 'json'" in report.stdout, report.stdout
    assert "results:disabled" in report.stdout, report.stdout
    host_and_db = redis_url.rsplit("@", 1)[-1].removeprefix("redis://")
    assert host_and_db in report.stdout, report.stdout


def test_no_worker_no_reply(env: dict[str, str], tmp_path: Path) -> None:
    """Without a worker on the broker, ``inspect ping`` says so and fails: the test above is not vacuous."""
    ping = celery(["inspect", "ping", "--timeout", "2"], env, tmp_path)
    assert ping.returncode != 0
    assert "No nodes replied" in ping.stdout + ping.stderr


def test_nothing_in_judgeq_imports_the_target() -> None:
    """The target reads the environment at import: a library module importing it would read it behind its caller."""
    import ast

    root = Path(__file__).resolve().parent.parent
    found = []
    for package in ("judgeq", "cli", "scheduler", "workers", "online", "runs", "judges", "ledger"):
        for path in (root / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [f"{node.module or ''}.{a.name}" for a in node.names] if isinstance(node, ast.ImportFrom)
                         else [])
                found += [f"{path.relative_to(root)}: {n}" for n in names if "celery_app" in n]
    assert not found, found
