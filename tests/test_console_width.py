"""Tables printed to a pipe or CI log keep each row on one line, however wide (rich would assume 80 columns)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .cli_runner import invoke
from .processes import base_env

pytestmark = pytest.mark.timeout(60)

MODEL = "openai/" + "a-self-hosted-judge-model-with-a-long-name-" * 3 + "v1"


def test_a_wide_table_is_not_wrapped_when_output_is_not_a_terminal(tmp_path: Path) -> None:
    config = tmp_path / "judgeq.toml"
    config.write_text(f'[judges.long_named_remote_judge]\ntype = "llm"\nmodel = "{MODEL}"\n'
                      'api_base = "http://127.0.0.1:9/v1"\nprompt = "relevance"\n')
    env = base_env(JUDGEQ_CONFIG=str(config))
    env["COLUMNS"] = "80"  # as shells and CI runners often export it: not the width of a log
    table = invoke(["judges"], env)
    listed = invoke(["judges", "--json"], env)
    assert table.returncode == listed.returncode == 0, table.stderr + listed.stderr
    rows = json.loads(listed.stdout)
    assert len(MODEL) > 80 and rows
    for row in rows:  # each judge's cells whole, on one line of the table
        assert any(all(row[k] in line for k in ("name", "kind", "version", "definition"))
                   for line in table.stdout.splitlines()), (row, table.stdout)
