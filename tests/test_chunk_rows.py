"""What a chunk leaves in the ledger when a verdict is awkward or the worker cannot judge: on SQLite and PostgreSQL.

The chunk code (``workers.chunk.execute``) runs in this process against a
real ledger on each backend (``ledger_url``); the judges are small stand-ins
with fixed verdicts, so what is tested is what the chunk and the ledger do
with them: every verdict stored, text stored the same on both backends,
costs kept, and the rows of a chunk that could not be judged telling why.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from judges.config import load_config
from judges.record import Record
from judges.verdict import Verdict
from ledger import ItemIn, Ledger, Run
from runs.rows import INTERNAL, SETUP
from workers.chunk import JudgeCache, execute
from runs.message import ChunkMessage

pytestmark = pytest.mark.timeout(60)

N = 16
AWKWARD = "NUL\x00 here, a lone surrogate \ud800 there"
STORED = "NUL\ufffd here, a lone surrogate \ufffd there"


class FixedJudge:
    """A local judge answering ``verdicts(records)``; ``raises`` makes it fail as a bug would."""

    kind = "local"

    def __init__(self, version: str, raises: bool = False) -> None:
        self.name, self.version, self.raises = version.split("@")[0], version, raises

    def judge(self, records: Sequence[Record]) -> list[Verdict]:
        if self.raises:
            raise KeyError("a bug in the judge")
        return [
            Verdict(r.id, score=1.0, label="pa\x00ss" if i == 3 else "pass", reason=AWKWARD if i == 3 else "fine",
                    cost_usd=0.001 * (i + 1), tokens_in=100 + i, tokens_out=10, attempts=1)
            for i, r in enumerate(records)
        ]


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    with Ledger(ledger_url) as ledger:
        ledger.runs.create_run(Run(id="run-1", kind="offline", dataset_name="golden", n_items=N, expected=N))
        yield ledger


def judge_message(tmp_path: Any) -> dict[str, Any]:
    (tmp_path / "judgeq.toml").write_text('[judges.exact]\ntype = "local"\nbuiltin = "exact_match"\n')
    return load_config(tmp_path / "judgeq.toml").resolve("exact").to_message()


def chunk(judge: dict[str, Any]) -> ChunkMessage:
    records = [{"id": f"t{i}", "input": "q", "output": f"answer {i}", "expected": f"answer {i}"} for i in range(N)]
    return ChunkMessage(run_id="run-1", dataset="d" * 12, judge=judge, records=records, chunk=1)


def cache_with(message: dict[str, Any], judge: Any) -> JudgeCache:
    """A judge cache that serves ``judge`` for ``message`` (as if built from it)."""
    cache = JudgeCache()
    cache._judges[JudgeCache.key(message)] = judge
    return cache


def test_a_verdict_with_nul_and_a_lone_surrogate_costs_no_neighbour_and_is_stored_alike(ledger: Ledger,
                                                                                      tmp_path: Any) -> None:
    judge = judge_message(tmp_path)
    outcome = execute(chunk(judge), ledger, cache_with(judge, FixedJudge(judge["version"])))

    assert (outcome.written, outcome.errors) == (N, 0)
    rows = {row.trace_id: row for row in ledger.scores.scores("run-1")}
    assert len(rows) == N and all(row.status == "ok" for row in rows.values())
    # The same text on SQLite and PostgreSQL: NUL and the surrogate as U+FFFD, nothing else changed.
    assert (rows["t3"].label, rows["t3"].reason) == ("pa\ufffdss", STORED)
    assert rows["t4"].reason == "fine"
    # Every verdict's cost and tokens are kept, the awkward one's too.
    assert ledger.scores.spend("run-1") == pytest.approx(sum(0.001 * (i + 1) for i in range(N)))
    assert (rows["t3"].tokens_in, rows["t3"].cost_usd) == (103, pytest.approx(0.004))
    # A redelivered chunk finds the same rows: the ids were looked up as they are stored.
    assert ledger.scores.existing("run-1", "exact", [f"t{i}" for i in range(N)]) == {f"t{i}" for i in range(N)}


def test_json_columns_keep_nul_and_lone_surrogates_exactly(ledger: Ledger) -> None:
    awkward = {"text": AWKWARD, "list": [AWKWARD], "key\x00": 1}
    ledger.runs.create_run(Run(id="run-2", kind="offline", dataset_name="golden", meta=awkward, tags=[AWKWARD],
                          judges={"j": awkward}))
    ledger.runs.add_items("run-2", [ItemIn(trace_id="t0", seq=0, content_hash="h", record={"id": "t0", **awkward})])

    run = ledger.runs.get_run("run-2")
    assert (run.meta, run.tags, run.judges) == (awkward, [AWKWARD], {"j": awkward})
    (batch,) = ledger.runs.missing_items("run-2", "exact")
    assert batch == [{"id": "t0", **awkward}]


def test_a_judge_that_raises_ends_its_chunk_as_internal_errors(ledger: Ledger, tmp_path: Any) -> None:
    judge = judge_message(tmp_path)
    outcome = execute(chunk(judge), ledger, cache_with(judge, FixedJudge(judge["version"], raises=True)))

    assert (outcome.written, outcome.errors) == (N, N)
    rows = list(ledger.scores.scores("run-1"))
    assert {(row.status, row.error_kind) for row in rows} == {("error", INTERNAL)}
    assert "KeyError" in (rows[0].error or "")


def test_a_judge_the_worker_cannot_build_ends_its_chunk_as_setup_errors(ledger: Ledger, tmp_path: Any) -> None:
    judge = dict(judge_message(tmp_path), version="exact@000000000000")  # not what this judgeq computes

    outcome = execute(chunk(judge), ledger, JudgeCache())

    assert (outcome.written, outcome.errors) == (N, N)
    rows = list(ledger.scores.scores("run-1"))
    assert {(row.status, row.error_kind) for row in rows} == {("error", SETUP)}
    assert "same judgeq version" in (rows[0].error or "")
