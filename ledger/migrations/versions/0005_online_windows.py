"""Online runs: per-stratum counts of a window, sampling rates, and finding a schedule's windows.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

``window_strata``: per online run (one window x one judge) and stratum, the
traces seen, filtered out, sampled and enqueued, and the rate p they were
sampled at, so that "why was this trace not judged?" and the population
estimate can be answered without a row per unsampled trace.
``sampling_rates``: rates set per (schedule, judge, stratum) over the
configured ones (the budget controller's seam), with who set them and why.
``ix_runs_kind_dataset_name_window``: a schedule's runs over a range of windows.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIMESTAMP = sa.DateTime(timezone=True)
_RATE = "rate >= 0 AND rate <= 1"


def upgrade() -> None:
    op.create_table(
        "window_strata",
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("stratum", sa.String(), nullable=False),
        sa.Column("seen", sa.Integer(), nullable=False),
        sa.Column("filtered", sa.Integer(), nullable=False),
        sa.Column("sampled", sa.Integer(), nullable=False),
        sa.Column("enqueued", sa.Integer(), nullable=False),
        sa.Column("rate", sa.Float(), nullable=False),
        sa.Column("updated_at", _TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "stratum", name=op.f("pk_window_strata")),
        sa.CheckConstraint(_RATE, name=op.f("ck_window_strata_rate")),
    )
    op.create_table(
        "sampling_rates",
        sa.Column("schedule", sa.String(), nullable=False),
        sa.Column("judge", sa.String(), nullable=False),
        sa.Column("stratum", sa.String(), nullable=False),
        sa.Column("rate", sa.Float(), nullable=False),
        sa.Column("set_by", sa.String(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("updated_at", _TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("schedule", "judge", "stratum", name=op.f("pk_sampling_rates")),
        sa.CheckConstraint(_RATE, name=op.f("ck_sampling_rates_rate")),
    )
    op.create_index(op.f("ix_runs_kind_dataset_name_window"), "runs", ["kind", "dataset_name", "window"])


def downgrade() -> None:
    op.drop_index(op.f("ix_runs_kind_dataset_name_window"), table_name="runs")
    op.drop_table("sampling_rates")
    op.drop_table("window_strata")
