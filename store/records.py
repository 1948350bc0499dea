"""Plain records the store hands to handlers: no SQLAlchemy types leak past store/."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.states import QuestionStatus

#: Row ids are 32-bit INTEGER columns; PostgreSQL rejects a larger number outright, so a larger
#: number typed or submitted by someone names no row (repositories answer None for it).
MAX_ROW_ID = 2**31 - 1


@dataclass(frozen=True)
class NewQuestion:
    dedupe_key: str
    source: str
    text: str
    asker_id: str
    asker_aad_id: str | None
    asker_name: str | None
    asker_email: str | None
    conversation_id: str | None
    conversation_type: str | None
    address: dict[str, Any] | None
    reply_to_id: str | None
    event_id: int | None = None
    anonymous: bool = False


@dataclass(frozen=True)
class Question:
    id: int
    source: str
    text: str
    status: QuestionStatus
    asker_id: str
    asker_aad_id: str | None
    asker_name: str | None
    asker_email: str | None
    conversation_id: str | None
    conversation_type: str | None
    address: dict[str, Any] | None
    reply_to_id: str | None
    faq_entry_id: str | None
    faq_score: float | None
    forward_message_id: str | None
    created_at: datetime
    event_id: int | None = None
    anonymous: bool = False
    private: bool = False
    support: int = 0
    topic: str | None = None
    claimed_by: str | None = None
    acted_by: str | None = None
    dismissed_reason: str | None = None
    merged_into: int | None = None
    moderation_card_id: str | None = None

    @property
    def ref(self) -> str:
        """The reference colleagues and moderators quote: `Q-42`."""
        return f"Q-{self.id}"


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    created_at: datetime  # when it was queued (or re-queued by `cli.py outbox retry`): its retry budget starts then


@dataclass(frozen=True)
class FailedJob:
    """A job that gave up, as an operator sees it: no payload (it holds personal data)."""

    id: int
    kind: str
    failed_at: datetime
    attempts: int
    last_error: str | None


@dataclass(frozen=True)
class Answer:
    id: int
    question_id: int
    text: str
    author: str
    author_name: str | None
    via: str
    created_at: datetime


@dataclass(frozen=True)
class Event:
    id: int
    title: str
    description: str | None
    status: str
    opened_by: str
    opened_at: datetime
    ends_at: datetime | None
    closed_at: datetime | None
    meeting_id: str | None
    board_address: dict[str, Any] | None
    board_card_id: str | None


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    detail: str | None
