"""Transient errors in the ledger: what resume retries, how it reopens them, and cost that is never dropped.

Run against SQLite and PostgreSQL (``ledger_url``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ledger import ItemIn, Ledger, Run, ScoreIn
from runs.reopen import Reopening
from workers.dispatch import CeleryDispatcher
from runs.errors import BrokerUnavailable
from runs.message import ChunkMessage
from workers.settings import WorkerSettings

from .processes import free_port

pytestmark = pytest.mark.timeout(120)

IDS = ("no-row", "ok", "transient", "answer", "fatal", "skipped")


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    with Ledger(ledger_url) as ledger:
        ledger.runs.create_run(Run(id="run-1", kind="offline", dataset_name="golden", n_items=len(IDS),
                              expected=len(IDS), status="running", no_cache=True))
        ledger.runs.add_items("run-1", [ItemIn(trace_id=t, seq=i, content_hash=f"h{i}", record={"id": t, "output": "x"})
                                   for i, t in enumerate(IDS)])
        ledger.scores.write_scores([
            score("ok", cost_usd=0.5, tokens_in=10, tokens_out=5),
            score("transient", status="error", score=None, error_kind="transient", error="503", attempts=9,
                  cost_usd=0.25, tokens_in=4, tokens_out=2),
            score("answer", status="error", score=None, error_kind="answer", error="no JSON", attempts=6),
            score("fatal", status="error", score=None, error_kind="fatal", error="HTTP 400"),
            score("skipped", status="skipped", score=None, error_kind="budget"),
        ])
        yield ledger


def score(trace_id: str, **overrides: Any) -> ScoreIn:
    values: dict[str, Any] = {"judge_version": "faithfulness@0123456789ab", "dataset": "d" * 64, "score": 1.0}
    return ScoreIn(run_id="run-1", trace_id=trace_id, eval="faithfulness", **(values | overrides))


def missing(ledger: Ledger, **kwargs: Any) -> list[str]:
    return [r["id"] for batch in ledger.runs.missing_items("run-1", "faithfulness", **kwargs) for r in batch]


def test_resume_retries_items_without_a_row_and_transient_errors_only(ledger: Ledger) -> None:
    assert missing(ledger) == ["no-row"]
    assert missing(ledger, reopen=("transient",)) == ["no-row", "transient"]
    (summary,) = ledger.scores.summary("run-1")
    assert (summary.errors, summary.transient_errors) == (3, 1)
    assert ledger.runs.get_run("run-1").no_cache is True  # the run's --no-cache, kept for resume


def test_reopening_a_transient_row_makes_its_item_not_yet_judged(ledger: Ledger) -> None:
    assert ledger.scores.progress("run-1").done == 5
    removed = ledger.scores.reopen_errors("run-1", "faithfulness", list(IDS))
    assert [(r.trace_id, r.attempts, r.cost_usd, r.tokens_in) for r in removed] == [("transient", 9, 0.25, 4)]
    progress = ledger.scores.progress("run-1")
    assert (progress.done, progress.errors) == (4, 2)  # counted as not yet judged while it is retried
    assert ledger.scores.existing("run-1", "faithfulness", list(IDS)) == {"ok", "answer", "fatal", "skipped"}
    assert ledger.scores.reopen_errors("run-1", "faithfulness", ["transient"]) == []  # once
    # The retry's row carries what the reopened row paid (resume puts it in the chunk's carry).
    ledger.scores.write_scores([score("transient", cost_usd=0.25 + 0.125, attempts=10)])
    assert ledger.scores.progress("run-1").done == 5 and ledger.scores.spend("run-1") == pytest.approx(0.5 + 0.375)


def test_cost_of_a_verdict_that_arrived_second_is_added_to_the_row(ledger: Ledger) -> None:
    ledger.scores.add_cost("run-1", "faithfulness", [score("ok", cost_usd=0.125, tokens_in=3, tokens_out=1),
                                              score("fatal", cost_usd=0.0)])
    rows = {row.trace_id: row for row in ledger.scores.scores("run-1")}
    assert (rows["ok"].cost_usd, rows["ok"].tokens_in, rows["ok"].tokens_out) == (0.625, 13, 6)
    assert rows["ok"].score == 1.0 and rows["fatal"].cost_usd == 0.0  # the stored verdict stands
    assert ledger.scores.spend("run-1") == pytest.approx(0.5 + 0.125 + 0.25)


def test_a_reopened_chunk_that_cannot_be_sent_gets_its_rows_back(ledger: Ledger) -> None:
    dead = CeleryDispatcher(WorkerSettings(broker_url=f"redis://127.0.0.1:{free_port()}/0"))
    message = ChunkMessage(run_id="run-1", dataset="d", judge={"name": "faithfulness", "version": "v"},
                           records=[{"id": "no-row"}, {"id": "transient"}])
    with pytest.raises(BrokerUnavailable):
        Reopening(dead, ledger).send(message, "remote")
    rows = {row.trace_id: row for row in ledger.scores.scores("run-1")}
    back = rows["transient"]
    assert (back.error_kind, back.attempts, back.cost_usd) == ("transient", 9, 0.25)
    assert ledger.scores.progress("run-1").done == 5
