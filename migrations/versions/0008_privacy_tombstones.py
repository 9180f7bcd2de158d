"""privacy: erasable picture prompts, tombstones of messages deleted before they were stored

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10

- generated_images.erased_at: a picture drawn on request keeps the person's idea in prompt/revised_prompt; they
  are erased (like message text) on `/lukas forget`, past retention.days and when the asking message is deleted.
- message_tombstones: (channel_id, slack_ts) of a message deleted in Slack before Lukas stored it, so a late or
  redelivered copy is stored erased and never answered. No text; rows older than a day are pruned.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("generated_images") as batch_op:
        batch_op.add_column(sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "message_tombstones",
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("slack_ts", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel_id", "slack_ts", name=op.f("pk_message_tombstones")),
    )
    op.create_index(op.f("ix_message_tombstones_created_at"), "message_tombstones", ["created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_message_tombstones_created_at"), table_name="message_tombstones")
    op.drop_table("message_tombstones")
    with op.batch_alter_table("generated_images") as batch_op:
        batch_op.drop_column("erased_at")
