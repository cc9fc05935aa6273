"""Runs: the status "abandoned".

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28

A run cut off while it was being submitted can be given up with ``judgeq
abandon`` (and is given up when its dataset file changes while it is read);
no gate or baseline uses an abandoned run. Only the CHECK constraint on
``runs.status`` changes; on SQLite, batch mode copies the table to change it.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BEFORE = "status IN ('submitting', 'running', 'done')"
_AFTER = "status IN ('submitting', 'running', 'done', 'abandoned')"


def _check(allowed: str) -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_constraint(op.f("ck_runs_status"), type_="check")
        batch.create_check_constraint(op.f("ck_runs_status"), allowed)


def upgrade() -> None:
    _check(_AFTER)


def downgrade() -> None:
    # Before 0003 a run given up on stayed "submitting", which nothing picks either.
    op.execute("UPDATE runs SET status = 'submitting' WHERE status = 'abandoned'")
    _check(_BEFORE)
