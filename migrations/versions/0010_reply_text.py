"""the reply being posted, kept on its question until recorded

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-10

`messages.reply_text` holds a reply while it is being posted (set with `posting`, cleared when the reply is
recorded), so a replica taking over an interrupted multi-part post can post exactly the parts Slack lacks.
Additive: a nullable column that older versions ignore.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch_op:
        batch_op.add_column(sa.Column("reply_text", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_column("reply_text")
