"""The sql trace source against real PostgreSQL (a million rows, streamed) and SQLite files.

The million rows are made by the server (generate_series), so the test
spends its seconds reading them back the way a window job does: through a
server-side cursor whose memory must not grow with the window.
"""

from __future__ import annotations

import os
import sqlite3
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from online.errors import OnlineConfigError, SourceError, SourceUnavailable
from online.sources import TraceSource, open_source

pytestmark = [pytest.mark.timeout(120), pytest.mark.postgres]

START = datetime(2026, 11, 22, 13, tzinfo=UTC)
END = START + timedelta(hours=1)
MAPPED = {"id": "trace_id", "input": "prompt", "output": "completion", "metadata.locale": "locale",
          "metadata.session_id": "session_id"}


def _psql(url: str, *statements: str) -> None:
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)  # type: ignore[arg-type]


def _source(monkeypatch: pytest.MonkeyPatch, url: str, **table: Any) -> TraceSource:
    monkeypatch.setenv("TEST_TRACES_URL", url)
    return open_source("warehouse", {"type": "sql", "url_env": "TEST_TRACES_URL", "time_column": "created_at",
                                     **table}, Path("."))


def test_a_million_rows_stream_in_flat_memory(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # 1M rows 3.6 ms apart fill [13:00, 14:00); one row either side of the window is left out.
    _psql(pg_url, """CREATE TABLE traces AS SELECT 't' || lpad(i::text, 7, '0') AS trace_id,
                         'How do I reset my password?' AS prompt, 'Use the link on the login page.' AS completion,
                         'l' || (i % 20) AS locale, 's' || (i / 5) AS session_id,
                         timestamptz '2026-11-22 13:00:00+00' + i * interval '3600 microseconds' AS created_at
                     FROM generate_series(0, 999999) AS i""",
          "INSERT INTO traces VALUES ('before', 'q', 'a', 'de', 's', '2026-11-22 12:59:59.999999+00'), "
          "('at-end', 'q', 'a', 'de', 's', '2026-11-22 14:00:00+00')",
          "CREATE INDEX ON traces (created_at)")
    source = _source(monkeypatch, pg_url, table="traces", columns=MAPPED, batch_size=2000)
    assert source.count(START, END) == 1_000_000

    skipped: Counter[str] = Counter()
    before = _resident()
    records = source.traces(START, END, skipped)
    first = next(records)
    seen, last, peak = 1, first, _resident()
    for last in records:
        seen += 1
        if seen % 50_000 == 0:
            peak = max(peak, _resident())
    assert seen == 1_000_000 and not skipped
    assert first == {"id": "t0000000", "input": "How do I reset my password?",
                     "output": "Use the link on the login page.", "ts": "2026-11-22T13:00:00.000000+00:00",
                     "metadata": {"locale": "l0", "session_id": "s0"}}
    assert last["id"] == "t0999999" and last["ts"] == "2026-11-22T13:59:59.996400+00:00"
    # A window fetched whole (a client-side cursor) takes hundreds of MB before the first record; a stream, a batch.
    assert peak - before < 40_000_000, f"resident memory grew by {peak - before:,} bytes while streaming"


def _resident() -> int:
    """This process's resident memory now, in bytes (tracemalloc would slow a million rows down fourfold)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def test_types_nulls_bounds_and_order(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _psql(pg_url, """CREATE TABLE logs (id bigint, q text, a text, ctx text[], meta jsonb, score numeric,
                                        trace uuid, at timestamp without time zone)""",
          "SET TIME ZONE 'America/New_York'",  # the source's session must not depend on the server's zone
          """INSERT INTO logs VALUES
               (3, 'late', 'c', NULL, '{"tenant": "acme"}', 2.50, NULL, '2026-11-22 13:59:59.5'),
               (1, 'first', 'a', ARRAY['x', 'y'], NULL, 1, 'a8098c1a-f86e-11da-bd1a-00112444be1e', '2026-11-22 13:00'),
               (2, NULL, 'b', NULL, '{"tenant": "beta", "n": 1}', NULL, NULL, '2026-11-22 13:30'),
               (4, 'out', 'd', NULL, NULL, NULL, NULL, '2026-11-22 14:00'),
               (5, 'out', 'e', NULL, NULL, NULL, NULL, '2026-11-22 12:59:59.999')""")
    source = _source(monkeypatch, pg_url, table="logs", time_column="at",
                     columns={"id": "id", "input": "q", "output": "a", "context": "ctx", "metadata": "meta",
                              "metadata.score": "score", "metadata.trace": "trace"})
    records = list(source.traces(START, END, Counter()))
    assert [r["id"] for r in records] == ["1", "2", "3"]  # ordered by time, ids as text, [start, end)
    assert records[0] == {"id": "1", "input": "first", "output": "a", "context": ["x", "y"],
                          "ts": "2026-11-22T13:00:00.000000+00:00",
                          "metadata": {"score": 1, "trace": "a8098c1a-f86e-11da-bd1a-00112444be1e"}}
    assert "input" not in records[1] and records[1]["metadata"] == {"tenant": "beta", "n": 1}
    assert records[2]["metadata"] == {"tenant": "acme", "score": 2.5}
    assert records[2]["ts"] == "2026-11-22T13:59:59.500000+00:00"


def test_a_query_is_read_as_a_subquery_and_columns_default_to_their_names(pg_url: str,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    _psql(pg_url, "CREATE TABLE t (trace_id text, query text, response text, locale text, env text, "
                  "created_at timestamptz)",
          "INSERT INTO t VALUES ('a', 'q1', 'r1', 'de', 'prod', '2026-11-22 13:10+00'), "
          "('b', 'q2', 'r2', 'fr', 'staging', '2026-11-22 13:20+00'), "
          "('c', 'q3', 'r3', 'fr', 'prod', '2026-11-22 15:20+02')")  # 13:20 UTC
    source = _source(monkeypatch, pg_url, query="SELECT * FROM t WHERE env = 'prod' -- a filter\n;")
    records = list(source.traces(START, END, Counter()))
    assert records == [
        {"ts": "2026-11-22T13:10:00.000000+00:00", "id": "a", "input": "q1", "output": "r1",
         "metadata": {"locale": "de", "env": "prod"}},
        {"ts": "2026-11-22T13:20:00.000000+00:00", "id": "c", "input": "q3", "output": "r3",
         "metadata": {"locale": "fr", "env": "prod"}},
    ]
    assert source.count(START, END) == 2


def test_bad_mappings_name_the_source_and_the_column(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _psql(pg_url, "CREATE TABLE t (trace_id text, completion text, created_at timestamptz, day text)")
    source = _source(monkeypatch, pg_url, table="t", columns={"output": "Completion", "id": "trace_id"})
    with pytest.raises(SourceError, match=r"'warehouse'.*no column 'Completion' \(did you mean 'completion'\?\).*"
                                          r"sources\.warehouse\.columns\.\"output\""):
        source.count(START, END)
    with pytest.raises(SourceError, match=r"table 'traces' does not exist.*sources\.warehouse\.table"):
        list(_source(monkeypatch, pg_url, table="traces").traces(START, END, Counter()))
    with pytest.raises(SourceError, match=r"no column 'ts'.*sources\.warehouse\.time_column"):
        _source(monkeypatch, pg_url, table="t", time_column="ts").count(START, END)
    with pytest.raises(SourceError, match=r"time column 'day' is not a timestamp"):
        _source(monkeypatch, pg_url, table="t", time_column="day").count(START, END)
    with pytest.raises(SourceError, match=r"refused its query.*sources\.warehouse\.query"):
        _source(monkeypatch, pg_url, query="SELECT nope FROM t").count(START, END)


def test_config_errors_say_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_TRACES_URL", raising=False)
    table = {"type": "sql", "url_env": "NOT_SET_TRACES_URL", "table": "t", "time_column": "at"}
    with pytest.raises(OnlineConfigError, match=r"NOT_SET_TRACES_URL, which is not set; set NOT_SET_TRACES_URL"):
        open_source("w", table, Path("."))
    monkeypatch.setenv("NOT_SET_TRACES_URL", "sqlite:///x.db")
    cases: list[tuple[dict[str, Any], str]] = [({"query": "SELECT 1"}, r"sources\.w: set exactly one of table"),
                         ({"table": None, "query": "DELETE FROM t"}, r"sources\.w\.query: query must be a SELECT"),
                         ({"columns": {"answer": "a", "output": "o"}}, r"sources\.w\.columns: .*'answer'"),
                         ({"time_colum": "at"}, r"sources\.w\.time_colum is not a setting")]
    for bad, message in cases:
        with pytest.raises(OnlineConfigError, match=message):
            open_source("w", {k: v for k, v in {**table, **bad}.items() if v is not None}, Path("."))


def test_an_unreachable_database_is_unavailable_and_its_password_stays_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    source = _source(monkeypatch, "postgresql://judge:s3cr3t-pw@127.0.0.1:1/traces", table="t")
    with pytest.raises(SourceUnavailable) as caught:
        source.count(START, END)
    assert "s3cr3t-pw" not in str(caught.value)
    assert "postgresql+psycopg://judge:***@127.0.0.1:1/traces" in str(caught.value)
    assert "TEST_TRACES_URL" in str(caught.value)


def test_sqlite_compares_iso_text_in_utc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "traces.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE traces (id TEXT, input TEXT, output TEXT, locale TEXT, created_at TEXT)")
        conn.executemany("INSERT INTO traces VALUES (?, ?, ?, ?, ?)", [
            ("z", "q", "a", "de", "2026-11-22T13:00:00Z"),
            ("offset", "q", "a", "fr", "2026-11-22T15:30:00+02:00"),  # 13:30 UTC
            ("naive", "q", "a", None, "2026-11-22 13:45:00.250"),
            ("out", "q", "a", "de", "2026-11-22T14:30:00+02:00"),  # 12:30 UTC
            ("end", "q", "a", "de", "2026-11-22T14:00:00Z"),
            ("junk", "q", "a", "de", "yesterday"),
        ])
    source = _source(monkeypatch, f"sqlite:///{path}", table="traces")
    records = list(source.traces(START, END, Counter()))
    assert [(r["id"], r["ts"]) for r in records] == [("z", "2026-11-22T13:00:00.000+00:00"),
                                                     ("offset", "2026-11-22T13:30:00.000+00:00"),
                                                     ("naive", "2026-11-22T13:45:00.250+00:00")]
    assert records[0]["metadata"] == {"locale": "de"} and "metadata" not in records[2]
    assert source.count(START, END) == 3
    with pytest.raises(SourceError, match=r"no column 'created'"):
        _source(monkeypatch, f"sqlite:///{path}", table="traces", time_column="created").count(START, END)
    with pytest.raises(SourceUnavailable, match=r"SQLite file .*missing\.db' does not exist"):
        _source(monkeypatch, f"sqlite:///{tmp_path / 'missing.db'}", table="traces").count(START, END)
    assert not (tmp_path / "missing.db").exists()  # not created by looking


def test_columns_rename_and_the_other_columns_keep_their_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``columns`` maps what is named otherwise; a column named ``output`` needs no mapping, and none is dropped."""
    path = tmp_path / "traces.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE traces (trace_id TEXT, prompt TEXT, output TEXT, locale TEXT, input TEXT, "
                     "created_at TEXT)")
        conn.execute("INSERT INTO traces VALUES ('a', 'q1', 'r1', 'de', 'raw q1', '2026-11-22T13:00:00Z')")
        conn.execute("CREATE TABLE answers (prompt TEXT, created_at TEXT)")
    source = _source(monkeypatch, f"sqlite:///{path}", table="traces", columns={"input": "prompt"})
    [record] = source.traces(START, END, Counter())
    # input comes from prompt (mapped); the column named input, its field taken, is kept in metadata.
    assert record == {"ts": "2026-11-22T13:00:00.000+00:00", "input": "q1", "id": "a", "output": "r1",
                      "metadata": {"locale": "de", "input": "raw q1"}}
    without_output = _source(monkeypatch, f"sqlite:///{path}", table="answers", columns={"input": "prompt"})
    with pytest.raises(SourceError, match=r"'warehouse': no column of table 'answers' gives the output .*"
                                          r"sources\.warehouse\.columns, e\.g\. columns = \{ output = "):
        list(without_output.traces(START, END, Counter()))
