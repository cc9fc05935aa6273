"""Bad input: one line naming what is wrong and where, exit 2, no run row, nothing queued."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, inspect, text

from .cli_runner import invoke
from .processes import base_env

pytestmark = pytest.mark.timeout(120)

CONFIG = """
[judges.exact]
type = "local"
builtin = "exact_match"

[judges.llm_missing_prompt]
type = "llm"
model = "openai/judge"
api_base = "http://127.0.0.1:9/v1"
api_key_env = "JUDGEQ_TEST_KEY_THAT_IS_SET"
prompt = "prompts/nowhere.md"
labels = { pass = 1.0, fail = 0.0 }

[judges.llm_no_key]
type = "llm"
model = "openai/judge"
api_base = "http://127.0.0.1:9/v1"
api_key_env = "JUDGEQ_TEST_KEY_NOT_SET"
prompt = "faithfulness"
labels = { pass = 1.0, fail = 0.0 }
"""

GOOD = {"id": "a", "input": "q", "output": "x", "expected": "x"}


def lines(*records: object) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)


CASES = [
    ("malformed_json", lines(GOOD, '{"id": "b", "output": '), "bad.jsonl:2", None),
    ("missing_output", lines(GOOD, {"id": "b", "input": "q"}), "bad.jsonl:2", "output"),
    ("wrong_type", lines(GOOD, {"id": "b", "output": "y", "context": 5}), "bad.jsonl:2", "context"),
    ("metadata_not_object", lines({"id": "b", "output": "y", "metadata": [1]}), "bad.jsonl:1", "metadata"),
    ("duplicate_ids", lines(GOOD, {"id": "b", "output": "y", "expected": "y"}, GOOD), "bad.jsonl:3", "a"),
    ("empty_file", "", "bad.jsonl", "no records"),
]


@pytest.fixture
def env(tmp_path: Path, redis_url: str, pg_url: str) -> dict[str, str]:
    (tmp_path / "judgeq.toml").write_text(CONFIG)
    return base_env(JUDGEQ_BROKER_URL=redis_url, JUDGEQ_LEDGER_URL=pg_url,
                    JUDGEQ_CONFIG=str(tmp_path / "judgeq.toml"), JUDGEQ_TEST_KEY_THAT_IS_SET="sk-test")


def assert_nothing_written(redis_url: str, pg_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    assert client.llen("local") == 0 and client.llen("remote") == 0
    client.close()
    engine = create_engine(pg_url)
    with engine.connect() as conn:
        if inspect(conn).has_table("runs"):
            assert conn.execute(text("select count(*) from runs")).scalar_one() == 0
            assert conn.execute(text("select count(*) from items")).scalar_one() == 0
    engine.dispose()


@pytest.mark.parametrize("name,content,where,what", CASES, ids=[c[0] for c in CASES])
def test_bad_dataset_is_rejected_whole(name: str, content: str, where: str, what: str | None, tmp_path: Path,
                                       env: dict[str, str], redis_url: str, pg_url: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    res = invoke(["submit", str(path), "--judge", "exact", "--wait"], env)
    assert res.returncode == 2, (res.stdout, res.stderr)
    message = res.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert where in message
    if what:
        assert what in message
    assert "Traceback" not in res.stderr
    assert_nothing_written(redis_url, pg_url)


@pytest.mark.parametrize(
    "judge,needle",
    [("nonexistent", "nonexistent"), ("llm_missing_prompt", "nowhere.md"), ("llm_no_key", "JUDGEQ_TEST_KEY_NOT_SET")],
)
def test_bad_judge_is_rejected(judge: str, needle: str, tmp_path: Path, env: dict[str, str], redis_url: str,
                               pg_url: str) -> None:
    path = tmp_path / "ok.jsonl"
    path.write_text(lines(GOOD))
    res = invoke(["submit", str(path), "--judge", judge], env)
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert needle in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert_nothing_written(redis_url, pg_url)


@pytest.mark.parametrize("args,needle", [
    (["--gate", "exact>>0.9", "--wait"], "exact>>0.9"),
    (["--gate", "other>=0.9", "--wait"], "other"),
    (["--gate", "exact>=0.9"], "--wait"),
])
def test_bad_usage_is_rejected(args: list[str], needle: str, tmp_path: Path, env: dict[str, str], redis_url: str,
                               pg_url: str) -> None:
    path = tmp_path / "ok.jsonl"
    path.write_text(lines(GOOD))
    res = invoke(["submit", str(path), "--judge", "exact", *args], env)
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert needle in res.stderr
    assert_nothing_written(redis_url, pg_url)


def test_unknown_run_is_a_usage_error(env: dict[str, str]) -> None:
    res = invoke(["status", "r-does-not-exist"], env)
    assert res.returncode == 2 and "r-does-not-exist" in res.stderr
