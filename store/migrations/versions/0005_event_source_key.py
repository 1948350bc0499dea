"""events.source_key: the Teams delivery that opened an event, so a redelivery opens nothing new

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("events", sa.Column("source_key", sa.String(length=600), nullable=True))
    op.create_index("uq_events_source_key", "events", ["source_key"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_events_source_key", table_name="events")
    op.drop_column("events", "source_key")
