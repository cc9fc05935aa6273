"""The CLI's own surface: listing judges, help without heavy imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .cli_runner import invoke
from .processes import REPO, base_env, run_cli

pytestmark = pytest.mark.timeout(60)


def test_judges_lists_configured_and_builtin_judges_with_versions(tmp_path: Path) -> None:
    (tmp_path / "judgeq.toml").write_text((REPO / "judgeq.toml").read_text())
    env = base_env()
    env.pop("OPENAI_API_KEY", None)  # listing needs no key
    res = invoke(["judges", "--json"], env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    rows = {row["name"]: row for row in json.loads(res.stdout)}
    assert {"exact", "overlap", "faithfulness", "exact_match", "json_valid", "noop"} <= set(rows)
    assert rows["faithfulness"]["kind"] == "remote" and rows["exact"]["kind"] == "local"
    for row in rows.values():
        name, _, digest = row["version"].partition("@")
        assert name == row["name"] and len(digest) == 12
    # Versions are stable from one call to the next.
    again = {row["name"]: row for row in json.loads(invoke(["judges", "--json"], env, cwd=tmp_path).stdout)}
    assert again["exact"]["version"] == rows["exact"]["version"]
    table = invoke(["judges"], env, cwd=tmp_path)
    assert rows["exact"]["version"][:10] in table.stdout


@pytest.mark.parametrize("args", [["--help"], ["judges"]])
def test_short_commands_import_no_heavy_module(args: list[str]) -> None:
    """`judgeq --help` and `judgeq judges` stay fast: Celery workers, SQLAlchemy (the ledger) and litellm load
    only in the commands that use them (the global settings reach the run's corridor, which must not load
    the ledger's tables at import)."""
    code = (
        "import sys; from cli.main import main\n"
        f"sys.argv = ['judgeq', *{args!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('litellm', 'sqlalchemy', 'celery.app', 'numpy', 'scipy') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], env=base_env(), cwd=REPO, capture_output=True, text=True,
                         timeout=30)
    assert "HEAVY []" in res.stdout, res.stdout[-500:] + res.stderr[-2000:]
