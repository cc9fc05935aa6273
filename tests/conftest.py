"""Fixtures shared by the suite: real PostgreSQL, real Redis, SQLite files.

PostgreSQL tests get a fresh database of their own on the shared server
(copied from a migrated template, or empty; dropped in the background); Redis tests get a flushed database number on a
Redis server started for the test session, so the suite never flushes or
consumes the machine's shared Redis.
"""

from __future__ import annotations

import os
import queue
import secrets
import sys
import threading
from collections.abc import Iterator

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

PG_ADMIN_URL = os.environ.get("JUDGEQ_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_TEST_URL = os.environ.get("JUDGEQ_TEST_REDIS", "")


def _pg_admin():  # type: ignore[no-untyped-def]
    import psycopg

    dsn = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    return psycopg.connect(dsn, autocommit=True, connect_timeout=5)


class _Dropper:
    """Drops the tests' databases on a thread of its own.

    ``DROP DATABASE`` waits for a checkpoint (about a second on a busy
    machine); the next test need not wait for it. ``close`` waits for every
    drop asked so far, at the end of the session.
    """

    def __init__(self) -> None:
        self._names: queue.Queue[str | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def drop(self, name: str) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="pg-dropper", daemon=True)
            self._thread.start()
        self._names.put(name)

    def close(self) -> None:
        if self._thread is not None:
            self._names.put(None)
            self._thread.join(timeout=120)
            self._thread = None

    def _run(self) -> None:
        while (name := self._names.get()) is not None:
            try:
                with _pg_admin() as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]
            except Exception as exc:  # noqa: BLE001 - a leftover database must not fail a later test
                print(f"conftest: could not drop {name}: {exc}", file=sys.stderr)


_dropper = _Dropper()


@pytest.fixture(scope="session")
def _pg_dropper() -> Iterator[_Dropper]:
    try:
        yield _dropper
    finally:
        _dropper.close()


def _pg_database(dropper: _Dropper, template: str | None) -> Iterator[str]:
    name = "judgeq_t_" + secrets.token_hex(6)
    with _pg_admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))  # type: ignore[arg-type]
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        dropper.drop(name)


@pytest.fixture(scope="session")
def _pg_template(_pg_dropper: _Dropper) -> Iterator[str]:
    """A database at the ledger's head revision, migrated once per test process, to copy per test.

    Copying it (``CREATE DATABASE ... TEMPLATE``) costs what creating an empty
    one does; migrating costs 0.3-1.3 s in every process that finds a database
    empty. No connection may stay open on it, so nothing but the copy uses it.
    """
    from ledger.migrate import upgrade

    name = "judgeq_tmpl_" + secrets.token_hex(6)
    with _pg_admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    try:
        upgrade(f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}")  # disposes of its engine: no connection stays
        yield name
    finally:
        _pg_dropper.drop(name)


@pytest.fixture
def pg_url(_pg_dropper: _Dropper, _pg_template: str) -> Iterator[str]:
    """The URL of a new PostgreSQL database already at the ledger's head revision, dropped after the test.

    Tests of migrating an empty database use ``pg_empty_url`` (or ``empty_ledger_url``).
    """
    yield from _pg_database(_pg_dropper, _pg_template)


@pytest.fixture
def pg_empty_url(_pg_dropper: _Dropper) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped after the test."""
    yield from _pg_database(_pg_dropper, None)


@pytest.fixture
def sqlite_url(tmp_path) -> str:  # type: ignore[no-untyped-def]
    """The URL of a new SQLite ledger file in the test's own folder."""
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request) -> str:  # type: ignore[no-untyped-def]
    """One contract test body, run against each ledger backend (PostgreSQL's already migrated, SQLite's not)."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("pg_url")


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_ledger_url(request) -> str:  # type: ignore[no-untyped-def]
    """An empty ledger on each backend: for the tests of creating and migrating the schema."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("pg_empty_url")


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
