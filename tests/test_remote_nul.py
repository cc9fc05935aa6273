"""A model answer with a NUL and a lone surrogate in its reason, end to end on PostgreSQL.

The fake provider answers one record of a 16-record chunk with a reason that
PostgreSQL's text cannot hold as it is; litellm fetches it over HTTP, the
judge parses it, the chunk writes its rows. Every verdict must be stored, the
awkward text as U+FFFD, and every call's cost recorded.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from ledger import Ledger

from .cli_runner import invoke
from .provider import FakeProvider, default_verdict, last_user_text
from .remote_judge import dataset, env_for

pytestmark = pytest.mark.timeout(120)

N = 16


def awkward_for_record_5(body: dict[str, Any]) -> dict[str, Any]:
    verdict = default_verdict(body)
    if re.search(r"answer 5\b", last_user_text(body)):
        verdict["reason"] = "the answer\x00 is fine \ud83d here"
    return verdict


def test_a_nul_in_one_answer_costs_no_other_verdict(tmp_path: Path, pg_url: str) -> None:
    data = dataset(tmp_path / "golden.jsonl", N)
    with FakeProvider(verdict=awkward_for_record_5) as provider:
        env = env_for(tmp_path, provider, JUDGEQ_LEDGER_URL=pg_url)
        res = invoke(["submit", str(data), "--judge", "faithful", "--wait", "--json"], env)
        calls = provider.count(200)

    assert res.returncode == 0, res.stderr
    (fig,) = json.loads(res.stdout)["judges"]
    assert (fig["n"], fig["ok"], fig["errors"]) == (N, N, 0)
    assert calls == N
    run_id = json.loads(res.stdout)["run"]["id"]
    with Ledger(pg_url) as ledger:
        rows = {row.trace_id: row for row in ledger.scores.scores(run_id)}
    assert rows["t5"].reason == "the answer\ufffd is fine \ufffd here"
    assert rows["t5"].label == "pass"
    assert all(row.cost_usd > 0 and row.tokens_in > 0 for row in rows.values())
    assert fig["cost_usd"] == pytest.approx(sum(row.cost_usd for row in rows.values()))
