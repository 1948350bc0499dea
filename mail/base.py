"""The mail interface handlers use: build an `OutgoingMail`, hand it to a `MailTransport`.

A transport must be idempotent on `OutgoingMail.key`: the outbox may call `send` again for a
mail whose first send succeeded but was not recorded (crash between the two), and the second
call must return the first mail's `SentMail` instead of sending again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

#: Header on every mail the bot writes (its value is the mail's `key`). The bot recognises its
#: own mail by it, not by the From address: moderators reply from Outlook *as* the shared mailbox,
#: and those replies are answers. Outlook does not copy X- headers into a reply.
BOT_MARKER = "X-Bot-Key"


@dataclass(frozen=True)
class OutgoingMail:
    """One mail the bot sends. `key` is unique per mail and stable across retries."""

    key: str
    to: tuple[str, ...]
    subject: str
    text: str
    html: str | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()


@dataclass(frozen=True)
class SentMail:
    """What the transport knows of a sent mail; `internet_message_id` is the RFC 5322 Message-ID."""

    internet_message_id: str


@dataclass(frozen=True)
class InboundMail:
    """A mail read from the shared mailbox, already reduced to what the product needs."""

    internet_message_id: str
    sender: str
    sender_name: str
    subject: str
    text: str
    received_at: datetime
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    conversation_id: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


class MailTransport(Protocol):
    """Sends mail. Raises `errors.Transient` for throttling and transient failures."""

    async def send(self, mail: OutgoingMail) -> SentMail: ...


class MailSearchFailed(Exception):
    """The kept mail (a folder, the shared mailbox) could not be searched just now."""


@dataclass(frozen=True)
class MailTrail:
    """How the bot recognises one person's mail among the mail it keeps (`.eml` files, the
    shared mailbox), by its own references: the Message-IDs it stored (forwards of their
    questions, the mails they sent), the mailbox conversations their questions were in, their
    questions' `[Q-n]` numbers, and, in the bot's own files, what it wrote about them."""

    message_ids: tuple[str, ...] = ()
    conversation_ids: tuple[str, ...] = ()
    question_ids: tuple[int, ...] = ()
    texts: tuple[str, ...] = ()  # their address, names and question texts

    def __bool__(self) -> bool:
        return bool(self.message_ids or self.conversation_ids or self.question_ids or self.texts)


@dataclass(frozen=True)
class KeptMail:
    """One mail the bot keeps that concerns a person: a `.eml` file or a mailbox message."""

    where: str  # "mail file" or "shared mailbox"
    id: str  # the file name, or the message's Graph id
    subject: str
    internet_message_id: str | None = None
