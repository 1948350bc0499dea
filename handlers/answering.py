"""A moderator's answer reaches the colleague who asked: stored once, delivered once."""

from __future__ import annotations

from dataclasses import dataclass

from domain.jobs import ChatAnswerMail
from domain.states import QuestionStatus
from errors import Transient
from handlers import replies
from handlers.board import board_changed
from handlers.channels import source_of
from handlers.deps import Deps
from handlers.forwarding import SUBJECT_PREVIEW_CHARS
from handlers.plain import cut
from handlers.queue import queue_card_refresh
from handlers.templating import templates
from mail.base import OutgoingMail
from outbox.jobs import job
from store.records import Question
from store.store import Unit

# A moderator's first answer may come while the question waits or is claimed (or after the FAQ
# answered it); a later mail reply to an answered question is a follow-up.
FIRST_ANSWER_FROM = (QuestionStatus.FORWARDED, QuestionStatus.CLAIMED, QuestionStatus.ANSWERED_FAQ)
ANSWERABLE = (*FIRST_ANSWER_FROM, QuestionStatus.ANSWERED)
FORWARD_WAIT_SECONDS = 5.0


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
    askers = [question, *await unit.questions.merged_into(question.id)]
    for asker in askers:
        await replies.enqueue_to_asker(
            unit.outbox,
            asker,
            replies.moderator_answer(asker, text, follow_up=follow_up, answer_id=answer_id),
            dedupe_key=f"answer:{answer_id}:{asker.id}",
        )
    if not question.private:  # a private answer is for its asker only
        await _tell_supporters(unit, question, askers, text, follow_up=follow_up, answer_id=answer_id)
    if via not in ("mail", "faq") and question.status.properties.mailed:  # given in a chat: so the mailbox shows it
        await unit.outbox.enqueue(ChatAnswerMail(question.id, answer_id),
                                  dedupe_key=f"{ChatAnswerMail.kind}:{answer_id}")
    await queue_card_refresh(unit, question.id, reason=source_key)
    await board_changed(unit.outbox, question.event_id)
    return True


async def _tell_supporters(
    unit: Unit, question: Question, askers: list[Question], text: str, *, follow_up: bool, answer_id: int
) -> None:
    """Everyone who said "me too" gets the answer once, in their own personal chat (never in
    the chat they said it in, which others may read); askers have it already."""
    told = {asker.asker_aad_id or asker.asker_id for asker in askers}
    for supporter, address in await unit.support.to_tell([asker.id for asker in askers]):
        if supporter in told:
            continue
        told.add(supporter)
        message = replies.moderator_answer(question, text, follow_up=follow_up, supported=True)
        await replies.enqueue_reply(unit.outbox, source=source_of(address), address=address, reply_to_id=None,
                                    message=message, dedupe_key=f"answer:{answer_id}:support:{supporter}",
                                    personal=True)


@job(ChatAnswerMail)
async def record_in_mailbox(deps: Deps, payload: ChatAnswerMail) -> None:
    """Outbox job: an answer given in a chat, as a reply from the shared mailbox to the question's
    forward, so the mail thread moderators work from shows it. Like every mail the bot sends it
    carries the bot's marker header, so the bot ignores it when it reads the mailbox; the
    transport sends it once per key."""
    async with deps.store.unit() as unit:
        question = await unit.questions.get(payload.question_id)
        answers = await unit.answers.for_question(payload.question_id)
    answer = next((a for a in answers if a.id == payload.answer_id), None)
    if question is None or answer is None:
        return  # purged or erased since
    if not question.forward_message_id:
        raise Transient("the forward mail is not sent yet", retry_after=FORWARD_WAIT_SECONDS)
    context = {"q": question, "answer": answer, "follow_up": answers[0].id != answer.id}
    await deps.mail.send(OutgoingMail(
        key=f"{ChatAnswerMail.kind}:{answer.id}",
        to=(deps.limits.moderators_address,),
        subject=f"Re: [{question.ref}] {cut(' '.join(question.text.split()), SUBJECT_PREVIEW_CHARS)}",
        text=templates.get_template("teams_answer.txt.j2").render(context),
        html=templates.get_template("teams_answer.html.j2").render(context),
        in_reply_to=question.forward_message_id,
        references=(question.forward_message_id,),
    ))


class AlreadyRecorded(Exception):
    """This source answered before: raised to roll the caller's transaction back."""
