"""Drift checks: each slice's outcome of ``judgeq drift`` and of beat's drift tick.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29

``drift_checks``: one row per slice per check (the short window's and the
long baseline's means, errors and sizes, the drop, its p value and Holm's
adjusted one, the verdict), grouped by ``check_id``; indexed by (source,
judge, at) for a trend's alerts. A new table only: the upgrade is quick.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "drift_checks",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("check_id", sa.String(), nullable=False),
        sa.Column("at", _TIMESTAMP, nullable=False),
        sa.Column("checked_at", _TIMESTAMP, nullable=False),
        sa.Column("via", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("judge", sa.String(), nullable=False),
        sa.Column("short", sa.String(), nullable=False),
        sa.Column("long", sa.String(), nullable=False),
        sa.Column("min_drop", sa.Float(), nullable=False),
        sa.Column("short_start", _TIMESTAMP, nullable=True),
        sa.Column("short_end", _TIMESTAMP, nullable=True),
        sa.Column("long_start", _TIMESTAMP, nullable=True),
        sa.Column("long_end", _TIMESTAMP, nullable=True),
        sa.Column("short_windows", sa.JSON(), nullable=False),
        sa.Column("slice_key", sa.String(), nullable=True),
        sa.Column("slice", sa.String(), nullable=False),
        sa.Column("short_mean", sa.Float(), nullable=True),
        sa.Column("short_se", sa.Float(), nullable=True),
        sa.Column("short_n", sa.Integer(), nullable=False),
        sa.Column("long_mean", sa.Float(), nullable=True),
        sa.Column("long_se", sa.Float(), nullable=True),
        sa.Column("long_n", sa.Integer(), nullable=False),
        sa.Column("score_drop", sa.Float(), nullable=True),
        sa.Column("p_value", sa.Float(), nullable=True),
        sa.Column("adjusted_p", sa.Float(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("correction", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drift_checks")),
        sa.CheckConstraint("status IN ('alert', 'ok', 'too_small', 'no_data')", name=op.f("ck_drift_checks_status")),
        sa.CheckConstraint("via IN ('cli', 'beat')", name=op.f("ck_drift_checks_via")),
    )
    op.create_index(op.f("ix_drift_checks_source_judge_at"), "drift_checks", ["source", "judge", "at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_drift_checks_source_judge_at"), table_name="drift_checks")
    op.drop_table("drift_checks")
