"""Trying the mail loop offline: one saved mail (`.eml`) fed into the same inbox pipeline the
Graph watcher uses.

The command only records what the mail causes (one transaction, keyed by its Message-ID, as
for Graph); delivering the answer is the running bot's outbox worker's job. So the file can be
received from another shell while the bot runs, and receiving it twice changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from errors import Refused
from handlers.deps import Deps, Limits
from handlers.inbox import MailPolicy, handle_inbound
from mail.base import InboundMail, OutgoingMail, SentMail
from mail.inbound import inbound_from_eml
from store.store import Store

MAX_MAIL_BYTES = 1024 * 1024  # a typed reply is a few KB; anything past 1 MiB is not one


@dataclass(frozen=True)
class Received:
    """What one mail file became, in words an operator reads."""

    message_id: str
    outcome: str  # "answer", "question", "follow-up", "ignored", "untrusted"
    detail: str | None
    question_ref: str | None
    duplicate: bool

    def describe(self) -> str:
        if self.outcome == "answer":
            what = f"answer to {self.question_ref}"
        elif self.outcome == "question":
            what = f"question {self.question_ref}"
        elif self.outcome == "follow-up":
            what = f"follow-up to {self.question_ref} (passed to the moderators)"
        elif self.outcome == "untrusted":
            what = f"not trusted: {self.detail or 'no Exchange verdict'}"
        else:
            what = f"ignored: {self.detail or 'no reason recorded'}"
        if self.duplicate:
            return f"already received {self.message_id} ({what}); nothing changed"
        return what


def read_mail_file(path: Path, now: datetime) -> InboundMail:
    """The mail in `path` (received `now` if it has no Date); Refused (nothing read into the
    store) if it cannot be one."""
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise Refused(f"{path} is not a file.")
        if size > MAX_MAIL_BYTES:
            raise Refused(f"{path} is {size:,} bytes; a mail file can be at most {MAX_MAIL_BYTES:,} (1 MiB).")
        data = path.read_bytes()
    except OSError as error:
        raise Refused(f"cannot read {path}: {error.strerror or error}.") from None
    if len(data) > MAX_MAIL_BYTES:  # grew while we looked
        raise Refused(f"{path} is larger than {MAX_MAIL_BYTES:,} bytes (1 MiB).")
    if not data.strip() or b"\x00" in data:
        raise Refused(f"{path} is not a mail (RFC 5322 .eml): it is empty or binary.")
    try:
        mail = inbound_from_eml(data, now)
    except (ValueError, TypeError, LookupError, AssertionError) as error:  # a header no parser reads
        raise Refused(f"{path} is not a readable mail: {error}.") from None
    if "@" not in mail.sender or not {"message-id", "date", "subject"} & set(mail.headers):
        raise Refused(
            f"{path} is not a mail (RFC 5322 .eml): it needs a From address and a Message-ID, Date or Subject header."
        )
    return mail


async def receive_mail_file(
    store: Store, policy: MailPolicy, limits: Limits, path: Path, *, log: logging.Logger
) -> Received:
    """Read `path` and hand it to the inbox pipeline; say what it became."""
    mail = read_mail_file(path, store.clock.now())
    deps = Deps(store=store, faq=_Offline(), mail=_Offline(), limits=limits, log=log, clock=store.clock)
    outcome = await handle_inbound(deps, policy, mail)
    async with store.unit() as unit:
        recorded = await unit.inbound_mail.outcome_of(mail.internet_message_id)
    if recorded is None:  # cannot happen after handle_inbound committed; say what we know
        return Received(mail.internet_message_id, outcome, None, None, outcome == "duplicate")
    kind, detail, question_id = recorded
    return Received(
        message_id=mail.internet_message_id,
        outcome=kind,
        detail=detail,
        question_ref=f"Q-{question_id}" if question_id is not None else None,
        duplicate=outcome == "duplicate",
    )


_NO_MATCHER = "the FAQ matcher runs in the bot, not in `cli.py mail receive`"


class _Offline:
    """Stands in for the matcher and mail transport, which only the running bot has (there is
    no chat channel either: Deps.channel says so). The inbox pipeline records and queues; it
    never calls them, and this says so loudly if that ever changes."""

    @property
    def faq(self) -> Any:
        raise RuntimeError(_NO_MATCHER)

    def match(self, text: str) -> Any:
        raise RuntimeError(_NO_MATCHER)

    def match_many(self, texts: Any) -> Any:
        raise RuntimeError(_NO_MATCHER)

    async def send(self, mail: OutgoingMail) -> SentMail:
        raise RuntimeError("mail is sent by the bot's outbox worker, not by `cli.py mail receive`")
