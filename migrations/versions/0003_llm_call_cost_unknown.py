"""llm_calls.cost_usd may be NULL: unknown cost

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03

A call to a model that has no price in config.yml has an unknown cost. It used to be stored as 0, which the usage
report then showed as $0; NULL keeps it unknown (issue 18).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("llm_calls") as batch_op:
        batch_op.alter_column("cost_usd", existing_type=sa.Float(), nullable=True)


def downgrade() -> None:
    op.execute("UPDATE llm_calls SET cost_usd = 0 WHERE cost_usd IS NULL")
    with op.batch_alter_table("llm_calls") as batch_op:
        batch_op.alter_column("cost_usd", existing_type=sa.Float(), nullable=False)
