"""shared guard state: each message's limit verdict, limit windows, admin notices claimed once

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04

`messages.verdict` keeps the limits' decision with the message (NULL = answer), so a handed-back or taken-over
message is answered as it was judged. `guard_windows` holds each limit window (one row per scope and person or
conversation) where every replica sees it. `admin_notices` is claimed (unique key) before an admin DM is sent,
so concurrent messages, replicas and restarts send it once. Additive only: older replicas ignore all three.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch_op:
        batch_op.add_column(sa.Column("verdict", sa.String(length=16), nullable=True))
    op.create_table(
        "guard_windows",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("hits", sa.Text(), nullable=False),
        sa.Column("warned_at", sa.Float(), nullable=True),
        sa.Column("touched_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_guard_windows")),
    )
    op.create_index(op.f("ix_guard_windows_touched_at"), "guard_windows", ["touched_at"], unique=False)
    op.create_table(
        "admin_notices",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_admin_notices")),
    )


def downgrade() -> None:
    op.drop_table("admin_notices")
    op.drop_index(op.f("ix_guard_windows_touched_at"), table_name="guard_windows")
    op.drop_table("guard_windows")
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_column("verdict")
