"""Mail arriving in the shared mailbox: a moderator's answer, a colleague's question, an asker's
follow-up, or neither.

Everything one mail causes (its log entry, an answer or a question, the outbox jobs) commits in
one transaction keyed by its Message-ID, so a mail read twice changes nothing the second time.
Automatic mail (out-of-office, bounces, lists, our own) is never answered: no mail loop can start.
Mail Exchange does not vouch for as sent inside the organisation is never an answer or a
question: it is recorded as `untrusted` and left for a person (see README, Security: Mail).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from datetime import timedelta

from domain.jobs import FaqLinkRefused, FollowUp
from domain.states import QuestionStatus
from errors import Refused
from handlers.answering import AlreadyRecorded, Answerer, record_answer
from handlers.board import board_changed
from handlers.deps import Deps
from handlers.faq_links import known_entry, link, mail_command
from handlers.queue import queue_card_refresh
from handlers.roles import Role
from handlers.triage import queue_triage
from mail.base import InboundMail, OutgoingMail
from mail.inbound import is_automatic, question_ref, references_of, reply_text, untrusted_because
from outbox.jobs import job
from store.records import NewQuestion, Question
from store.store import Unit

#: States an asker's follow-up takes a question back from: the team looks at it again.
REOPENABLE = (QuestionStatus.ANSWERED, QuestionStatus.ANSWERED_FAQ, QuestionStatus.DISMISSED)


@dataclass(frozen=True)
class MailPolicy:
    """Who may answer and who may ask by mail, from settings.

    A mail answer counts from the shared mailbox itself (a moderator replying from Outlook as
    the mailbox; the bot's own mail is known by its marker header and never gets this far), from
    `moderators` (MODERATOR_SENDERS and the forwarding address), from `admins`, and from anyone
    granted the moderator role (looked up in the roles table, as for Teams).
    """

    mailbox: str
    moderators: tuple[str, ...]  # addresses, or "@domain" for a whole domain
    staff_domains: tuple[str, ...]
    # Mail older than the retention period is history: its log entry may have been purged, so
    # a mailbox resync must not turn it into a new question or answer.
    max_age_days: int | None = None
    admins: frozenset[str] = frozenset()

    def is_moderator(self, address: str) -> bool:
        """Named by settings as one who answers (the roles table is asked separately)."""
        address = address.lower()
        if address == self.mailbox.lower() or address in self.admins:
            return True
        return any(
            address.endswith(entry) if entry.startswith("@") else address == entry
            for entry in (m.lower() for m in self.moderators)
        )

    def is_staff(self, address: str) -> bool:
        domain = address.lower().rpartition("@")[2]
        return domain in {d.lower().lstrip("@") for d in self.staff_domains}


async def handle_inbound(deps: Deps, policy: MailPolicy, mail: InboundMail) -> str:
    """Decide what a mail is and act on it once. Returns the outcome, for the log and tests:
    answer, question, follow-up, ignored, untrusted or duplicate."""
    sender = mail.sender.lower()
    # Cutting quoted history is regular expressions over the body: off the event loop.
    said = await asyncio.to_thread(reply_text, mail)
    try:
        async with deps.store.unit() as unit:
            if await unit.inbound_mail.seen(mail.internet_message_id):
                return "duplicate"
            outcome, detail, question_id = await _decide(deps, unit, policy, mail, sender, said.strip())
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
    level = logging.WARNING if outcome == "untrusted" else logging.INFO
    deps.log.log(level, "mail %s from %s: %s%s", mail.internet_message_id, sender, outcome, suffix)
    return outcome


class _ReadConcurrently(Exception):
    """Raised inside the transaction to roll it back when another reader won."""


async def _decide(
    deps: Deps, unit: Unit, policy: MailPolicy, mail: InboundMail, sender: str, said: str
) -> tuple[str, str | None, int | None]:
    if policy.max_age_days is not None and mail.received_at < deps.clock.now() - timedelta(days=policy.max_age_days):
        return "ignored", "older than the retention period", None
    automatic = is_automatic(mail)
    if automatic:
        return "ignored", automatic, None
    distrust = untrusted_because(mail.headers)
    if distrust:
        return "untrusted", distrust, None
    question = await _question_answered_by(unit, mail)
    if question is not None and question.asker_email and sender == question.asker_email.lower():
        return await _follow_up(deps, unit, question, mail, said)
    if question is not None and await _may_answer(unit, policy, sender):
        entry_id = mail_command(said)
        if entry_id is not None:
            return await _link(deps, unit, question, mail, sender, entry_id)
        if not said:
            return "ignored", f"empty reply to {question.ref}", question.id
        answered = await record_answer(
            unit,
            question,
            text=said,
            by=Answerer(id=sender, name=mail.sender_name or None),
            via="mail",
            source_key=f"mail:{mail.internet_message_id}",
        )
        if not answered:
            return "ignored", f"{question.ref} cannot take an answer now", question.id
        return "answer", None, question.id
    number = question_ref(mail.subject)
    if question is None and number is not None and await _may_answer(unit, policy, sender):
        # numbers are never reused, so this one's question is gone
        return "ignored", f"a reply to Q-{number}, which is no longer held (erased or purged)", None
    if _is_reply(mail):
        return "ignored", "a reply that answers no question, or not from a moderator", None
    if sender == policy.mailbox.lower():
        return "ignored", "sent as the shared mailbox, and not a reply to a question", None
    if not policy.is_staff(sender):
        return "ignored", "sender is outside the organisation's mail domains", None
    text = said or mail.subject.strip()
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
    await queue_triage(unit.outbox, question_id)
    await board_changed(unit.outbox, event_id)
    return "question", None, question_id


async def _link(
    deps: Deps, unit: Unit, question: Question, mail: InboundMail, sender: str, entry_id: str
) -> tuple[str, str | None, int | None]:
    """A moderator's reply `#faq ENTRY-ID`: what "Answer with FAQ entry" does on the card. A
    refusal (no such entry, a private question) goes back to them by mail; nothing changes."""
    try:
        if not entry_id:
            raise Refused("Put the entry's id after #faq on the first line, e.g. #faq it-equipment.")
        done = await link(unit, question, known_entry(deps.faq.faq, entry_id),
                          by=Answerer(id=sender, name=mail.sender_name or None))
    except Refused as refusal:
        key = "faq-link-refused:" + hashlib.sha256(mail.internet_message_id.encode()).hexdigest()[:32]
        refused = FaqLinkRefused(question.id, to=sender, text=str(refusal), key=key,
                                 in_reply_to=mail.internet_message_id)
        await unit.outbox.enqueue(refused, dedupe_key=key)
        return "ignored", f"#faq refused: {refusal}", question.id
    return "faq-link", done, question.id


@job(FaqLinkRefused)
async def tell_link_refused(deps: Deps, payload: FaqLinkRefused) -> None:
    """Outbox job: why a moderator's `#faq` reply changed nothing, back to them; the transport
    dedupes on the key."""
    async with deps.store.unit() as unit:
        question = await unit.questions.get(payload.question_id)
    ref = question.ref if question is not None else f"Q-{payload.question_id}"
    await deps.mail.send(
        OutgoingMail(
            key=payload.key,
            to=(payload.to,),
            subject=f"Re: [{ref}] #faq: nothing was changed",
            text=(
                f"Your reply about {ref} changed nothing: {payload.text}\n\n"
                f"To answer {ref} with an FAQ entry, reply to its forwarded mail with #faq and the "
                "entry's id as the first line, e.g. #faq it-equipment. Anything else in a reply is "
                "sent to the colleague as your answer.\n"
            ),
            in_reply_to=payload.in_reply_to,
            references=(payload.in_reply_to,),
        )
    )


async def _may_answer(unit: Unit, policy: MailPolicy, sender: str) -> bool:
    """Settings name them, or they hold the moderator role (granted, as in Teams)."""
    return policy.is_moderator(sender) or Role.MODERATOR.value in await unit.roles.roles_of({sender})


async def _follow_up(
    deps: Deps, unit: Unit, question: Question, mail: InboundMail, said: str
) -> tuple[str, str | None, int | None]:
    """The asker wrote again about their own question: never an answer. The moderators get it,
    and an answered or dismissed question is open for them again."""
    if not said:
        return "ignored", f"empty follow-up to {question.ref}", question.id
    reopened = await unit.questions.move(question.id, to=QuestionStatus.FORWARDED, only_from=REOPENABLE)
    key = "follow-up:" + hashlib.sha256(mail.internet_message_id.encode()).hexdigest()[:32]
    text = said[: deps.limits.max_question_chars]
    await unit.outbox.enqueue(FollowUp(question.id, text, key), dedupe_key=key)
    if reopened:
        await queue_card_refresh(unit, question.id, reason=f"mail:{mail.internet_message_id}")
        await board_changed(unit.outbox, question.event_id)
    return "follow-up", f"{question.ref} reopened" if reopened else None, question.id


@job(FollowUp)
async def forward_follow_up(deps: Deps, payload: FollowUp) -> None:
    """Outbox job: the asker's words to the moderators' address, with the question.
    The transport dedupes on the key. Nobody is named: the question may be anonymous."""
    async with deps.store.unit() as unit:
        question = await unit.questions.get(payload.question_id)
    if question is None:
        return  # erased since
    preview = " ".join(question.text.split())[:60]
    await deps.mail.send(
        OutgoingMail(
            key=payload.key,
            to=(deps.limits.moderators_address,),
            subject=f"[{question.ref}] Follow-up from the asker: {preview}",
            text=(
                f"The colleague who asked {question.ref} wrote again by mail:\n\n{payload.text}\n\n"
                f"Their question:\n{question.text}\n\n"
                f"Reply to this mail to answer them ({question.ref} stays in the subject).\n"
            ),
        )
    )


async def _question_answered_by(unit: Unit, mail: InboundMail) -> Question | None:
    """In-Reply-To / References against our forwards, then the [Q-n] token in the subject."""
    question = await unit.questions.by_forward_message_id(references_of(mail))
    if question is not None:
        return question
    number = question_ref(mail.subject)
    return await unit.questions.get(number) if number is not None else None


def _is_reply(mail: InboundMail) -> bool:
    return bool(mail.in_reply_to or mail.references) or mail.subject.lower().startswith(("re:", "aw:", "sv:"))
