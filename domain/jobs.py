"""The payload of every outbox job kind: a frozen dataclass whose fields are the JSON stored.

A job is queued with its payload object (`unit.outbox.enqueue(Triage(...), dedupe_key=...)`)
and its function, registered with `@job(Triage)` beside it (outbox.jobs), gets the object
back. The field names and JSON shapes are the ones already in the outbox table: rows queued
by earlier versions still run (fields added since have defaults), and
`tests/unit/test_job_payloads.py` reads such rows. A key the payload does not have is an
error that names it, not something silently dropped.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from domain.replies import Reply, ToAsker
from domain.stored import PayloadError, decode, fields_json


class JobPayload:
    """Base of the payloads below; `kind` is what the outbox table's `kind` column holds."""

    kind: ClassVar[str]

    def to_json(self) -> dict[str, Any]:
        """The payload as stored: every field, records and messages as objects, tuples as lists."""
        return fields_json(self)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Self:
        """The payload a stored row holds; PayloadError if it is not one of this kind."""
        try:
            decoded: Self = decode(cls, raw)
        except (TypeError, ValueError) as error:
            raise PayloadError(f"{cls.kind} payload: {error}") from error
        return decoded


@dataclass(frozen=True)
class Triage(JobPayload):
    """Match a recorded question against the FAQ: answer it, or forward it to the moderators."""

    kind: ClassVar[str] = "question.triage"
    question_id: int
    # Whether it is the asker's first question, as the Teams turn that recorded it saw; None
    # (a mail question, recorded by the inbox) means look it up.
    new_asker: bool | None = None


@dataclass(frozen=True)
class NearMiss:
    """An FAQ entry that nearly answered a forwarded question, shown to the moderators."""

    id: str
    question: str
    score: float


@dataclass(frozen=True)
class ForwardMail(JobPayload):
    """The question to the moderators' mailbox."""

    kind: ClassVar[str] = "mail.forward"
    question_id: int
    near_misses: tuple[NearMiss, ...] = ()
    faq_rejected: str | None = None  # the FAQ entry the asker said did not answer it


@dataclass(frozen=True)
class MailReply(JobPayload):
    """A reply message to a colleague who asked by mail."""

    kind: ClassVar[str] = "mail.reply"
    question_id: int
    message: ToAsker
    key: str  # the mail's key: the transport sends a key once


@dataclass(frozen=True)
class FollowUp(JobPayload):
    """What an asker wrote again by mail, to the moderators' mailbox."""

    kind: ClassVar[str] = "mail.follow_up"
    question_id: int
    text: str
    key: str


@dataclass(frozen=True)
class FaqLinkRefused(JobPayload):
    """Why a moderator's `#faq ENTRY-ID` reply changed nothing, back to them in its thread."""

    kind: ClassVar[str] = "mail.faq_link_refused"
    question_id: int
    to: str
    text: str
    key: str
    in_reply_to: str


@dataclass(frozen=True)
class ChatAnswerMail(JobPayload):
    """An answer given in a chat (Teams, say), copied into the moderators' mail thread of the question
    (the kind's name predates other channels than Teams)."""

    kind: ClassVar[str] = "mail.teams_answer"
    question_id: int
    answer_id: int


@dataclass(frozen=True)
class ChatReply(JobPayload):
    """One reply message to one chat (the kind's name predates other channels than Teams)."""

    kind: ClassVar[str] = "teams.send"
    address: dict[str, Any]
    message: Reply
    reply_to_id: str | None = None
    personal: bool = False  # to the 1:1 chat with the user `address` names, never the shared one
    source: str = "teams"  # the channel that sends it (rows queued before there were others: Teams)


@dataclass(frozen=True)
class ModerationCard(JobPayload):
    """Post or update a question's card in the moderators' channel."""

    kind: ClassVar[str] = "moderation.card"
    question_id: int
    first: bool = False  # this job may post the card (the others only update it)


@dataclass(frozen=True)
class ModerationPage(JobPayload):
    """`moderate here`: cards for questions that waited without one, posted oldest first."""

    kind: ClassVar[str] = "moderation.page"
    question_ids: tuple[int, ...]


@dataclass(frozen=True)
class FaqRebuild(JobPayload):
    """Rebuild the FAQ matcher after a moderator added an entry from this question."""

    kind: ClassVar[str] = "faq.rebuild"
    question_id: int


@dataclass(frozen=True)
class BoardRefresh(JobPayload):
    """Post or update an event's live board."""

    kind: ClassVar[str] = "board.refresh"
    event_id: int
    first: bool = False  # queued by `board here`: this job may post the board


@dataclass(frozen=True)
class UsedCard(JobPayload):
    """Replace a card clicked in a client without Universal Actions by its used form."""

    kind: ClassVar[str] = "card.used"
    address: dict[str, Any]
    card_id: str
    message: Reply
    source: str = "teams"  # the channel the card is in (rows queued before there were others: Teams)


#: Every kind the product queues, by the name stored with the job (the payloads defined above;
#: subclasses a test defines later are not among them).
KINDS: Mapping[str, type[JobPayload]] = types.MappingProxyType(
    {payload.kind: payload for payload in JobPayload.__subclasses__()}
)
if len(KINDS) != len(JobPayload.__subclasses__()):
    raise TypeError("two job payloads share a kind")
