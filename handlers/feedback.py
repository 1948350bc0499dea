""""Did this answer your question?" — Yes records it; No sends the question to the team."""

from __future__ import annotations

from handlers import replies
from handlers.asking import Said
from handlers.deps import Deps
from handlers.board import board_changed
from handlers.forwarding import FORWARD
from handlers.queue import FIRST_POST, queue_card_refresh
from store.records import QuestionStatus


async def faq_feedback(deps: Deps, said: Said, *, question_id: int, helpful: bool) -> None:
    """Only the asker may answer for their question (checked against the authenticated sender).

    Each verdict is stored as a labelled example for the matcher (see `cli.py faq suggest`).
    """
    async with deps.store.unit() as unit:
        question = await unit.questions.get(question_id)
        if question is None or not _same_person(question.asker_id, question.asker_aad_id, said):
            message = replies.not_your_question()
        elif question.status is not QuestionStatus.ANSWERED_FAQ or question.faq_entry_id is None:
            message = replies.feedback_noted(question.status.value, question.ref)
        elif not await unit.questions.add_feedback(question.id, question.faq_entry_id, helpful=helpful):
            message = replies.feedback_noted(question.status.value, question.ref)
        elif helpful:
            message = replies.feedback_thanks()
        else:
            await unit.questions.move(
                question.id, to=QuestionStatus.FORWARDED, only_from=[QuestionStatus.ANSWERED_FAQ]
            )
            await unit.outbox.enqueue(
                FORWARD,
                {"question_id": question.id, "near_misses": [], "faq_rejected": question.faq_entry_id},
                dedupe_key=f"forward:{question.id}",
            )
            message = replies.forwarded(question)
            await queue_card_refresh(unit, question.id, reason=FIRST_POST)
            await board_changed(unit.outbox, question.event_id)
        await replies.enqueue_reply(
            unit.outbox,
            address=said.address,
            reply_to_id=said.reply_to_id,
            message=message,
            dedupe_key=f"reply:{said.delivery_key}",
        )


def _same_person(asker_id: str, asker_aad_id: str | None, said: Said) -> bool:
    if asker_aad_id and said.asker.aad_id:
        return asker_aad_id == said.asker.aad_id
    return asker_id == said.asker.id
