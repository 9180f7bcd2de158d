"""memory: thread context and rolling summaries

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

- messages.context: a thread's earlier messages, read once when Lukas is mentioned in it. They precede the
  conversation's own messages in the prompt and are never answered.
- conversations.thread_read_at: when the thread was read (or found unreadable), so it is never read again.
- conversation_summaries: one rolling summary per conversation of what fell out of the window, with the range
  of messages it covers (so an erased message can be found and the summary rebuilt without it).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch_op:
        batch_op.add_column(sa.Column("context", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("conversations") as batch_op:
        batch_op.add_column(sa.Column("thread_read_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_messages_conversation_erased", "messages", ["conversation_id", "erased_at"])
    # Conversations from before this migration are threads Lukas is already part of: never read them again.
    op.execute("UPDATE conversations SET thread_read_at = created_at")
    op.create_table(
        "conversation_summaries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("token_count", sa.Integer(), nullable=False),
        sa.Column("through_message_id", sa.Integer(), nullable=False),
        sa.Column("through_context", sa.Boolean(), nullable=False),
        sa.Column("first_message_id", sa.Integer(), nullable=False),
        sa.Column("message_count", sa.Integer(), nullable=False),
        sa.Column("built_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_summaries_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_summaries")),
        sa.UniqueConstraint("conversation_id", name=op.f("uq_conversation_summaries_conversation_id")),
    )


def downgrade() -> None:
    op.drop_table("conversation_summaries")
    op.drop_index("ix_messages_conversation_erased", table_name="messages")
    with op.batch_alter_table("conversations") as batch_op:
        batch_op.drop_column("thread_read_at")
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_column("context")
