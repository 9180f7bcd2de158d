"""per-channel notes and pictures on request

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03

Pictures drawn on request are GeneratedImage rows too (slot_key `request:<channel>:<ts>`, so a redelivered event
never buys twice), with who asked and the thread the picture goes to. `picture_quotas` counts each person's
requests per day (and, under user_id '*', serialises claims so the daily quota and the monthly budget hold exactly
under concurrency). `channel_notes` remembers the threads of a disabled channel that already got Lukas's note.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("generated_images") as batch_op:
        batch_op.add_column(sa.Column("requested_by", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("thread_ts", sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f("ix_generated_images_requested_by"), ["requested_by"], unique=False)
    op.create_table(
        "picture_quotas",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "day", name=op.f("pk_picture_quotas")),
    )
    op.create_table(
        "channel_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("thread_ts", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_notes")),
        sa.UniqueConstraint("team_id", "channel_id", "thread_ts", name="uq_channel_notes_key"),
    )


def downgrade() -> None:
    op.drop_table("channel_notes")
    op.drop_table("picture_quotas")
    with op.batch_alter_table("generated_images") as batch_op:
        batch_op.drop_index(batch_op.f("ix_generated_images_requested_by"))
        batch_op.drop_column("thread_ts")
        batch_op.drop_column("requested_by")
