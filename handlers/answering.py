"""A moderator's answer reaches the colleague who asked: stored once, delivered once."""

from __future__ import annotations

from dataclasses import dataclass

from handlers import replies
from handlers.board import board_changed
from handlers.queue import queue_card_refresh
from store.records import Question, QuestionStatus
from store.store import Unit

# A moderator's first answer may come while the question waits or is claimed (or after the FAQ
# answered it); a later mail reply to an answered question is a follow-up.
FIRST_ANSWER_FROM = (QuestionStatus.FORWARDED, QuestionStatus.CLAIMED, QuestionStatus.ANSWERED_FAQ)
ANSWERABLE = (*FIRST_ANSWER_FROM, QuestionStatus.ANSWERED)


@dataclass(frozen=True)
class Answerer:
    """Who answered, as authenticated (a mail's From address, a Teams user's AAD id)."""

    id: str
    name: str | None


async def record_answer(
    unit: Unit,
    question: Question,
    *,
    text: str,
    by: Answerer,
    via: str,
    source_key: str,
    follow_ups: bool = True,
) -> bool:
    """Store the answer and queue its delivery to the asker and to every merged duplicate's
    asker, in the caller's transaction. False if nothing was recorded.

    The state moves first, with a conditional UPDATE: of two moderators answering at the same
    instant exactly one moves it. With `follow_ups`, an answered question takes further answers
    (mail replies); the same source (one mail, one card action) answers once.
    """
    allowed = ANSWERABLE if follow_ups else FIRST_ANSWER_FROM
    if not await unit.questions.move(
        question.id, to=QuestionStatus.ANSWERED, only_from=allowed, acted_by=by.name or by.id
    ):
        return False
    answer_id = await unit.answers.add(
        question.id, text=text, author=by.id, author_name=by.name, via=via, source_key=source_key
    )
    if answer_id is None:
        raise AlreadyRecorded(source_key)
    follow_up = question.status is QuestionStatus.ANSWERED
    for asker in [question, *await unit.questions.merged_into(question.id)]:
        await replies.enqueue_to_asker(
            unit.outbox,
            asker,
            replies.moderator_answer(asker, text, follow_up=follow_up, answer_id=answer_id),
            dedupe_key=f"answer:{answer_id}:{asker.id}",
        )
    await queue_card_refresh(unit, question.id, reason=source_key)
    await board_changed(unit.outbox, question.event_id)
    return True


class AlreadyRecorded(Exception):
    """This source answered before: raised to roll the caller's transaction back."""
