"""reply leases with fencing, instances with heartbeats, per-month image budget reservations

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03

A claim on a person's message is a lease: an owner (the instance id of a running Lukas), an expiry on the
database's clock (seconds since the epoch, so replicas with skewed clocks agree) and an epoch that grows with
every claim. Every later write is conditional on owner and epoch (fencing). `instances` holds each running
Lukas's heartbeat. `image_budget_months` makes the monthly image budget a single row that concurrent runs
reserve from atomically.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch_op:
        batch_op.add_column(sa.Column("lease_owner", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("lease_epoch", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("lease_until", sa.Float(), nullable=True))
    op.create_table(
        "instances",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("heartbeat_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instances")),
    )
    op.create_table(
        "image_budget_months",
        sa.Column("month", sa.String(length=16), nullable=False),
        sa.Column("reserved_usd", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("month", name=op.f("pk_image_budget_months")),
    )


def downgrade() -> None:
    op.drop_table("image_budget_months")
    op.drop_table("instances")
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_column("lease_until")
        batch_op.drop_column("lease_epoch")
        batch_op.drop_column("lease_owner")
