"""Fixtures shared by the suite: real PostgreSQL, real Redis, SQLite files.

PostgreSQL tests get a fresh database of their own on the shared server
(created and dropped here); Redis tests get a Redis database number of their
own that is flushed before use. Tests that kill or restart a server start a
private one (see ``tests/servers.py``) and never touch the shared ones.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

PG_ADMIN_URL = os.environ.get("JUDGEQ_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_TEST_URL = os.environ.get("JUDGEQ_TEST_REDIS", "redis://127.0.0.1:6379")


def _pg_admin():  # type: ignore[no-untyped-def]
    import psycopg

    dsn = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    return psycopg.connect(dsn, autocommit=True, connect_timeout=5)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped after the test."""
    name = "judgeq_t_" + secrets.token_hex(6)
    with _pg_admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with _pg_admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path) -> str:  # type: ignore[no-untyped-def]
    """The URL of a new SQLite ledger file in the test's own folder."""
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request) -> str:  # type: ignore[no-untyped-def]
    """One contract test body, run against each ledger backend."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("pg_url")


_redis_db_counter = iter(range(1, 16))


@pytest.fixture
def redis_url() -> str:
    """A flushed database number on the shared Redis server."""
    import redis

    db = next(_redis_db_counter, None)
    if db is None:  # more Redis tests than database numbers: reuse the last one
        db = 15
    url = f"{REDIS_TEST_URL}/{db}"
    client = redis.Redis.from_url(url, socket_timeout=5)
    client.flushdb()
    client.close()
    return url
