"""What every store of the Ledger shares: the engine, and connections that raise ledger errors.

One :class:`Db` per :class:`ledger.store.Ledger`, handed to each of its stores
(``ledger.stores``), so that a store is a plain class over a database rather
than a mixin that declares the connection it expects. Every connection it
gives out has the schema in place (``ledger.migrate.ensure_schema``, once per
empty database) and turns the database's errors into :class:`LedgerError`
(``ledger.refusals.from_database``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from ledger.engine import connect, create_ledger_engine
from ledger.migrate import ensure_schema
from ledger.refusals import from_database
from ledger.urls import normalize_url
from ledger.writer import RowWriter, writer_for


class Db:
    """The engine of one ledger URL, its dialect's row writer, and its connections and sessions."""

    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        self.engine: Engine = create_ledger_engine(self.url)
        self.dialect: str = self.engine.dialect.name
        self.writer: RowWriter = writer_for(self.dialect)  # items and scores: COPY on PostgreSQL

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A pooled connection for the caller's block (no transaction begun: ``conn.begin()`` for writes)."""
        try:
            ensure_schema(self.engine)
            with connect(self.engine) as conn:
                yield conn
        except sa.exc.DBAPIError as exc:  # the database's own errors, as SQLAlchemy wraps them
            raise from_database(self.url, exc) from exc
        except (OverflowError, UnicodeError) as exc:  # a driver that cannot send a value (not wrapped)
            raise from_database(self.url, exc) from exc

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A SQLModel session on a connection of :meth:`connect`, for reading and writing table classes."""
        with self.connect() as conn, Session(bind=conn) as session:
            yield session

    def rows(self, stmt: sa.Select[Any]) -> list[Any]:
        """The table objects ``stmt`` selects, detached (all columns loaded, no session behind them)."""
        with self.session() as session:
            rows = list(session.scalars(stmt))
            for row in rows:
                session.expunge(row)
            return rows

    def close(self) -> None:
        """Close the pooled connections; the next :meth:`connect` opens new ones."""
        self.engine.dispose()
