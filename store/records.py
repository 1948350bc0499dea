"""Plain records the store hands to handlers: no SQLAlchemy types leak past store/."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class QuestionStatus(StrEnum):
    RECEIVED = "received"  # committed, not yet matched
    ANSWERED_FAQ = "answered_faq"  # the FAQ answered it; the asker may still say "No"
    FORWARDED = "forwarded"  # sent to the moderators


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
