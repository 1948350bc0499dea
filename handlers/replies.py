"""The messages the bot sends colleagues, as data. Each channel renders them (bot/: Teams text or cards).

Each reply is queued in the outbox in the same transaction as the state change it reports, so
"your question went to the team" is sent if and only if the question really did.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from domain.jobs import MailReply, TeamsSend
from handlers.deps import Deps
from handlers.privacy import asked_in
from outbox.jobs import job
from store.outbox import OutboxRepo
from store.records import Answer, Event, Question


def welcome(privacy: str) -> dict[str, Any]:
    """The introduction, ending with the privacy notice (handlers.privacy.privacy_notice)."""
    return {"type": "welcome", "privacy": privacy}


def help_text(sections: list[dict[str, Any]], privacy: str) -> dict[str, Any]:
    """How the bot works, the commands the sender may use by role (handlers.commands), ending
    with the privacy notice (handlers.privacy.privacy_notice)."""
    return {"type": "help", "sections": sections, "privacy": privacy}


def too_long(limit: int, length: int) -> dict[str, Any]:
    return {"type": "too_long", "limit": limit, "length": length}


def faq_answer(
    question: Question, entry_id: str, faq_question: str, answer: str, *, chosen: str | None = None
) -> dict[str, Any]:
    """With `chosen`, the card once used: the answer stays, the buttons become what was said."""
    message = {
        "type": "faq_answer",
        "question_id": question.id,
        "ref": question.ref,
        "entry_id": entry_id,
        "faq_question": faq_question,
        "answer": answer,
    }
    return {**message, "chosen": chosen} if chosen else message


def forwarded(question: Question) -> dict[str, Any]:
    return {"type": "forwarded", "ref": question.ref}


def moderator_answer(
    question: Question, text: str, *, follow_up: bool, answer_id: int | None = None
) -> dict[str, Any]:
    """With `answer_id`, Teams shows Helpful / Not helpful buttons for the asker."""
    return {
        "type": "answer",
        "ref": question.ref,
        "question": question.text,
        "answer": text,
        "follow_up": follow_up,
        "question_id": question.id,
        "answer_id": answer_id,
    }


def answer_feedback_thanks(helpful: bool) -> dict[str, Any]:
    return {"type": "answer_feedback_thanks", "helpful": helpful}


def answer_feedback_used(chosen: str) -> dict[str, Any]:
    """The "Did this answer help?" card once used: what the asker said, no buttons."""
    return {"type": "answer_feedback_card", "chosen": chosen}


def digest(event_id: int, markdown: str, *, part: int = 1, parts: int = 1) -> dict[str, Any]:
    """An event digest (already escaped Markdown from handlers.publishing), or one part of it."""
    return {"type": "digest", "event_id": event_id, "markdown": markdown, "part": part, "parts": parts}


def dismissed(question: Question, reason: str) -> dict[str, Any]:
    return {"type": "dismissed", "ref": question.ref, "question": question.text, "reason": reason}


def feedback_thanks() -> dict[str, Any]:
    return {"type": "feedback_thanks"}


def feedback_noted(status: str, ref: str) -> dict[str, Any]:
    """A second click, or a click on a question already forwarded: say where it stands."""
    return {"type": "feedback_noted", "status": status, "ref": ref}


def event_choice(question_id: int, question: str, events: list[tuple[int, str]]) -> dict[str, Any]:
    """"Which event is your question about?": one button per open event, and "None of these"."""
    return {
        "type": "event_choice",
        "question_id": question_id,
        "ref": f"Q-{question_id}",
        "question": question,
        "events": [{"id": event_id, "title": title} for event_id, title in events],
    }


def event_choice_used(chosen: str) -> dict[str, Any]:
    """The event picker once the question is settled: what was chosen, no buttons."""
    return {"type": "event_choice", "question_id": 0, "question": "", "events": [], "chosen": chosen}


def moderation_card(
    question: Question,
    answers: Sequence[Answer],
    *,
    event: Event | None,
    merged_into: Question | None,
    faq_entry: str | None,
    faq_link: str | None,
    faq_choices: list[dict[str, str]],
) -> dict[str, Any]:
    """A question's card in the moderators' channel, as it stands (handlers.moderation)."""
    return {
        "type": "moderation_card",
        "question_id": question.id,
        "ref": question.ref,
        "text": question.text,
        "asker": "A colleague (asked anonymously)" if question.anonymous else (question.asker_name or "A colleague"),
        "event": event.title if event else None,
        "asked_in": asked_in(question),
        "status": question.status.value,
        "claimed_by": question.claimed_by,
        "acted_by": question.acted_by,
        # The first answer stays; a later one (a mail reply, say) shows as a follow-up, never in its place.
        "answer": answers[0].text if answers else None,
        "follow_up": answers[-1].text if len(answers) > 1 else None,
        "follow_up_via": answers[-1].via if len(answers) > 1 else None,
        "follow_ups": len(answers) - 1 if answers else 0,
        "reason": question.dismissed_reason,
        "merged_into": merged_into.ref if merged_into else None,
        "private": question.private,
        "faq_entry": faq_entry,
        "faq_link": faq_link,
        "faq_link_sent": bool(faq_link and answers and answers[0].via == "faq"),  # its answer was the one sent
        "faq_choices": faq_choices,
    }


def board(
    event: Event, counts: dict[str, int], updated: str, newest: Sequence[Question], most_supported: Sequence[Question]
) -> dict[str, Any]:
    """An event's live board for its hosts (handlers.board)."""

    def line(question: Question) -> dict[str, Any]:
        return {"ref": question.ref, "text": question.text[:200], "support": question.support,
                "status": str(question.status), "topic": question.topic}

    return {
        "type": "board",
        "event_id": event.id,
        "title": event.title,
        "status": event.status,
        "counts": counts,
        "updated": updated,
        "newest": [line(q) for q in newest],
        "most_supported": [line(q) for q in most_supported],
    }


