"""question_support keeps where each supporter said "me too", so the answer reaches them

The conversation reference (as stored for questions) names the supporter, so the bot can open
its personal chat with them and send them the answer once. Rows from before have none: those
supporters are counted as before and not told.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("question_support", sa.Column("address", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("question_support") as batch:
        batch.drop_column("address")
