"""Judge canaries: each check of a canary run's verdicts against its reference run's.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08

``canary_checks``: one row per check (the judge and its version, the
reference and the checked run, the paired items, the label agreement with
its 95 % Wilson interval, the mean absolute score difference, the threshold,
the status, and the models the provider said answered each run), indexed by
(judge, at). A new table only: the upgrade is quick.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "canary_checks",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("judge", sa.String(), nullable=False),
        sa.Column("judge_version", sa.String(), nullable=False),
        sa.Column("reference_run", sa.String(), nullable=False),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("agreement", sa.Float(), nullable=True),
        sa.Column("agreement_lo", sa.Float(), nullable=True),
        sa.Column("agreement_hi", sa.Float(), nullable=True),
        sa.Column("mean_abs_diff", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("reference_models", sa.JSON(), nullable=False),
        sa.Column("run_models", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canary_checks")),
        sa.CheckConstraint("status IN ('ok', 'alert', 'no_data')", name=op.f("ck_canary_checks_status")),
    )
    op.create_index(op.f("ix_canary_checks_judge_at"), "canary_checks", ["judge", "at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_canary_checks_judge_at"), table_name="canary_checks")
    op.drop_table("canary_checks")
