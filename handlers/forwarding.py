"""Forward a question the FAQ could not answer to the moderators' mailbox."""

from __future__ import annotations

from collections.abc import Sequence
from zoneinfo import ZoneInfo

from domain.jobs import ForwardMail, NearMiss
from handlers.channels import Contact
from handlers.clock import DEFAULT_ZONE, date_and_time
from handlers.deps import Deps, Match
from handlers.privacy import asked_in
from handlers.templating import templates
from mail.base import OutgoingMail
from outbox.jobs import job
from store.outbox import OutboxRepo
from store.records import Question

SUBJECT_PREVIEW_CHARS = 70
NEAR_MISSES = 3


async def queue_forward(
    outbox: OutboxRepo, question_id: int, *, match: Match | None = None, rejected: str | None = None
) -> None:
    """Queue the question's forward to the moderators' mailbox, once per question, in the
    caller's transaction: with the FAQ entries that nearly matched (`match`), or the entry the
    asker said did not answer it (`rejected`)."""
    candidates = match.candidates[:NEAR_MISSES] if match is not None else ()
    near_misses = tuple(NearMiss(entry.id, entry.question, round(float(score), 3)) for entry, score in candidates)
    await outbox.enqueue(ForwardMail(question_id, near_misses, rejected), dedupe_key=f"forward:{question_id}")


@job(ForwardMail, rerunnable=True)
async def forward(deps: Deps, payload: ForwardMail) -> None:
    """Outbox job. The mail transport dedupes on the mail's key, so a rerun after a crash
    between sending and recording sends nothing twice."""
    async with deps.store.unit() as unit:
        question = await unit.questions.get(payload.question_id)
        event = await unit.events.get(question.event_id) if question and question.event_id else None
    if question is None or question.forward_message_id:
        return
    if not question.status.properties.mailed:  # dismissed or merged before the mail went: no one needs it
        deps.log.info("not forwarding %s: it is %s", question.ref, question.status.value)
        return
    contact, looked_up = await _asker_contact(deps, question)
    mail = compose_forward(
        question,
        contact,
        payload.near_misses,
        deps.limits.moderators_address,
        rejected=payload.faq_rejected,
        event=event.title if event else None,
        zone=deps.limits.timezone,
    )
    sent = await deps.mail.send(mail)
    async with deps.store.unit() as unit:
        await unit.questions.set_forward_message_id(
            question.id,
            sent.internet_message_id,
            # kept for the answer's mail and the asker's data export
            contact=(contact.name, contact.email) if looked_up else None,
        )
    deps.log.info("forwarded %s to the moderators", question.ref)


def compose_forward(
    question: Question,
    contact: Contact,
    near_misses: Sequence[NearMiss],
    moderators: str,
    *,
    rejected: str | None = None,
    event: str | None = None,
    zone: ZoneInfo = DEFAULT_ZONE,
) -> OutgoingMail:
    """Subject `[Q-42] first words…`; text and HTML bodies from templates, user text escaped.
    The asking time is in the organisation's zone; the event and supporters only when there are."""
    preview = " ".join(question.text.split())
    if len(preview) > SUBJECT_PREVIEW_CHARS:
        preview = preview[: SUBJECT_PREVIEW_CHARS - 1].rstrip() + "…"
    context = {"q": question, "contact": contact, "near_misses": near_misses, "rejected": rejected,
               "asked_in": asked_in(question), "asked_at": date_and_time(question.created_at, zone),
               "event": event}
    return OutgoingMail(
        # the number and the moment it was asked: a mail key no other question can ever have
        key=f"forward:{question.id}:{question.created_at:%Y%m%dT%H%M%S%f}",
        to=(moderators,),
        subject=f"[{question.ref}] {preview}",
        text=templates.get_template("forward.txt.j2").render(context),
        html=templates.get_template("forward.html.j2").render(context),
    )


async def _asker_contact(deps: Deps, question: Question) -> tuple[Contact, bool]:
    """The asker's name and email, and whether their chat channel gave them (and so they are new
    to the question). Nobody, moderators included, sees who asked anonymously."""
    if question.anonymous:
        return Contact(None, None), False
    if question.asker_email or question.source == "mail" or not question.address:
        return Contact(question.asker_name, question.asker_email), False
    found = await deps.channel(question.source).look_up(question.address, question.asker_id)
    if found is None:
        return Contact(question.asker_name, None), False
    return Contact(found.name or question.asker_name, found.email), True
