"""Counting a run's ledger rows straight from the database: what tests assert on."""

from __future__ import annotations

from sqlalchemy import create_engine, text


def rows_and_keys(url: str, run_id: str) -> tuple[int, int]:
    """(score rows, distinct (trace, eval) keys) of a run: equal when nothing is duplicated."""
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text("select count(*) from scores where run_id=:r"), {"r": run_id}).scalar_one()
        keys = conn.execute(
            text("select count(*) from (select distinct trace_id, eval from scores where run_id=:r) k"),
            {"r": run_id},
        ).scalar_one()
    engine.dispose()
    return int(rows), int(keys)