def notice(text: str) -> dict[str, Any]:
    """A plain sentence for the person who typed a command (worded by the handler)."""
    return {"type": "notice", "text": text}


def not_your_question() -> dict[str, Any]:
    return {"type": "not_your_question"}


async def enqueue_to_asker(
    outbox: OutboxRepo, question: Question, message: dict[str, Any], *, dedupe_key: str
) -> bool:
    """Queue a message to whoever asked `question`, the way they asked: by mail or in their chat.

    A private or anonymous question's messages go to the asker's 1:1 chat, even when the
    question was recorded in a shared one (asked openly there, then marked private by a
    moderator or merged): never into the channel or group chat."""
    if question.source == "mail":
        return await outbox.enqueue(MailReply(question.id, message, key=dedupe_key), dedupe_key=dedupe_key)
    assert question.address is not None, "a question asked in a chat always has an address"
    return await enqueue_reply(
        outbox, source=question.source, address=question.address, reply_to_id=question.reply_to_id,
        message=message, dedupe_key=dedupe_key, personal=question.private or question.anonymous,
    )


async def enqueue_reply(
    outbox: OutboxRepo,
    *,
    source: str,
    address: dict[str, Any],
    reply_to_id: str | None,
    message: dict[str, Any],
    dedupe_key: str,
    personal: bool = False,
) -> bool:
    """Queue one reply to a conversation of the `source` channel; the key makes a redelivery
    queue nothing new.

    `personal`: for the person `address` names only: the channel sends it to their 1:1 chat
    when `address` is a shared one (see Channel.send)."""
    reply = TeamsSend(address, message, reply_to_id, personal, source=source)
    return await outbox.enqueue(reply, dedupe_key=dedupe_key)


@job(TeamsSend)
async def send(deps: Deps, payload: TeamsSend) -> None:
    """Outbox job: one reply, sent by its channel (not idempotent: recorded as done at once)."""
    await deps.channel(payload.source).send(payload.address, payload.message, reply_to_id=payload.reply_to_id,
                                            personal=payload.personal)
