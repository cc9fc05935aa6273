"""A row's time waited apart from its calls' own latency; the run status "stopped".

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30

``scores.latency_s`` was the wall time of an item's judgement, so under a
tight rate limit it held mostly the limiter's waits (a 30 ms provider showed a
p50 of 1.4 s). From this revision on it is the calls' own time, and
``scores.wait_s`` holds the time waited around them: rate limit slots, retry
backoff, a handed-back item's time in the queue. Rows written before it keep
their wall time in ``latency_s`` and 0 in ``wait_s`` (which part of it was
waiting was never recorded).

``runs.status`` may be "stopped": an embedded run whose process was
interrupted (SIGTERM, Ctrl-C) before its rows were all written. It showed
"running" though nothing judged it; ``judgeq resume`` continues it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BEFORE = "status IN ('submitting', 'running', 'done', 'abandoned')"
_AFTER = "status IN ('submitting', 'running', 'done', 'abandoned', 'stopped')"


def _check(allowed: str) -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_constraint(op.f("ck_runs_status"), type_="check")
        batch.create_check_constraint(op.f("ck_runs_status"), allowed)


def upgrade() -> None:
    with op.batch_alter_table("scores") as batch:
        batch.add_column(sa.Column("wait_s", sa.Float(), nullable=False, server_default=sa.text("0")))
    _check(_AFTER)


def downgrade() -> None:
    op.execute("UPDATE runs SET status = 'running' WHERE status = 'stopped'")  # as it showed before 0010
    _check(_BEFORE)
    with op.batch_alter_table("scores") as batch:
        batch.drop_column("wait_s")
