"""Fixtures shared by the suite: real PostgreSQL, real Redis, SQLite files.

PostgreSQL tests get a fresh database of their own on the shared server
(created and dropped here); Redis tests get a flushed database number on a
Redis server started for the test session, so the suite never flushes or
consumes the machine's shared Redis.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

PG_ADMIN_URL = os.environ.get("JUDGEQ_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_TEST_URL = os.environ.get("JUDGEQ_TEST_REDIS", "")


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


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The base URL of a Redis server private to this test session.

    Tests flush and consume whole databases, so they get a server of their own
    (on a free port, nothing on disk) rather than sharing one with anything
    else on the machine. ``JUDGEQ_TEST_REDIS`` names an existing server instead.
    """
    if REDIS_TEST_URL:
        yield REDIS_TEST_URL
        return
    from .processes import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    try:
        yield server.url
    finally:
        server.stop()


_redis_dbs = iter(range(10**9))


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """A flushed database number (1-15, in turn) on the session's Redis server."""
    import redis

    db = 1 + next(_redis_dbs) % 15
    url = f"{redis_server}/{db}"
    client = redis.Redis.from_url(url, socket_timeout=5)
    client.flushdb()
    client.close()
    return url
