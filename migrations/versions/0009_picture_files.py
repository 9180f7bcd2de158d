"""picture_files: the bytes of paid pictures not yet posted, shared by every replica

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-10

Until now a picture whose upload failed was kept on the disk of the replica that made it, so another replica
found it "missing" and marked it lost. The bytes now wait in the database (the shared truth of replicas, and
what backups cover) until every channel has them. Additive: a new table only; rows with `local_path` (the old
layout) are still posted by the replica that has the file.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "picture_files",
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("mime", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["generated_images.id"],
            name=op.f("fk_picture_files_image_id_generated_images"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("image_id", name=op.f("pk_picture_files")),
    )
    op.create_index(op.f("ix_picture_files_created_at"), "picture_files", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_picture_files_created_at"), table_name="picture_files")
    op.drop_table("picture_files")
