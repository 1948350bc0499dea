"""questions, events and answers never hand out a number twice (SQLite AUTOINCREMENT)

Without AUTOINCREMENT SQLite gives a new row the highest id plus one, so erasing or purging
the newest questions made their Q-numbers come back, and a moderator's reply to the erased
question's mail reached the next colleague. The tables are rebuilt (Alembic batch mode) with
every row and number kept; SQLite's counter then starts above the highest number the database
still shows any trace of (the audit log's Q-n and E-n, the outbox's jobs and links between
rows), since numbers erased before this version are not recorded anywhere else.

PostgreSQL's SERIAL sequences never hand a number out twice; they are only moved past the
same traces, for databases whose rows were copied in with their numbers.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import json
import re

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

#: Rebuilt parents first, so each copy's foreign keys point at a table that is there.
TABLES = ("events", "questions", "answers")

#: Outbox dedupe keys that carry a number (`triage:42`, `answer:7:29:...`), by what it numbers.
_KEY_TABLE = {
    **dict.fromkeys(("triage", "forward", "reply", "dismissed", "merged", "modcard", "event-choice"), "questions"),
    "answer": "answers",
    "board": "events",
}
_KEY_NUMBER = re.compile(r"^(?P<kind>[a-z-]+):(?P<number>\d{1,9})(?::|$)")
_REF = re.compile(r"^(?P<letter>[QE])-(?P<number>\d{1,9})$")
_REF_TABLE = {"Q": "questions", "E": "events"}
_PAYLOAD_TABLE = {"question_id": "questions", "event_id": "events", "answer_id": "answers"}


def upgrade() -> None:
    bind = op.get_bind()
    highest = _highest_numbers_seen(bind)
    if bind.dialect.name == "postgresql":
        for table in TABLES:
            if highest[table]:
                bind.execute(
                    sa.text(
                        "SELECT setval(pg_get_serial_sequence(:t, 'id'), GREATEST(:n, "
                        "pg_sequence_last_value(pg_get_serial_sequence(:t, 'id')::regclass)))"
                    ),
                    {"t": table, "n": highest[table]},
                )
        return
    for table in TABLES:
        with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": True}):
            pass
    for table in TABLES:
        bind.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = :name"), {"name": table})
        bind.execute(
            sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES (:name, :seq)"),
            {"name": table, "seq": highest[table]},
        )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    for table in reversed(TABLES):
        with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": False}):
            pass


def _highest_numbers_seen(bind: sa.Connection) -> dict[str, int]:
    """The highest number each table has used, as far as the database still shows it."""
    highest = dict.fromkeys(TABLES, 0)

    def saw(table: str, number: object) -> None:
        if isinstance(number, int) and not isinstance(number, bool):
            highest[table] = max(highest[table], number)

    for table, column in (
        ("events", "events.id"),
        ("events", "questions.event_id"),
        ("questions", "questions.id"),
        ("questions", "questions.merged_into"),
        ("questions", "answers.question_id"),
        ("questions", "inbound_mail.question_id"),
        ("questions", "faq_entries.question_id"),
        ("questions", "faq_feedback.question_id"),
        ("questions", "question_support.question_id"),
        ("answers", "answers.id"),
    ):
        source = column.partition(".")[0]
        saw(table, bind.execute(sa.text(f"SELECT MAX({column}) FROM {source}")).scalar())
    audited = bind.execute(sa.text("SELECT DISTINCT target FROM audit_log WHERE target LIKE '_-%'")).all()
    for (target,) in audited:
        match = _REF.match(target)
        if match:
            saw(_REF_TABLE[match["letter"]], int(match["number"]))
    for key, payload in bind.execute(sa.text("SELECT dedupe_key, payload FROM outbox")).all():
        match = _KEY_NUMBER.match(key)
        if match and match["kind"] in _KEY_TABLE:
            saw(_KEY_TABLE[match["kind"]], int(match["number"]))
        try:
            data = json.loads(payload)
        except ValueError:
            continue
        if isinstance(data, dict):
            for field, table in _PAYLOAD_TABLE.items():
                saw(table, data.get(field))
    return highest
