"""Mail arriving in the shared mailbox: a moderator's answer, a colleague's question, or neither.

Everything one mail causes (its log entry, an answer or a question, the outbox jobs) commits in
one transaction keyed by its Message-ID, so a mail read twice changes nothing the second time.
Automatic mail (out-of-office, bounces, lists, our own) is never answered: no mail loop can start.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from handlers.answering import AlreadyRecorded, Answerer, record_answer
from handlers.board import board_changed
from handlers.deps import Deps
from handlers.triage import TRIAGE_JOB
from mail.base import InboundMail
from mail.inbound import is_automatic, question_ref, references_of, reply_text
from store.records import NewQuestion, Question
from store.schema import utcnow
from store.store import Unit


@dataclass(frozen=True)
class MailPolicy:
    """Who may answer and who may ask by mail, from settings."""

    mailbox: str
    moderators: tuple[str, ...]  # addresses, or "@domain" for a whole domain
    staff_domains: tuple[str, ...]
    # Mail older than the retention period is history: its log entry may have been purged, so
    # a mailbox resync must not turn it into a new question or answer.
    max_age_days: int | None = None

    def is_moderator(self, address: str) -> bool:
        address = address.lower()
        return any(
            address.endswith(entry) if entry.startswith("@") else address == entry
            for entry in (m.lower() for m in self.moderators)
        )

    def is_staff(self, address: str) -> bool:
        domain = address.lower().rpartition("@")[2]
        return domain in {d.lower().lstrip("@") for d in self.staff_domains}


async def handle_inbound(deps: Deps, policy: MailPolicy, mail: InboundMail) -> str:
    """Decide what a mail is and act on it once. Returns the outcome, for the log and tests."""
    sender = mail.sender.lower()
    try:
        async with deps.store.unit() as unit:
            if await unit.inbound_mail.seen(mail.internet_message_id):
                return "duplicate"
            outcome, detail, question_id = await _decide(deps, unit, policy, mail, sender)
            if not await unit.inbound_mail.record(
                mail.internet_message_id,
                sender=sender,
                outcome=outcome,
                detail=detail,
                question_id=question_id,
                received_at=mail.received_at,
            ):
                raise _ReadConcurrently
    except (_ReadConcurrently, AlreadyRecorded):
        return "duplicate"  # another instance handled it first; our work was rolled back
    suffix = f" ({detail})" if detail else ""
    deps.log.info("mail %s from %s: %s%s", mail.internet_message_id, sender, outcome, suffix)
    return outcome


class _ReadConcurrently(Exception):
    """Raised inside the transaction to roll it back when another reader won."""


async def _decide(
    deps: Deps, unit: Unit, policy: MailPolicy, mail: InboundMail, sender: str
) -> tuple[str, str | None, int | None]:
    if policy.max_age_days is not None and mail.received_at < utcnow() - timedelta(days=policy.max_age_days):
        return "ignored", "older than the retention period", None
    automatic = is_automatic(mail)
    if automatic:
        return "ignored", automatic, None
    if sender == policy.mailbox.lower():
        return "ignored", "sent by the shared mailbox itself", None
    if policy.is_moderator(sender):
        question = await _question_answered_by(unit, mail)
        if question is not None:
            text = reply_text(mail).strip()
            if not text:
                return "ignored", f"empty reply to {question.ref}", question.id
            answered = await record_answer(
                unit,
                question,
                text=text,
                by=Answerer(id=sender, name=mail.sender_name or None),
                via="mail",
                source_key=f"mail:{mail.internet_message_id}",
            )
            if not answered:
                return "ignored", f"{question.ref} cannot take an answer now", question.id
            return "answer", None, question.id
        number = question_ref(mail.subject)
        if number is not None:  # numbers are never reused, so this one's question is gone
            return "ignored", f"a reply to Q-{number}, which is no longer held (erased or purged)", None
    if _is_reply(mail):
        return "ignored", "a reply that answers no question, or not from a moderator", None
    if not policy.is_staff(sender):
        return "ignored", "sender is outside the organisation's mail domains", None
    text = reply_text(mail).strip() or mail.subject.strip()
    if not text:
        return "ignored", "empty mail", None
    if len(text) > deps.limits.max_question_chars:
        text = text[: deps.limits.max_question_chars]
    # Asked while one event is open: it belongs to that event, as in Teams. With several open
    # it stays untagged: a mail cannot be asked which (Teams askers get a card to choose).
    open_events = await unit.events.open_events()
    event_id = open_events[0].id if len(open_events) == 1 else None
    question_id = await unit.questions.add(
        NewQuestion(
            dedupe_key=f"mail:{mail.internet_message_id}",
            source="mail",
            text=text,
            asker_id=sender,
            asker_aad_id=None,
            asker_name=mail.sender_name or None,
            asker_email=sender,
            conversation_id=mail.conversation_id,
            conversation_type="mail",
            address=None,
            reply_to_id=mail.internet_message_id,
            event_id=event_id,
        )
    )
    if question_id is None:
        return "ignored", "question already recorded", None
    await unit.outbox.enqueue(TRIAGE_JOB, {"question_id": question_id}, dedupe_key=f"triage:{question_id}")
    await board_changed(unit.outbox, event_id)
    return "question", None, question_id


async def _question_answered_by(unit: Unit, mail: InboundMail) -> Question | None:
    """In-Reply-To / References against our forwards, then the [Q-n] token in the subject."""
    question = await unit.questions.by_forward_message_id(references_of(mail))
    if question is not None:
        return question
    number = question_ref(mail.subject)
    return await unit.questions.get(number) if number is not None else None


def _is_reply(mail: InboundMail) -> bool:
    return bool(mail.in_reply_to or mail.references) or mail.subject.lower().startswith(("re:", "aw:", "sv:"))
