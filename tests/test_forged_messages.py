"""Task messages are untrusted input: a forged judge_chunk is refused, writes nothing, calls no one.

Whoever can write to Redis, or apply ``judgeq.judge_chunk`` through Flower, can send a worker any
arguments. Here they are sent with Celery's ``send_task`` to a real worker process.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import create_engine, text

from judges.retry import MAX_CARRIED_ERROR, Prior
from ledger.store import Ledger
from workers.app import create_app
from runs.errors import BadMessage
from runs.message import ChunkMessage
from workers.settings import WorkerSettings

from .cli_runner import invoke
from .processes import Worker, base_env, wait_until
from .provider import FakeProvider
from .remote_judge import dataset

pytestmark = pytest.mark.timeout(180)

CONFIG = """
[judges.j]
type = "llm"
model = "openai/judge"
api_base = "{base}"
prompt_text = "Answer: {{output}}"
prompt = "inline"
timeout_s = 5
"""

SECRET_TEXT = "CUSTOMER-RECORD-7f3a"


def body(run_id: str, judge: dict[str, Any], dataset_hash: str, **extra: Any) -> dict[str, Any]:
    records = [{"id": f"f{i}", "output": f"GOOD {SECRET_TEXT}"} for i in range(3)]
    return {**ChunkMessage(run_id=run_id, dataset=dataset_hash, judge=judge, records=records).to_json(), **extra}


def scores(url: str) -> int:
    engine = create_engine(url)
    with engine.connect() as conn:
        n = int(conn.execute(text("select count(*) from scores")).scalar_one())
    engine.dispose()
    return n


def test_forged_chunks_are_refused_and_acknowledged(tmp_path: Path, redis_url: str, sqlite_url: str) -> None:
    data = dataset(tmp_path / "golden.jsonl", 4)
    with FakeProvider() as provider, FakeProvider() as elsewhere:
        (tmp_path / "judgeq.toml").write_text(CONFIG.format(base=provider.base_url))
        env = base_env(JUDGEQ_BROKER_URL=redis_url, JUDGEQ_LEDGER_URL=sqlite_url,
                       JUDGEQ_CONFIG=str(tmp_path / "judgeq.toml"), JUDGEQ_MAX_RECORD_BYTES="4096")
        worker = Worker("remote", env, "--concurrency", "2").wait_ready()
        try:
            res = invoke(["submit", str(data), "--judge", "j", "--wait", "--json"], env)
            assert res.returncode == 0, res.stderr  # a real submit's chunks are admitted
            run_id = json.loads(res.stdout)["run"]["id"]
            legit_calls, legit_rows = provider.count(), scores(sqlite_url)
            assert legit_calls == legit_rows == 4

            with Ledger(sqlite_url) as ledger:
                run = ledger.runs.get_run(run_id)
            judge = run.judges["j"]
            redirected = copy.deepcopy(judge)
            redirected["spec"]["api_base"] = elsewhere.base_url  # the same name, another endpoint
            huge = body(run_id, judge, run.dataset_hash or "")
            huge["records"][0]["output"] = "x" * 40_000  # past 6 x 4096 + 4 KiB: no 4 KiB line could be this
            forged: list[Any] = [
                body("r20260101-000000-abcdef", judge, run.dataset_hash or ""),  # no such run
                body(run_id, redirected, run.dataset_hash or ""),                # not the run's judge
                body(run_id, judge, "another-dataset"),                          # not the run's dataset
                body(run_id, judge, run.dataset_hash or "", weights={"f0": -1.0}),
                {**body(run_id, judge, run.dataset_hash or ""), "run_id": "../../etc"},
                huge,                                                            # over JUDGEQ_MAX_RECORD_BYTES
                {"v": 1, "run_id": run_id, "records": "not a list"},
                "not even an object",
            ]
            app = create_app(WorkerSettings(broker_url=redis_url))
            for args in forged:
                app.send_task("judgeq.judge_chunk", args=[args], queue="remote")

            def all_refused() -> bool:
                return worker.log().count("refused a task message") == len(forged)

            wait_until(all_refused, 60, "the worker to refuse every forged message", interval=0.2)
            client = redis.Redis.from_url(redis_url)

            def acknowledged() -> bool:
                return client.llen("remote") == 0 and client.hlen("unacked") == 0

            wait_until(acknowledged, 30, "the forged messages to be acknowledged")
            client.close()
            shown = invoke(["status", run_id, "--json"], env)
            told = invoke(["status", run_id], env)
        finally:
            worker.stop()
        # The five that name the real run are counted where status looks; the other three name no run of it.
        assert json.loads(shown.stdout)["dead_letters"]["refused_messages"] == 5, shown.stdout + shown.stderr
        assert "workers refused 5 task messages naming this run" in told.stdout
        assert f"'judgeq resume {run_id}'" in told.stdout and SECRET_TEXT not in told.stdout
        assert provider.count() == legit_calls and elsewhere.count() == 0  # nothing was called
    assert scores(sqlite_url) == legit_rows  # nothing was written
    log = worker.log()
    assert SECRET_TEXT not in log  # the log names the chunk, never its records
    assert "is not in this worker's ledger" in log and "differs from the one run" in log
    assert "JUDGEQ_MAX_RECORD_BYTES = 4096 can be" in log


def test_message_fields_are_checked() -> None:
    judge = {"name": "j", "version": "j@1"}
    good = body("r1", judge, "d")
    assert ChunkMessage.from_json(good).records[0]["id"] == "f0"
    online = ChunkMessage.from_json({**good, "weights": {"f0": 50.0}, "strata": {"f0": "de"}})
    assert (online.weights, online.strata) == ({"f0": 50.0}, {"f0": "de"})
    assert ChunkMessage.from_json(online.to_json()) == online
    bad: list[tuple[Any, str]] = [
        ({**good, "v": 2}, "version 2"),
        ({**good, "records": []}, "records"),
        ({**good, "records": [{"id": "a", "output": "x"}] * 2}, "its own non-empty string id"),
        ({**good, "chunk": "1"}, "chunk"),
        ({**good, "weights": {"f0": math.inf}}, "weights.f0"),
        ({**good, "max_cost_usd": -1}, "max_cost_usd"),
        ({**good, "carry": {"f0": {"attempts": -1}}}, "carry.f0.attempts"),
        ({**good, "carry": {"zz": {"attempts": 1}}}, "carry names records that are not in the chunk"),
        ({**good, "strata": {"zz": "de"}}, "strata names records that are not in the chunk"),
        ({**good, "strata": {"f0": 7}}, "strata.f0"),
        ({**good, "carry": {"f0": {"answer_errors": -1}}}, "carry.f0.answer_errors"),
        ({**good, "carry": {"f0": {"started_at": math.nan}}}, "carry.f0.started_at"),
        ({**good, "carry": {"f0": {"last_error": 7}}}, "carry.f0.last_error"),
        ({**good, "carry": {"f0": 7}}, "carry.f0"),
        ({**good, "judge": {"name": "x y", "version": "v"}}, "judge.name"),
        ({**good, "records": [{"id": "a", "output": "x"}] * 5001}, "records"),
    ]
    for message, says in bad:
        with pytest.raises(BadMessage, match=says.replace(".", r"\.")) as caught:
            ChunkMessage.from_json(message)
        assert SECRET_TEXT not in str(caught.value)


def test_every_field_a_hand_back_carries_is_admitted() -> None:
    """A handed-back chunk carries a Prior per record; the check must take every field a Prior has.

    A carry field the check did not know made workers refuse, and acknowledge, the hand-backs of
    records with an unusable answer: their items never got a row.
    """
    judge = {"name": "j", "version": "j@1"}
    spent = Prior(attempts=3, started_at=1.8e9, not_before=1.8e9 + 2, cost_usd=0.25, tokens_in=40, tokens_out=9,
                  latency_s=1.5, wait_s=4.0, waiting_since=1.8e9 + 1, last_error="500: boom", answer_errors=2)
    assert set(spent.to_json()) == set(Prior.model_fields)  # every field set, none default
    message = ChunkMessage.from_json(body("r1", judge, "d", carry={"f0": spent.to_json()}))
    assert Prior.from_json(message.carry["f0"]) == spent
    # A key a newer worker may carry is ignored, as unknown keys of the body are.
    newer = ChunkMessage.from_json(body("r1", judge, "d", carry={"f0": {**spent.to_json(), "later_field": 1}}))
    assert newer.carry == message.carry
    # An error text of any length (a model's answer quoted in it) is cut to what the check takes.
    wordy = Prior(attempts=1, last_error="x" * (MAX_CARRIED_ERROR + 5))
    cut = ChunkMessage.from_json(body("r1", judge, "d", carry={"f0": wordy.to_json()})).carry["f0"]["last_error"]
    assert len(cut) == MAX_CARRIED_ERROR and cut.startswith("xxx")
