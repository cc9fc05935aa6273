"""Budgets: daily USD caps, their history, the controller's decisions and reservations; spend by judge and time.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05

``budgets``: one cap per scope ("global", "judge:NAME",
"schedule:NAME/judge:NAME"). ``budget_history``: every change, who made it
and through what (cli, flower, api). ``budget_decisions``: each rate the
budget controller chose and the figures behind it. ``budget_reservations``:
what enqueueing an online run set aside from its day's budget until its rows
settle it.

``ix_scores_eval_ts``: a judge's rows in a time range (a day's spend, the
recent cost per item and cache hit rate) without reading every score row.
Building it reads the scores table once: on a large ledger this step takes a
while (about a second per million rows), and on PostgreSQL it blocks writes
to scores meanwhile, so stop the workers for the upgrade, as for any.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "budgets",
        sa.Column("scope", sa.String(), nullable=False),
        sa.Column("usd_per_day", sa.Float(), nullable=False),
        sa.Column("updated_at", _TIMESTAMP, nullable=False),
        sa.Column("updated_by", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("scope", name=op.f("pk_budgets")),
        sa.CheckConstraint("usd_per_day >= 0 AND usd_per_day <= 1e12", name=op.f("ck_budgets_usd_per_day")),
    )
    op.create_table(
        "budget_history",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("at", _TIMESTAMP, nullable=False),
        sa.Column("scope", sa.String(), nullable=False),
        sa.Column("old_usd", sa.Float(), nullable=True),
        sa.Column("new_usd", sa.Float(), nullable=True),
        sa.Column("who", sa.String(), nullable=False),
        sa.Column("via", sa.String(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budget_history")),
        sa.CheckConstraint("via IN ('cli', 'flower', 'api')", name=op.f("ck_budget_history_via")),
    )
    op.create_table(
        "budget_decisions",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("at", _TIMESTAMP, nullable=False),
        sa.Column("day", sa.String(), nullable=False),
        sa.Column("schedule", sa.String(), nullable=False),
        sa.Column("judge", sa.String(), nullable=False),
        sa.Column("stratum", sa.String(), nullable=False),
        sa.Column("window", sa.String(), nullable=True),
        sa.Column("rate", sa.Float(), nullable=False),
        sa.Column("expected_count", sa.Float(), nullable=False),
        sa.Column("cost_per_item", sa.Float(), nullable=False),
        sa.Column("budget_left", sa.Float(), nullable=False),
        sa.Column("reserved_usd", sa.Float(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budget_decisions")),
        sa.CheckConstraint("rate >= 0 AND rate <= 1", name=op.f("ck_budget_decisions_rate")),
    )
    op.create_index(op.f("ix_budget_decisions_day_id"), "budget_decisions", ["day", "id"])
    op.create_table(
        "budget_reservations",
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("day", sa.String(), nullable=False),
        sa.Column("judge", sa.String(), nullable=False),
        sa.Column("schedule", sa.String(), nullable=False),
        sa.Column("reserved_usd", sa.Float(), nullable=False),
        sa.Column("created_at", _TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_budget_reservations")),
        sa.CheckConstraint("reserved_usd >= 0", name=op.f("ck_budget_reservations_reserved_usd")),
    )
    op.create_index(op.f("ix_budget_reservations_day_judge"), "budget_reservations", ["day", "judge"])
    op.create_index(op.f("ix_scores_eval_ts"), "scores", ["eval", "ts"])


def downgrade() -> None:
    op.drop_index(op.f("ix_scores_eval_ts"), table_name="scores")
    op.drop_index(op.f("ix_budget_reservations_day_judge"), table_name="budget_reservations")
    op.drop_table("budget_reservations")
    op.drop_index(op.f("ix_budget_decisions_day_id"), table_name="budget_decisions")
    op.drop_table("budget_decisions")
    op.drop_table("budget_history")
    op.drop_table("budgets")
