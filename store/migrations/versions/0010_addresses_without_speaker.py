"""Channel addresses kept from before they were kept without who set them up lose that person

The moderators' channel (service_state "moderators.address") and each event's live board
(events.board_address) are kept for posting there later. Versions before the chat channel
seam kept them as the command's whole Teams conversation reference, whose "user" member names
whoever typed "moderate here" or "board here"; a channel now keeps its addresses without the
speaker (Channel.for_keeping). This rewrites those old rows as a channel keeps them now, so
nothing after this revision needs to know an old address's shape: posting there needs the
conversation, service URL and bot only. The person is not restored on downgrade.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

SPEAKER = "user"  # in a botbuilder conversation reference: who sent the activity

service_state = sa.table("service_state", sa.column("name", sa.String), sa.column("value", sa.Text))
events = sa.table("events", sa.column("id", sa.Integer), sa.column("board_address", sa.Text))


def upgrade() -> None:
    conn = op.get_bind()
    queues = conn.execute(sa.select(service_state.c.name, service_state.c.value)
                          .where(service_state.c.name == "moderators.address"))
    for name, value in queues.all():
        kept = _without_speaker(value)
        if kept is not None:
            conn.execute(sa.update(service_state).where(service_state.c.name == name).values(value=kept))
    boards = conn.execute(sa.select(events.c.id, events.c.board_address).where(events.c.board_address.is_not(None)))
    for event_id, value in boards.all():
        kept = _without_speaker(value)
        if kept is not None:
            conn.execute(sa.update(events).where(events.c.id == event_id).values(board_address=kept))


def downgrade() -> None:
    pass  # who set a channel up is not kept anywhere else, and was never needed to post there


def _without_speaker(value: str | None) -> str | None:
    """The address as JSON without its speaker, or None when it has none (nothing to change)."""
    try:
        address: Any = json.loads(value or "")
    except ValueError:
        return None
    if not isinstance(address, dict) or SPEAKER not in address:
        return None
    return json.dumps({part: kept for part, kept in address.items() if part != SPEAKER})
