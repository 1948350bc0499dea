"""faq_entries.topic: the topic of an entry a moderator added, as FAQ file entries have one

An entry made from an answered question takes that question's topic, so questions it answers
later are grouped under it in the digest. Rows from before have none.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("faq_entries", sa.Column("topic", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("faq_entries") as batch:
        batch.drop_column("topic")
