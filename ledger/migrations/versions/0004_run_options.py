"""Runs: the submit options a resume must honour.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29

``no_cache``: the run was submitted with ``--no-cache`` (remote judges call
even for items with a cached verdict), so ``judgeq resume`` sends its chunks
the same way. ``max_cost_usd`` (``--max-cost``) has been a column since 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("no_cache", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("no_cache")
