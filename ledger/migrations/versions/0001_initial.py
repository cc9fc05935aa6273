"""The initial ledger: runs, items, scores.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

Written by hand, with the types spelled out rather than imported from
ledger.models, so that this step keeps meaning what it meant when the models
change. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("dataset_name", sa.String(), nullable=False),
        sa.Column("dataset_hash", sa.String(), nullable=True),
        sa.Column("window", sa.String(), nullable=True),
        sa.Column("judges", sa.JSON(), nullable=False),
        sa.Column("n_items", sa.Integer(), nullable=False),
        sa.Column("expected", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("created_at", _TIMESTAMP, nullable=False),
        sa.Column("submitted_at", _TIMESTAMP, nullable=True),
        sa.Column("finished_at", _TIMESTAMP, nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.Column("max_cost_usd", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
        sa.CheckConstraint("kind IN ('offline', 'online')", name=op.f("ck_runs_kind")),
        sa.CheckConstraint("status IN ('submitting', 'running', 'done')", name=op.f("ck_runs_status")),
    )
    op.create_table(
        "items",
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("trace_id", sa.String(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(), nullable=False),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "trace_id", name=op.f("pk_items")),
    )
    op.create_index(op.f("ix_items_run_seq"), "items", ["run_id", "seq"])
    op.create_table(
        "scores",
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("trace_id", sa.String(), nullable=False),
        sa.Column("eval", sa.String(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("label", sa.String(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("judge_version", sa.String(), nullable=False),
        sa.Column("dataset", sa.String(), nullable=False),
        sa.Column("ts", _TIMESTAMP, nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("latency_s", sa.Float(), nullable=False),
        sa.Column("tokens_in", sa.Integer(), nullable=False),
        sa.Column("tokens_out", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("cached", sa.Boolean(), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("stratum", sa.String(), nullable=True),
        sa.Column("cluster", sa.String(), nullable=True),
        sa.Column("content_hash", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", "trace_id", "eval", name=op.f("pk_scores")),
        sa.CheckConstraint("status IN ('ok', 'error', 'skipped')", name=op.f("ck_scores_status")),
    )
    op.create_index(op.f("ix_scores_verdict_cache"), "scores", ["judge_version", "content_hash"])


def downgrade() -> None:
    op.drop_index(op.f("ix_scores_verdict_cache"), table_name="scores")
    op.drop_table("scores")
    op.drop_index(op.f("ix_items_run_seq"), table_name="items")
    op.drop_table("items")
    op.drop_table("runs")
