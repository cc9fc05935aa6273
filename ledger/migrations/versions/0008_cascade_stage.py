"""Distilled judges and cascades: the confidence of a row's verdict, the cascade stage that decided, the audit.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29

``scores.confidence``: a distilled judge's probability of its label.
``scores.stage``: on a cascade's row, ``first`` (its distilled judge decided)
or ``then`` (the item escalated to the LLM judge). ``scores.audit_label`` and
``scores.audit_score``: on an audited row, what the LLM judge said beside the
distilled judge's verdict. All nullable, so adding them rewrites no row.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("scores") as batch:
        batch.add_column(sa.Column("confidence", sa.Float(), nullable=True))
        batch.add_column(sa.Column("stage", sa.String(), nullable=True))
        batch.add_column(sa.Column("audit_label", sa.String(), nullable=True))
        batch.add_column(sa.Column("audit_score", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scores") as batch:
        batch.drop_column("audit_score")
        batch.drop_column("audit_label")
        batch.drop_column("stage")
        batch.drop_column("confidence")
