"""Tables, as SQLAlchemy Core metadata: one shape for SQLite and PostgreSQL.

Core rather than the ORM: every write here is a small, explicit statement inside a unit of
work, and the hot path (record a question and its outbox job) should cost two INSERTs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC and hands back aware UTC, so SQLite and PostgreSQL compare alike."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


#: Tables whose numbers people see or mail carries (Q-42, E-3, an answer's mail key): SQLite's
#: AUTOINCREMENT never hands out a number again, even after the newest rows were erased or
#: purged (without it SQLite reuses the highest number). PostgreSQL's sequences never do.
NEVER_REUSED: dict[str, Any] = {"sqlite_autoincrement": True}

questions = Table(
    "questions",
    metadata,
    Column("id", Integer, primary_key=True),
    # What makes a delivery unique: "teams:<conversation>:<activity id>" or "mail:<message id>".
    Column("dedupe_key", String(512), nullable=False, unique=True),
    Column("source", String(16), nullable=False),
    Column("text", Text, nullable=False),
    Column("status", String(32), nullable=False),
    Column("asker_id", String(256), nullable=False),
    Column("asker_aad_id", String(64)),
    Column("asker_name", String(256)),
    Column("asker_email", String(320)),
    Column("conversation_id", String(512)),
    Column("conversation_type", String(32)),
    # Opaque address the bot/ layer needs to reply later (a serialised conversation reference).
    Column("address", Text),
    Column("reply_to_id", String(256)),
    Column("faq_entry_id", String(128)),
    Column("faq_score", Float),
    Column("forward_message_id", String(998)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # Live events and moderation (added in 0003)
    Column("event_id", Integer, ForeignKey("events.id", ondelete="SET NULL")),
    Column("anonymous", Boolean, nullable=False, default=False, server_default="0"),
    Column("private", Boolean, nullable=False, default=False, server_default="0"),
    Column("support", Integer, nullable=False, default=0, server_default="0"),
    Column("topic", String(64)),
    Column("claimed_by", String(320)),
    Column("acted_by", String(320)),
    Column("dismissed_reason", Text),
    Column("merged_into", Integer, ForeignKey("questions.id", ondelete="SET NULL")),
    Column("moderation_card_id", String(256)),
    **NEVER_REUSED,
)
Index("ix_questions_asker_aad_id", questions.c.asker_aad_id)
Index("ix_questions_event_id", questions.c.event_id)
Index("ix_questions_created_at", questions.c.created_at)

faq_feedback = Table(
    "faq_feedback",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("question_id", Integer, ForeignKey("questions.id", ondelete="CASCADE"), nullable=False),
    Column("entry_id", String(128), nullable=False),
    Column("helpful", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)
Index("ix_faq_feedback_question_id", faq_feedback.c.question_id, unique=True)

faq_entries = Table(
    "faq_entries",
    metadata,
    # FAQ entries moderators made from answered questions (added in 0004). The bot matches
    # the bundled file's entries plus these; `cli.py faq export` writes both as one file.
    Column("id", String(80), primary_key=True),
    Column("question", Text, nullable=False),
    Column("alternates", Text, nullable=False),  # a JSON list of strings
    Column("answer", Text, nullable=False),
    Column("question_id", Integer, ForeignKey("questions.id", ondelete="SET NULL")),
    Column("created_by", String(320), nullable=False),
    Column("topic", String(64)),  # the question's topic when the entry was made (added in 0009)
    Column("created_at", UTCDateTime, nullable=False),
)

faq_phrasings = Table(
    "faq_phrasings",
    metadata,
    # Confirmed phrasings (added in 0008): a moderator said this question is answered by this
    # entry (`cli.py faq link`), so the matcher takes its text as one more phrasing of it. The
    # text is the colleague's, so the row goes with its question (retention, erasure). The
    # negatives ("No, send it to the team") are the helpful=false rows of faq_feedback.
    Column("id", Integer, primary_key=True),
    Column("question_id", Integer, ForeignKey("questions.id", ondelete="CASCADE"), nullable=False),
    Column("entry_id", String(128), nullable=False),
    Column("text", Text, nullable=False),
    Column("linked_by", String(320), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)
Index("ix_faq_phrasings_question_id", faq_phrasings.c.question_id, unique=True)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    # Enqueueing the same effect twice (a redelivered activity) inserts nothing the second time.
    Column("dedupe_key", String(512), nullable=False, unique=True),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("run_after", UTCDateTime, nullable=False),
    # A claimed job whose lease has passed belongs to nobody: a crashed worker's jobs come back.
    Column("lease_until", UTCDateTime),
    Column("last_error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
Index("ix_outbox_status_run_after", outbox.c.status, outbox.c.run_after)


answers = Table(
    "answers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("question_id", Integer, ForeignKey("questions.id", ondelete="CASCADE"), nullable=False),
    Column("text", Text, nullable=False),
    Column("author", String(320), nullable=False),
    Column("author_name", String(256)),
    Column("via", String(16), nullable=False),
    # What made this answer (a moderator's mail, a card action): the same source answers once.
    Column("source_key", String(998), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    **NEVER_REUSED,
)
Index("ix_answers_question_id", answers.c.question_id)

inbound_mail = Table(
    "inbound_mail",
    metadata,
    Column("id", Integer, primary_key=True),
    # A mail read twice (a repeated delta page, a resync) is recognised here and skipped.
    Column("internet_message_id", String(998), nullable=False, unique=True),
    Column("sender", String(320), nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("detail", Text),
    Column("question_id", Integer, ForeignKey("questions.id", ondelete="SET NULL")),
    Column("received_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

service_state = Table(
    "service_state",
    metadata,
    # Small durable facts a service needs across restarts, e.g. the mailbox's delta link.
    Column("name", String(128), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)


events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("title", String(200), nullable=False),
    Column("description", Text),
    Column("status", String(16), nullable=False),
    Column("opened_by", String(320), nullable=False),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("ends_at", UTCDateTime),
    Column("closed_at", UTCDateTime),
    Column("meeting_id", String(512), unique=True),
    # The hosts' live board: where it is posted, and the card's activity id to update in place.
    Column("board_address", Text),
    Column("board_card_id", String(256)),
    # The Teams delivery whose "open event" command opened it (NULL from the CLI): a redelivered
    # command finds its event instead of opening a second one.
    Column("source_key", String(600), unique=True),
    **NEVER_REUSED,
)

roles = Table(
    "roles",
    metadata,
    # principal: an Entra object id or a lower-case email address, as the sender is authenticated.
    Column("principal", String(320), primary_key=True),
    Column("role", String(16), primary_key=True),
    Column("granted_by", String(320), nullable=False),
    Column("granted_at", UTCDateTime, nullable=False),
)

people = Table(
    "people",
    metadata,
    # What the Teams roster told us about a colleague: lets a role granted by email match
    # a Teams user, who is authenticated by object id.
    Column("aad_id", String(64), primary_key=True),
    Column("email", String(320)),
    Column("name", String(256)),
    Column("updated_at", UTCDateTime, nullable=False),
)
Index("ix_people_email", people.c.email)

question_support = Table(
    "question_support",
    metadata,
    Column("question_id", Integer, ForeignKey("questions.id", ondelete="CASCADE"), primary_key=True),
    Column("supporter", String(320), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    # Where they said "me too" (a conversation reference naming them): the answer goes to them.
    Column("address", Text),
)

audit_log = Table(
    "audit_log",
    metadata,
    # Who did what to which question or event, kept apart from the questions themselves.
    Column("id", Integer, primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(320), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(64), nullable=False),
    Column("detail", Text),
)
Index("ix_audit_log_at", audit_log.c.at)
