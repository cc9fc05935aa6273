"""Scores: what a cache hit saved, and why an error or skip happened.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

``saved_usd``: on a row served from the verdict cache (``cached`` true, cost
0), what the verdict cost when it was first paid for. ``error_kind``: why a row
is an error or a skip (transient, fatal, account, circuit, internal, budget),
so a report can tell a provider refusing the account from a flaky call.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("scores") as batch:
        batch.add_column(sa.Column("saved_usd", sa.Float(), nullable=False, server_default=sa.text("0")))
        batch.add_column(sa.Column("error_kind", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scores") as batch:
        batch.drop_column("error_kind")
        batch.drop_column("saved_usd")
