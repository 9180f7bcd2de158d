"""message edits and erasure

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02

A person's message can be edited in Slack (its stored text follows) or erased (deleted in Slack, forgotten on
request, or past retention): the row stays for the ledger, its text is gone and it never reaches a model again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch_op:
        batch_op.add_column(sa.Column("edited_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_column("erased_at")
        batch_op.drop_column("edited_at")
