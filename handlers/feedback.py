"""What askers tell us about answers.

"Did this answer your question?" on an FAQ answer: Yes records it; No sends the question to
the team. Helpful / Not helpful on a moderator's answer: recorded once, for the moderators.
"""

from __future__ import annotations

import json

from domain.cards import AnswerFeedback, FaqFeedback
from domain.jobs import UsedCard
from domain.replies import (
    AnswerFeedbackCard,
    AnswerFeedbackThanks,
    FaqAnswer,
    FeedbackNoted,
    FeedbackThanks,
    Notice,
    NotYourQuestion,
    Reply,
)
from domain.states import QuestionStatus
from handlers import replies
from handlers.asking import Said, is_asker, reply_to
from handlers.board import board_changed
from handlers.deps import Deps
from handlers.forwarding import queue_forward
from handlers.queue import FIRST_POST, queue_card_refresh
from outbox.jobs import job
from store.records import Question


async def faq_feedback(deps: Deps, said: Said, action: FaqFeedback) -> Reply:
    """Only the asker may answer for their question (checked against the authenticated sender).

    Each verdict is stored as a labelled example for the matcher (see `cli.py faq suggest`).
    """
    async with deps.store.unit() as unit:
        question = await unit.questions.get(action.question_id)
        message: Reply
        if question is None or not is_asker(question, said):
            message = NotYourQuestion()
        elif (question.status is not QuestionStatus.ANSWERED_FAQ or question.faq_entry_id is None
              or not await unit.questions.add_feedback(question.id, question.faq_entry_id, helpful=action.helpful)):
            message = FeedbackNoted(status=question.status, ref=question.ref)  # not an FAQ answer, or said before
        elif action.helpful:
            message = FeedbackThanks(card=_faq_card(deps, question, "You said this answered your question."))
        else:
            await unit.questions.move(
                question.id, to=QuestionStatus.FORWARDED, only_from=[QuestionStatus.ANSWERED_FAQ]
            )
            await queue_forward(unit.outbox, question.id, rejected=question.faq_entry_id)
            message = Notice(f"Done: I've sent your question to the team as you asked (reference "
                             f"**{question.ref}**). Their answer will come back to you here.",
                             card=_faq_card(deps, question, f"You asked the team to answer it ({question.ref})."))
            await queue_card_refresh(unit, question.id, reason=FIRST_POST)
            await board_changed(unit.outbox, question.event_id)
        return await reply_to(unit.outbox, said, message)


ANSWER_FEEDBACK = "answer.feedback"


async def answer_feedback(deps: Deps, said: Said, action: AnswerFeedback) -> Reply:
    """The asker says whether a moderator's answer helped: recorded once per answer.

    Kept in the audit log (no table of its own yet), as JSON naming the answer. The question
    row is locked while we look for an earlier verdict, so a double click records one; the
    reply is keyed by the delivery, so a redelivered click sends nothing either.
    """
    async with deps.store.unit() as unit:
        question = await unit.questions.lock(action.question_id)
        message: Reply
        if question is None or not is_asker(question, said):
            message = NotYourQuestion()
        elif not any(answer.id == action.answer_id
                     for answer in await unit.answers.for_question(question.merged_into or question.id)):
            message = NotYourQuestion()  # not an answer to this question
        else:
            earlier = [entry for entry in await unit.audit.find(ANSWER_FEEDBACK, question.ref)
                       if _verdict_answer(entry.detail) == action.answer_id]
            if earlier:
                message = FeedbackNoted(status=question.status, ref=question.ref)
            else:
                detail = json.dumps({"answer_id": action.answer_id, "helpful": action.helpful})
                await unit.audit.record("asker", ANSWER_FEEDBACK, question.ref, detail)
                said_so = "this answer helped" if action.helpful else "this answer did not help"
                message = AnswerFeedbackThanks(action.helpful, card=AnswerFeedbackCard(f"You said {said_so}."))
        return await reply_to(unit.outbox, said, message)


async def replace_used_card(deps: Deps, said: Said, card_id: str, message: Reply) -> None:
    """A card clicked in a client without Universal Actions (Action.Submit): queue its update in
    place, so its buttons are replaced by what was chosen there too (Teams does this itself for
    Action.Execute, from the card in the invoke response)."""
    card = message.card
    if card is None:
        return
    async with deps.store.unit() as unit:
        used = UsedCard(said.address, card_id, card, source=said.source)
        await unit.outbox.enqueue(used, dedupe_key=f"card-used:{said.conversation_id}:{card_id}")


@job(UsedCard)
async def update_used_card(deps: Deps, payload: UsedCard) -> None:
    """Outbox job: replace the clicked card by its used form."""
    await deps.channel(payload.source).update(payload.address, payload.card_id, payload.message)


def _faq_card(deps: Deps, question: Question, chosen: str) -> FaqAnswer:
    """The FAQ answer card as it looks once used: the answer stays, the buttons become `chosen`."""
    faq = getattr(deps.faq, "faq", None)
    entry = faq.get(question.faq_entry_id) if faq is not None and question.faq_entry_id else None
    return replies.faq_answer(question, question.faq_entry_id or "", entry.question if entry else question.text,
                              entry.answer if entry else "", chosen=chosen)


def _verdict_answer(detail: str | None) -> int | None:
    try:
        value = json.loads(detail or "")
    except ValueError:
        return None
    return value.get("answer_id") if isinstance(value, dict) else None
