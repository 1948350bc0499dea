"""The replies built from a question's records (domain.replies defines every kind), and how
replies are queued for the channel, or the mail, a question came by.

Each reply is queued in the outbox in the same transaction as the state change it reports, so
"your question went to the team" is sent if and only if the question really did.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from domain.jobs import ChatReply, MailReply
from domain.replies import (
    Answer,
    Board,
    BoardCounts,
    BoardLine,
    Dismissed,
    EventOption,
    EventPicker,
    FaqAnswer,
    FaqChoice,
    Forwarded,
    QuestionCard,
    Reply,
    ToAsker,
)
from handlers.deps import Deps
from handlers.privacy import asked_in
from outbox.jobs import job
from store.outbox import OutboxRepo
from store.records import Answer as AnswerRecord
from store.records import Event, Question


def faq_answer(
    question: Question, entry_id: str, faq_question: str, answer: str, *, chosen: str | None = None
) -> FaqAnswer:
    """With `chosen`, the card once used: the answer stays, the buttons become what was said."""
    return FaqAnswer(question_id=question.id, ref=question.ref, entry_id=entry_id, faq_question=faq_question,
                     answer=answer, chosen=chosen)


def forwarded(question: Question) -> Forwarded:
    return Forwarded(ref=question.ref)


def moderator_answer(
    question: Question, text: str, *, follow_up: bool, answer_id: int | None = None, supported: bool = False
) -> Answer:
    """With `answer_id`, Teams shows Helpful / Not helpful buttons for the asker; `supported`:
    to a colleague who said "me too" to the question, not its asker."""
    return Answer(ref=question.ref, question=question.text, answer=text, follow_up=follow_up,
                  question_id=question.id, answer_id=answer_id, supported=supported)


def dismissed(question: Question, reason: str) -> Dismissed:
    return Dismissed(ref=question.ref, question=question.text, reason=reason)


def event_choice(question_id: int, question: str, events: list[tuple[int, str]]) -> EventPicker:
    """"Which event is your question about?": one button per open event, and "None of these"."""
    return EventPicker(question_id=question_id, ref=f"Q-{question_id}", question=question,
                       events=tuple(EventOption(event_id, title) for event_id, title in events))


def moderation_card(
    question: Question,
    answers: Sequence[AnswerRecord],
    *,
    event: Event | None,
    merged_into: Question | None,
    faq_entry: str | None,
    faq_link: str | None,
    faq_choices: Sequence[FaqChoice],
) -> QuestionCard:
    """A question's card in the moderators' channel, as it stands (handlers.moderation)."""
    later = answers[-1] if len(answers) > 1 else None  # shown as a follow-up, never in the first's place
    return QuestionCard(
        question_id=question.id,
        ref=question.ref,
        text=question.text,
        asker="A colleague (asked anonymously)" if question.anonymous else (question.asker_name or "A colleague"),
        event=event.title if event else None,
        asked_in=asked_in(question),
        status=question.status,
        claimed_by=question.claimed_by,
        acted_by=question.acted_by,
        answer=answers[0].text if answers else None,
        follow_up=later.text if later else None,
        follow_up_via=later.via if later else None,
        follow_ups=len(answers) - 1 if answers else 0,
        reason=question.dismissed_reason,
        merged_into=merged_into.ref if merged_into else None,
        private=question.private,
        faq_entry=faq_entry,
        faq_link=faq_link,
        faq_link_sent=bool(faq_link and answers and answers[0].via == "faq"),  # its answer was the one sent
        faq_choices=tuple(faq_choices),
    )


def board(
    event: Event, counts: BoardCounts, updated: str, newest: Sequence[Question], most_supported: Sequence[Question]
) -> Board:
    """An event's live board for its hosts (handlers.board)."""

    def line(question: Question) -> BoardLine:
        return BoardLine(ref=question.ref, text=question.text[:200], support=question.support,
                         status=question.status, topic=question.topic)

    return Board(event_id=event.id, title=event.title, status=event.status, counts=counts, updated=updated,
                 newest=tuple(line(q) for q in newest), most_supported=tuple(line(q) for q in most_supported))


async def enqueue_to_asker(
    outbox: OutboxRepo, question: Question, message: ToAsker, *, dedupe_key: str
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
    message: Reply,
    dedupe_key: str,
    personal: bool = False,
) -> bool:
    """Queue one reply to a conversation of the `source` channel; the key makes a redelivery
    queue nothing new.

    `personal`: for the person `address` names only: the channel sends it to their 1:1 chat
    when `address` is a shared one (see Channel.send)."""
    reply = ChatReply(address, message, reply_to_id, personal, source=source)
    return await outbox.enqueue(reply, dedupe_key=dedupe_key)


@job(ChatReply)
async def send(deps: Deps, payload: ChatReply) -> None:
    """Outbox job: one reply, sent by its channel (not idempotent: recorded as done at once)."""
    await deps.channel(payload.source).send(payload.address, payload.message, reply_to_id=payload.reply_to_id,
                                            personal=payload.personal)
