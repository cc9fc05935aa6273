"""The provider's own identity on every score row: the model that answered and its system fingerprint.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08

A judge's version pins its configuration (the model alias asked for, the
prompt, the parameters), not what answers behind the alias: a provider that
moves ``gpt-4o-mini`` to a new snapshot changes scores under the same judge
version. ``scores.provider_model`` is the model the provider's response names
(litellm's ``ModelResponse.model``) and ``scores.system_fingerprint`` its
backend configuration where the provider sends one (OpenAI does); both NULL
for local judges, rows written before this revision, and providers that say
nothing. ``judgeq report`` and ``judgeq drift`` say when either changed.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("scores") as batch:
        batch.add_column(sa.Column("provider_model", sa.String(), nullable=True))
        batch.add_column(sa.Column("system_fingerprint", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scores") as batch:
        batch.drop_column("system_fingerprint")
        batch.drop_column("provider_model")
