"""Bringing a ledger database to this code's schema: alembic, driven from Python.

    upgrade(engine_or_url)  migrate to head (operators, tests, ``python -m ledger``)
    ensure_schema(engine)   on a ledger's first use: create the schema in an empty
                            database; otherwise check it is at head (one query, then
                            cached for the engine's life in this process)

The check of a ledger already at head does not import alembic (about a tenth
of a short command's start-up): the head it compares with is read from the
migration files' ``revision`` and ``down_revision`` assignments
(:func:`file_head`). Anything else (no single head there, another revision in
the database) takes the locked path, where alembic decides.

A database that is behind head is not upgraded behind the operator's back
(older workers of a fleet may still be writing to it): ``ensure_schema``
raises :class:`MigrationError` naming the command to run.

Concurrent starts are safe. Every migration runs under the migration lock and
re-reads the revision once it holds it: on PostgreSQL a session-level advisory
lock, held until the migration is committed; on SQLite ``BEGIN IMMEDIATE``,
the database's write lock, around the whole migration (SQLite's DDL is
transactional, so the migration and its version stamp commit together).

To write the next revision: ``alembic.command.revision(alembic_config(url),
message="...", autogenerate=True)`` against a database at head, then edit it
into a hand-written, self-contained step like ``0001_initial.py``.
"""

from __future__ import annotations

import ast
import functools
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ledger.engine import connect, create_ledger_engine
from ledger.errors import MigrationError
from ledger.urls import mask_url

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

MIGRATIONS_DIR: Final = Path(__file__).resolve().with_name("migrations")
PG_LOCK_KEY: Final = 0x6A75_6467_6571_6C67  # b"judgeqlg" as a bigint: the ledger's advisory lock
PG_LOCK_TIMEOUT_S: Final = 300
UPGRADE_HINT: Final = "judgeq db upgrade"

_at_head: weakref.WeakSet[Engine] = weakref.WeakSet()
_in_process = threading.Lock()


def alembic_config(url: str | None = None) -> Config:
    """An alembic ``Config`` for the ledger's migrations (no alembic.ini needed)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # ConfigParser interpolation
    return config


@functools.cache
def _scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The revision this code's models correspond to."""
    head = _scripts().get_current_head()
    if head is None:
        raise MigrationError(f"no migrations found in {MIGRATIONS_DIR}; the judgeq install is incomplete")
    return head


def current_revision(engine: Engine) -> str | None:
    """The database's revision, None for a database alembic has never touched."""
    from alembic.runtime.migration import MigrationContext

    with connect(engine) as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(target: Engine | str) -> None:
    """Migrate the ledger at ``target`` (an engine or a URL) to head."""
    engine = create_ledger_engine(target) if isinstance(target, str) else target
    try:
        with _migration_lock(engine) as conn:
            _migrate(conn, only_if_empty=False)
        _at_head.add(engine)
    finally:
        if isinstance(target, str):
            engine.dispose()


def ensure_schema(engine: Engine) -> None:
    """Create the schema in an empty database; check that any other is at head."""
    if engine in _at_head:
        return
    with _in_process:
        if engine in _at_head:
            return
        revision = _read_revision(engine)
        if revision is None or revision != file_head():
            with _migration_lock(engine) as conn:
                _migrate(conn, only_if_empty=True)
        _at_head.add(engine)


@functools.cache
def file_head() -> str | None:
    """The head revision as the migration files state it, read without alembic; None unless there is one head.

    Each file assigns ``revision`` and ``down_revision`` string literals (see
    ``0001_initial.py``); the head is the revision no file names as its
    ``down_revision``. A test checks it against :func:`head_revision`.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        for node in ast.parse(path.read_text(), filename=str(path)).body:
            target: ast.expr
            if isinstance(node, ast.AnnAssign) and node.value is not None:
                target, value = node.target, node.value
            elif isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value = node.targets[0], node.value
            else:
                continue
            if not isinstance(target, ast.Name):
                continue
            names = [value] if not isinstance(value, (ast.Tuple, ast.List)) else value.elts
            literals = {n.value for n in names if isinstance(n, ast.Constant) and isinstance(n.value, str)}
            if target.id == "revision":
                revisions |= literals
            elif target.id == "down_revision":
                parents |= literals
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _read_revision(engine: Engine) -> str | None:
    # The fast path: one query. A missing table is an error on every backend;
    # any failure here only sends us down the locked path, which looks again.
    with connect(engine) as conn:
        try:
            return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        except sa.exc.DBAPIError:
            return None


def _migrate(conn: Connection, *, only_if_empty: bool) -> None:
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.util.exc import CommandError

    url = mask_url(conn.engine.url.render_as_string(hide_password=False))
    head = head_revision()
    revision = MigrationContext.configure(conn).get_current_revision()
    if revision == head:
        return
    known = {script.revision for script in _scripts().walk_revisions()}
    if revision is not None and revision not in known:
        raise MigrationError(
            f"the ledger at {url} is at revision {revision!r}, newer than this judgeq knows "
            f"(head {head!r}); upgrade judgeq"
        )
    if revision is not None and only_if_empty:
        raise MigrationError(
            f"the ledger at {url} is at revision {revision!r}, this judgeq needs {head!r}; "
            f"stop older workers and run `{UPGRADE_HINT}`"
        )
    config = alembic_config()
    config.attributes["connection"] = conn
    try:
        command.upgrade(config, "head")
        conn.commit()
    except (sa.exc.DBAPIError, CommandError) as exc:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise MigrationError(f"migrating the ledger at {url} to {head!r} failed: {detail}") from exc


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[Connection]:
    with connect(engine) as conn:
        backend = conn.dialect.name
        if backend == "postgresql":
            try:
                conn.execute(sa.text(f"SET LOCAL lock_timeout = '{PG_LOCK_TIMEOUT_S}s'"))
                conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": PG_LOCK_KEY})
            except sa.exc.OperationalError as exc:
                raise MigrationError(
                    f"waited {PG_LOCK_TIMEOUT_S} s for another process migrating the ledger; "
                    "check for a stuck judgeq process, then retry"
                ) from exc
            conn.commit()  # ends SET LOCAL; the advisory lock belongs to the session
            try:
                yield conn
            finally:
                conn.rollback()  # a failed migration leaves an aborted transaction
                conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": PG_LOCK_KEY})
                conn.commit()
        elif backend == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # waits up to the busy timeout
            yield conn  # committed by _migrate, rolled back on close otherwise
        else:
            yield conn
