"""Triage a recorded question: answer it from the FAQ when confident, otherwise forward it.

Either way the question takes a topic from the FAQ (faq.matcher.Match.topic): its answer's entry's,
or its nearest entry's when that is close enough to say what it is about. The digest groups
by it; the report counts it; the board shows it."""

from __future__ import annotations

import asyncio

from domain.jobs import Triage
from domain.replies import ToAsker
from domain.states import QuestionStatus
from handlers import replies
from handlers.board import board_changed
from handlers.deps import Deps, Match
from handlers.forwarding import queue_forward
from handlers.privacy import privacy_notice, with_notice
from handlers.queue import FIRST_POST, queue_card_refresh
from outbox.jobs import job
from store.outbox import OutboxRepo
from store.records import Question
from store.store import Unit


async def queue_triage(outbox: OutboxRepo, question_id: int, *, new_asker: bool | None = None) -> None:
    """Queue a recorded question's triage, once per question, in the caller's transaction.
    `new_asker`: whether it is the asker's first question, if the caller knows."""
    await outbox.enqueue(Triage(question_id, new_asker), dedupe_key=f"triage:{question_id}")


@job(Triage, batched=True)
async def triage(deps: Deps, payloads: list[Triage]) -> None:
    """Outbox job, taken in batches: one model call for every question due, one transaction
    for what it decides. Safe to run twice: each state move happens once."""
    async with deps.store.unit() as unit:
        due = await unit.questions.get_many([payload.question_id for payload in payloads])
    questions = [question for question in due if question.status is QuestionStatus.RECEIVED]
    if not questions:
        return
    matches = await asyncio.to_thread(deps.faq.match_many, [question.text for question in questions])
    new_asker = {payload.question_id: payload.new_asker for payload in payloads}
    async with deps.store.unit() as unit:
        for question, match in zip(questions, matches, strict=True):
            told = await _new_asker(unit, question, new_asker.get(question.id))
            notice = privacy_notice(deps.limits, by_mail=question.source == "mail") if told else None
            await _decide(unit, question, match, notice)


async def _new_asker(unit: Unit, question: Question, known: bool | None) -> bool:
    """Whether this is the asker's first question: said by the turn that recorded it (Teams),
    else looked up (a mail question, recorded by the inbox)."""
    if known is not None:
        return known
    return not await unit.questions.asked_before(question.asker_id, question.asker_aad_id, question.id)


async def _decide(unit: Unit, question: Question, match: Match, privacy: str | None) -> None:
    """Answer from the FAQ when the matcher is confident; otherwise forward to the moderators.
    `privacy`: the notice a new asker's first reply ends with (handlers.privacy)."""
    if match.entry is not None:
        moved = await unit.questions.move(
            question.id,
            to=QuestionStatus.ANSWERED_FAQ,
            only_from=[QuestionStatus.RECEIVED],
            faq_entry_id=match.entry.id,
            faq_score=float(match.score),
            topic=match.topic,
        )
        if moved:
            await _reply(
                unit,
                question,
                replies.faq_answer(question, match.entry.id, match.entry.question, match.entry.answer),
                privacy,
            )
            await board_changed(unit.outbox, question.event_id)
        return
    moved = await unit.questions.move(
        question.id,
        to=QuestionStatus.FORWARDED,
        only_from=[QuestionStatus.RECEIVED],
        faq_score=float(match.score),
        topic=match.topic,
    )
    if moved:
        await queue_forward(unit.outbox, question.id, match=match)
        await _reply(unit, question, replies.forwarded(question), privacy)
        await queue_card_refresh(unit, question.id, reason=FIRST_POST)
        await board_changed(unit.outbox, question.event_id)


async def _reply(unit: Unit, question: Question, message: ToAsker, privacy: str | None) -> None:
    if privacy:
        message = with_notice(message, privacy)
    await replies.enqueue_to_asker(
        unit.outbox, question, message, dedupe_key=f"reply:{question.id}:{message.type}"
    )
