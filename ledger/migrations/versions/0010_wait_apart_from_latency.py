"""A row's time waited apart from its calls' own latency.

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
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("scores") as batch:
        batch.add_column(sa.Column("wait_s", sa.Float(), nullable=False, server_default=sa.text("0")))


def downgrade() -> None:
    with op.batch_alter_table("scores") as batch:
        batch.drop_column("wait_s")
