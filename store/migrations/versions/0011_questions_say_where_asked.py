"""Questions asked in Teams before the words for where were kept get them, as forwards showed them

A question keeps, with its reply address, where it was asked in words its chat channel chose
(the address's "askedIn"): forward mails and moderators' cards show them. Questions recorded
before that were all asked in Teams, and were shown the kind of their Teams chat; this keeps
those same words with them, so nothing after this revision words a Teams chat but the Teams
channel itself. Downgrading leaves the words in place (earlier versions show them too).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

ASKED_IN = "askedIn"
#: What earlier versions showed for a Teams chat of each kind (conversationType) without words.
WORDS = {"channel": "a Teams channel", "groupChat": "a group chat"}
PERSONAL = "a personal chat with the bot"

questions = sa.table(
    "questions", sa.column("id", sa.Integer), sa.column("source", sa.String), sa.column("address", sa.Text),
    sa.column("conversation_type", sa.String),
)


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(questions.c.id, questions.c.address, questions.c.conversation_type).where(
            questions.c.source == "teams", questions.c.address.is_not(None),
            questions.c.address.not_like(f'%"{ASKED_IN}"%'),
        )
    )
    for question_id, value, kind in rows.all():
        try:
            address: Any = json.loads(value)
        except ValueError:
            continue
        if isinstance(address, dict):
            words = WORDS.get(kind, PERSONAL)
            conn.execute(sa.update(questions).where(questions.c.id == question_id)
                         .values(address=json.dumps({**address, ASKED_IN: words})))


def downgrade() -> None:
    pass
