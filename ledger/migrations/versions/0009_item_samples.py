"""Items keep an online sample's weight and stratum, so that a resend of the item carries them.

Revision ID: 0009
Revises: 0006
Create Date: 2026-11-29

An online window's sampled trace is judged with the weight 1/p and stratum it
was sampled at; until now both travelled only in its chunk message. A chunk
sent again (``judgeq resume``, or the waiter's resend of a chunk a killed
worker lost) now reads them from the item. Offline items leave both NULL
(weight 1, the stratum in the record's metadata).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("weight", sa.Float(), nullable=True))
        batch.add_column(sa.Column("stratum", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.drop_column("stratum")
        batch.drop_column("weight")
