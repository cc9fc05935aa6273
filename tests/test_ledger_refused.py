"""A ledger that refuses to write (a role without INSERT on scores): nothing is acknowledged without its rows.

Real PostgreSQL, a real worker process and Redis. The worker's database role
may read everything and write runs and items, but not scores; the submitter
uses the database's owner. While the grant is missing, a chunk must go back
to the queue (retried with a short countdown) and, once its retries are used
up, to the run's dead letters that ``judgeq status`` shows; it must never be
acknowledged with its items left without rows. After ``GRANT``, the retried
chunk completes by itself, or ``judgeq resume`` completes the run.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from ledger import Ledger
from ledger.errors import LedgerRefused
from ledger.migrate import upgrade
from workers.keys import DEAD_LETTERS

from .cli_runner import invoke
from .ledger_probe import rows_and_keys
from .processes import Worker, base_env, wait_until

pytestmark = pytest.mark.timeout(180)

CONFIG = '[judges.exact]\ntype = "local"\nbuiltin = "exact_match"\n'
N = 40


class Grants:
    """A login role on the test database that may do everything but INSERT into scores, until ``grant()``."""

    def __init__(self, pg_url: str) -> None:
        self.admin_dsn = pg_url.replace("postgresql+psycopg://", "postgresql://")
        self.role = "judgeq_w_" + secrets.token_hex(4)
        base, database = pg_url.rsplit("/", 1)
        self.url = base.replace("//postgres@", f"//{self.role}@") + "/" + database
        upgrade(pg_url)  # the schema, created by its owner
        self._sql(f"CREATE ROLE {self.role} LOGIN",
                  f"GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO {self.role}",
                  f"REVOKE INSERT ON scores FROM {self.role}")

    def grant(self) -> None:
        self._sql(f"GRANT INSERT ON scores TO {self.role}")

    def drop(self) -> None:
        self._sql(f"DROP OWNED BY {self.role}", f"DROP ROLE {self.role}")

    def _sql(self, *statements: str) -> None:
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)  # type: ignore[arg-type]


@pytest.fixture
def grants(pg_url: str) -> Iterator[Grants]:
    grants = Grants(pg_url)
    try:
        yield grants
    finally:
        grants.drop()


@pytest.fixture
def env(tmp_path: Path, pg_url: str) -> dict[str, str]:
    (tmp_path / "judgeq.toml").write_text(CONFIG)
    return base_env(JUDGEQ_LEDGER_URL=pg_url, JUDGEQ_CONFIG=str(tmp_path / "judgeq.toml"), JUDGEQ_CHUNK_LOCAL="20",
                    JUDGEQ_POLL_S="0.2")


def dataset(path: Path) -> Path:
    path.write_text("".join(json.dumps({"id": f"i{i}", "output": f"a{i}", "expected": f"a{i}"}) + "\n"
                            for i in range(N)))
    return path


def submit(tmp_path: Path, env: dict[str, str]) -> str:
    sub = invoke(["submit", str(dataset(tmp_path / "golden.jsonl")), "--judge", "exact"], env)
    assert sub.returncode == 0, sub.stderr
    return sub.stdout.strip().splitlines()[0]


def chunk_messages(client: redis.Redis) -> list[dict[str, Any]]:
    """Every chunk message Redis holds: queued (the list ``local``) or delivered and unacknowledged."""
    queued = [json.loads(raw) for raw in client.lrange("local", 0, -1)]
    held = [json.loads(raw)[0] for raw in client.hvals("unacked")]
    return queued + held


def test_a_refused_chunk_is_retried_not_acknowledged_and_completes_after_grant(
        tmp_path: Path, env: dict[str, str], grants: Grants, redis_url: str, pg_url: str) -> None:
    worker_env = dict(env, JUDGEQ_BROKER_URL=redis_url, JUDGEQ_LEDGER_URL=grants.url, JUDGEQ_LEDGER_RETRY_S="1",
                      JUDGEQ_LEDGER_RETRIES="100")
    client = redis.Redis.from_url(redis_url)
    worker = Worker("local", worker_env, "--concurrency", "1").wait_ready()
    try:
        run_id = submit(tmp_path, dict(env, JUDGEQ_BROKER_URL=redis_url))
        retried: list[dict[str, Any]] = []

        def a_retry_is_held() -> bool:
            retried[:] = [m for m in chunk_messages(client) if m["headers"].get("retries", 0) >= 1]
            return bool(retried)

        wait_until(a_retry_is_held, 60, "a retried chunk in Redis:\n" + worker.log()[-3000:], interval=0.02)
        # The retry keeps the short summary Flower and task events show, not the records.
        headers = retried[0]["headers"]
        assert headers["argsrepr"].startswith(f"(run={run_id} judge=exact chunk=")
        assert headers["argsrepr"].endswith(" n=20)") and headers["kwargsrepr"] == "{}"
        assert rows_and_keys(pg_url, run_id) == (0, 0)
        assert "permission denied for table scores" in worker.log()

        grants.grant()
        wait_until(lambda: rows_and_keys(pg_url, run_id) == (N, N), 60, "every row after GRANT:\n" + worker.log()[-3000:])
        status = invoke(["status", run_id, "--json"], dict(env, JUDGEQ_BROKER_URL=redis_url))
        payload = json.loads(status.stdout)
        assert payload["progress"]["ok"] == N and payload["dead_letters"]["chunks"] == 0
    finally:
        worker.stop()
        client.close()


def test_a_chunk_out_of_retries_is_a_dead_letter_status_shows_and_resume_completes(
        tmp_path: Path, env: dict[str, str], grants: Grants, redis_url: str, pg_url: str) -> None:
    worker_env = dict(env, JUDGEQ_BROKER_URL=redis_url, JUDGEQ_LEDGER_URL=grants.url, JUDGEQ_LEDGER_RETRY_S="0.2",
                      JUDGEQ_LEDGER_RETRIES="2")
    fleet_env = dict(env, JUDGEQ_BROKER_URL=redis_url)
    client = redis.Redis.from_url(redis_url)
    worker = Worker("local", worker_env, "--concurrency", "1").wait_ready()
    try:
        run_id = submit(tmp_path, fleet_env)
        key = DEAD_LETTERS.format(run_id=run_id)
        wait_until(lambda: client.hlen(key) == 2, 60, "two dead letters:\n" + worker.log()[-3000:])
        wait_until(lambda: not chunk_messages(client), 10, "the dead letters' messages acknowledged")
        letter = json.loads(next(iter(client.hvals(key))))
        assert letter["items"] == 20 and letter["message"]["run_id"] == run_id
        assert "permission denied for table scores" in letter["error"]
        assert rows_and_keys(pg_url, run_id) == (0, 0)

        status = invoke(["status", run_id], fleet_env)
        assert status.returncode == 0, status.stderr
        assert f"dead letters: 2 chunks ({N} items)" in status.stdout
        assert "permission denied for table scores" in status.stdout
        assert f"'judgeq resume {run_id}'" in status.stdout
        as_json = json.loads(invoke(["status", run_id, "--json"], fleet_env).stdout)["dead_letters"]
        assert (as_json["chunks"], as_json["items"]) == (2, N)
        assert "message" not in as_json["first"]  # the records stay out of status

        grants.grant()
        res = invoke(["resume", run_id, "--wait", "--timeout", "60", "--json"], fleet_env)
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["complete"] is True
        assert rows_and_keys(pg_url, run_id) == (N, N)
        assert client.exists(key) == 0
        assert "dead letters" not in invoke(["status", run_id], fleet_env).stdout
    finally:
        worker.stop()
        client.close()


def test_embedded_mode_stops_resumably_with_exit_3_and_resume_completes(
        tmp_path: Path, env: dict[str, str], grants: Grants, pg_url: str) -> None:
    embedded = dict(env, JUDGEQ_LEDGER_URL=grants.url)
    res = invoke(["submit", str(dataset(tmp_path / "golden.jsonl")), "--judge", "exact", "--wait"], embedded)

    assert res.returncode == 3, res.stderr
    message = res.stderr.strip().splitlines()[-1]
    assert "permission denied for table scores" in message and "judgeq resume" in message
    assert "Traceback" not in res.stderr
    run_id = res.stdout.strip().splitlines()[0]
    assert rows_and_keys(pg_url, run_id) == (0, 0)

    grants.grant()
    again = invoke(["resume", run_id, "--wait", "--timeout", "60", "--json"], embedded)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["complete"] is True
    assert rows_and_keys(pg_url, run_id) == (N, N)


def test_a_refused_write_is_a_ledger_error_that_says_what_to_grant(grants: Grants) -> None:
    from ledger import ScoreIn

    with Ledger(grants.url) as ledger, pytest.raises(LedgerRefused, match="grant the role judgeq connects as"):
        ledger.scores.write_scores([ScoreIn(run_id="r", trace_id="t", eval="e", judge_version="v", dataset="d")])


def test_a_read_only_database_is_refused_with_what_to_do(pg_url: str) -> None:
    from ledger import ScoreIn

    upgrade(pg_url)
    database = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{database}" SET default_transaction_read_only = on')  # type: ignore[arg-type]
    with Ledger(pg_url) as ledger, pytest.raises(LedgerRefused, match="is read-only") as refused:
        ledger.scores.write_scores([ScoreIn(run_id="r", trace_id="t", eval="e", judge_version="v", dataset="d")])
    assert "read-only transaction" in str(refused.value) and "set JUDGEQ_LEDGER_URL" in str(refused.value)


def test_a_refused_remote_chunk_is_not_judged_again_by_every_retry(tmp_path: Path, grants: Grants, redis_url: str,
                                                                   pg_url: str) -> None:
    """Retries first ask the ledger whether it takes writes now, instead of judging (and paying) again."""
    from .provider import FakeProvider
    from .remote_judge import dataset as remote_dataset
    from .remote_judge import env_for

    with FakeProvider() as provider:
        env = env_for(tmp_path, provider, JUDGEQ_BROKER_URL=redis_url, JUDGEQ_LEDGER_URL=pg_url)
        worker = Worker("remote", dict(env, JUDGEQ_LEDGER_URL=grants.url, JUDGEQ_LEDGER_RETRY_S="0.3",
                                       JUDGEQ_LEDGER_RETRIES="100"), "--concurrency", "2").wait_ready()
        try:
            sub = invoke(["submit", str(remote_dataset(tmp_path / "golden.jsonl", 16)), "--judge", "faithful"], env)
            assert sub.returncode == 0, sub.stderr
            run_id = sub.stdout.strip().splitlines()[0]
            wait_until(lambda: worker.log().count("ledger failed for") >= 4, 60, "retries:\n" + worker.log()[-3000:])
            grants.grant()
            wait_until(lambda: rows_and_keys(pg_url, run_id) == (16, 16), 60, "every row:\n" + worker.log()[-3000:])
        finally:
            worker.stop()
        # Paid on the first delivery, whose verdicts the ledger refused, and once more after GRANT; never by the
        # (at least four) retries in between.
        assert provider.count() == 2 * 16


def test_asking_whether_the_ledger_takes_writes_writes_nothing(ledger_url: str, tmp_path: Path) -> None:
    with Ledger(ledger_url) as ledger:
        ledger.scores.check_writable()
        assert list(ledger.scores.scores("r")) == []
    if ledger_url.startswith("sqlite"):  # the same file opened read-only is refused, with what to do
        read_only = ledger_url.replace("sqlite:///", "sqlite:///file:") + "?mode=ro&uri=true"
        with Ledger(read_only) as ledger, pytest.raises(LedgerRefused, match="is read-only"):
            ledger.scores.check_writable()
