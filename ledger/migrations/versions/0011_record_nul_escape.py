"""Stored records escape NUL, so that the database's JSON operators can read every record.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30

Until now ``items.record`` kept a NUL as JSON's ``\\u0000``, which PostgreSQL
stores but cannot extract (every ``->`` on such a document fails), so one
trace's NUL failed every query slicing its run by metadata. Records are now
stored with U+2400 doubled and NUL as U+2400 ``0`` (``ledger.text``); this
step rewrites the records stored before, on both backends alike, so the
ledger's reading (which turns the escapes back) is right for old and new rows.
Only records whose text holds a NUL or a U+2400 are read and rewritten, in
batches by key. The step is self-contained: the escaping is written out here,
not imported, so that it stays what it was when the rows were rewritten.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ESCAPE = "\u2400"
BATCH = 1000
_ITEMS = sa.table("items", sa.column("run_id", sa.String), sa.column("trace_id", sa.String),
                  sa.column("record", sa.JSON))


def _walk(value: Any, text: Callable[[str], str]) -> Any:
    """``value`` with ``text`` applied to every key and string of it."""
    if isinstance(value, str):
        return text(value)
    if isinstance(value, dict):
        return {_walk(k, text): _walk(v, text) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, text) for v in value]
    return value


def _escaped(value: str) -> str:
    return value.replace(ESCAPE, ESCAPE * 2).replace("\x00", ESCAPE + "0")


def _unescaped(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        if value[i] == ESCAPE and i + 1 < len(value) and value[i + 1] in ("0", ESCAPE):
            out.append("\x00" if value[i + 1] == "0" else ESCAPE)
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def _rewrite(escape: bool) -> None:
    """Rewrite, in batches by key, every record whose JSON text may hold a NUL or a U+2400."""
    conn = op.get_bind()
    text = sa.cast(_ITEMS.c.record, sa.Text)
    find = sa.func.strpos if conn.dialect.name == "postgresql" else sa.func.instr
    # json.dumps writes both as ASCII escapes; a writer that did not would leave U+2400 as it is.
    maybe = sa.or_(find(text, "\\u0000") > 0, find(text, "\\u2400") > 0, find(text, ESCAPE) > 0)
    change = _escaped if escape else _unescaped
    after: tuple[str, str] = ("", "")
    while True:
        rows = conn.execute(
            sa.select(_ITEMS.c.run_id, _ITEMS.c.trace_id, _ITEMS.c.record)
            .where(maybe, sa.tuple_(_ITEMS.c.run_id, _ITEMS.c.trace_id) > sa.tuple_(*after))
            .order_by(_ITEMS.c.run_id, _ITEMS.c.trace_id).limit(BATCH)).all()
        if not rows:
            return
        changed = []
        for run_id, trace_id, record in rows:
            new = _walk(record, change)
            if new != record:
                changed.append({"r": run_id, "t": trace_id, "new": new})
        if changed:
            conn.execute(sa.update(_ITEMS).where(_ITEMS.c.run_id == sa.bindparam("r"),
                                                 _ITEMS.c.trace_id == sa.bindparam("t"))
                         .values(record=sa.bindparam("new", type_=sa.JSON)), changed)
        after = (rows[-1][0], rows[-1][1])


def upgrade() -> None:
    _rewrite(escape=True)


def downgrade() -> None:
    _rewrite(escape=False)
