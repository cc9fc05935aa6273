"""Rows a worker writes for a chunk it gave up on say why: the poison guard's have ``error_kind`` "poison".

A real worker process and Redis: the chunk's delivery count is set as if its
worker had already died on it ``JUDGEQ_MAX_DELIVERIES`` times, so the next
delivery ends it as error rows at once (tests/test_fleet.py kills a worker
three times to get there; here only what the rows say is checked).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from judges.config import load_config
from ledger import Ledger, Run
from workers.app import create_app
from runs.queues import QUEUE_LOCAL
from workers.keys import DELIVERIES
from runs.message import ChunkMessage
from workers.settings import WorkerSettings

from .processes import Worker, base_env, wait_until

pytestmark = pytest.mark.timeout(120)


def test_the_poison_guard_records_its_kind(tmp_path: Path, redis_url: str, pg_url: str) -> None:
    (tmp_path / "judgeq.toml").write_text('[judges.exact]\ntype = "local"\nbuiltin = "exact_match"\n')
    judge = load_config(tmp_path / "judgeq.toml").resolve("exact").to_message()
    records = [{"id": f"t{i}", "output": "a", "expected": "a"} for i in range(3)]
    message = ChunkMessage(run_id="run-1", dataset="d" * 12, judge=judge, records=records, chunk=1)
    env = base_env(JUDGEQ_BROKER_URL=redis_url, JUDGEQ_LEDGER_URL=pg_url, JUDGEQ_MAX_DELIVERIES="3")
    with Ledger(pg_url) as ledger:
        ledger.runs.create_run(Run(id="run-1", kind="offline", dataset_name="golden", dataset_hash="d" * 12,
                              judges={"exact": judge}, n_items=3, expected=3,
                              status="running"))
        client = redis.Redis.from_url(redis_url)
        client.set(DELIVERIES.format(task_id="poisoned:0"), 3)  # three deliveries of try 0 already died
        worker = Worker("local", env, "--concurrency", "1").wait_ready()
        try:
            app = create_app(WorkerSettings(broker_url=redis_url))
            app.send_task("judgeq.judge_chunk", args=[message.to_json()], queue=QUEUE_LOCAL, task_id="poisoned")
            wait_until(lambda: ledger.scores.progress("run-1").done == 3, 60, "the poisoned chunk's rows:\n" + worker.log())
        finally:
            worker.stop()
            client.close()
        rows = list(ledger.scores.scores("run-1"))
    assert {(row.status, row.error_kind) for row in rows} == {("error", "poison")}
    assert "poison message guard" in (rows[0].error or "")
