"""The moderators' queue: a card per forwarded question in the moderators' channel.

On the card a moderator claims, answers, dismisses (with a reason) or marks a duplicate,
answers a waiting question with an FAQ entry ("faq_link", handlers.faq_links), and turns an
answered question into an FAQ entry the bot answers from once the matcher is rebuilt ("faq", a
job after the click). "Mark private" (HR or wellbeing matters) takes a question off the hosts'
board and out of the digest, whatever its state. Each action is a conditional state change, so
when two moderators act at once exactly one wins; the other is told what happened. The card is
then updated in place to show who did what.
"""

from __future__ import annotations

import asyncio
import json

from domain.cards import Moderate, Op
from domain.jobs import FaqRebuild, ModerationCard, ModerationPage
from domain.replies import FaqChoice, Notice, Reply
from domain.states import OPEN_STATES, QuestionStatus
from errors import Refused, Transient
from faq.live import faq_ids, new_entry_id, reload_faq
from faq.store import MAX_ANSWER_CHARS as FAQ_MAX_ANSWER_CHARS
from faq.store import MAX_QUESTION_CHARS as FAQ_MAX_QUESTION_CHARS
from handlers import replies
from handlers.answering import FIRST_ANSWER_FROM, AlreadyRecorded, Answerer, record_answer
from handlers.asking import Said, reply_to
from handlers.board import board_changed
from handlers.channels import kept, source_of
from handlers.deps import Deps, Matcher
from handlers.faq_links import ANOTHER_ENTRY, known_entry, link
from handlers.queue import FIRST_POST, MODERATORS_CHANNEL, queue_card_refresh
from handlers.roles import Actor, NotAllowed, Role, require
from mail.inbound import question_ref
from outbox.jobs import job
from store.records import Question
from store.store import Unit

MAX_ANSWER_CHARS = 4000
CARD_WAIT_SECONDS = 1.0
PAGE = 10  # cards `moderate here` posts at once for questions that waited without one
DONE: dict[Op, str] = {  # what a moderator's click did (the card shows it too)
    Op.CLAIM: "You claimed {ref}.",
    Op.RELEASE: "You released {ref}: any moderator can answer it.",
    Op.ANSWER: "Your answer to {ref} is on its way to the colleague.",
    Op.DISMISS: "{ref} is dismissed; the colleague is told why.",
    Op.MERGE: "{ref} is marked as a duplicate; its asker gets the other question's answer.",
    Op.FAQ: "{ref} is in the FAQ now: the bot answers it from the FAQ within a few seconds.",
    Op.PRIVATE: "{ref} is private now: off the board and out of the digest; its answers go to a personal chat.",
}


async def moderate_here(deps: Deps, said: Said, actor: Actor) -> None:
    """A moderator makes this channel the moderators' queue (NotAllowed for anyone else).

    Questions still waiting that have no card yet (forwarded before there was a queue) get
    theirs, oldest first, a page at a time: typed again, it posts the next page."""
    await require(deps, actor, Role.MODERATOR, at=said)
    async with deps.store.unit() as unit:
        await unit.state.put(MODERATORS_CHANNEL, json.dumps(kept(said.source, deps.channel(said.source), said.address)))
        await unit.audit.record(actor.label, "moderators.channel", said.conversation_id)
        without_card = [question for question in await unit.questions.waiting_since(deps.clock.now(), limit=10_000)
                        if not question.moderation_card_id]
        page = without_card[:PAGE]
        if page:
            await unit.outbox.enqueue(ModerationPage(tuple(question.id for question in page)),
                                      dedupe_key=f"{ModerationPage.kind}:{said.delivery_key}")
        await _reply(unit, said, _queue_text(len(page), len(without_card) - len(page)))


def _queue_text(posted: int, more: int) -> str:
    text = "This conversation is now the moderators' queue: each forwarded question will appear here as a card."
    if posted:
        text += (f" {posted} question{'s' if posted != 1 else ''} already waiting "
                 f"{'get cards' if posted != 1 else 'gets a card'} now, oldest first.")
    if more:
        verb = "are" if more != 1 else "is"
        text += f" {more} more {verb} waiting: type **moderate here** again for the next {PAGE}."
    return text


async def show_card(deps: Deps, said: Said, actor: Actor, number: int) -> str:
    """`show Q-n`: a moderator has the question's card posted again at the bottom of the
    moderators' channel (the one further up stops being updated). Returns what to say."""
    await require(deps, actor, Role.MODERATOR, at=said)
    async with deps.store.unit() as unit:
        question = await unit.questions.get(number)
        queue = await unit.state.get(MODERATORS_CHANNEL)
        if question is None or question.status is QuestionStatus.RECEIVED:
            return f"There is no question Q-{number} with the moderators."
        if queue is None:
            return "There is no moderators' queue yet: type **moderate here** in the moderators' channel first."
        await unit.questions.set_fields(question.id, moderation_card_id=None)  # the new card takes over
        await queue_card_refresh(unit, question.id, reason=f"show:{said.delivery_key}", post=True)
        await unit.audit.record(actor.label, "question.show", question.ref)
    kept_queue = json.loads(queue)
    here = source_of(kept_queue) == said.source and deps.channel(said.source).same_chat(said.address, kept_queue)
    return "" if here else f"{question.ref}'s card is posted in the moderators' channel."


async def act(deps: Deps, said: Said, actor: Actor, action: Moderate) -> Reply:
    """Carry out a card action if the sender is a moderator and the question still allows it.

    Returns what the moderator is told. Success is not posted in the channel (the card, updated
    in place, shows it); it is the answer to an Action.Execute click.
    """
    try:
        await require(deps, actor, Role.MODERATOR, at=said)
    except NotAllowed as refusal:
        async with deps.store.unit() as unit:
            return await _reply(unit, said, f"{refusal} Nothing was changed.")
    try:
        async with deps.store.unit() as unit:
            question = await unit.questions.get(action.question_id)
            if question is None:
                return await _reply(unit, said, "That question no longer exists.")
            if action.op is Op.FAQ_LINK:
                return await _link(unit, question, action, actor, deps.faq, said)
            if action.op is Op.FAQ:
                outcome = await _add_to_faq(unit, question, action, actor, deps.faq)
            else:
                outcome = await _apply(unit, question, action, actor, said)
            if outcome is not None:  # lost the race, or the action was not possible: say why
                return await _reply(unit, said, outcome)
            await unit.audit.record(actor.label, f"question.{action.op}", question.ref, action.detail or None)
            await queue_card_refresh(unit, question.id, reason=f"{said.source}:{said.delivery_key}")
            await board_changed(unit.outbox, question.event_id)
            done = Notice(DONE[action.op].format(ref=question.ref))
    except AlreadyRecorded:  # a redelivered submission: it already took effect
        return Notice("That was done already.")
    return done


@job(FaqRebuild)
async def rebuild_faq(deps: Deps, payload: FaqRebuild) -> None:
    """Outbox job queued with a moderator's new FAQ entry: the matcher answers from it once
    rebuilt (a few seconds of CPU in a worker thread), without holding up the click."""
    await reload_faq(deps.faq, deps.store)


async def _link(unit: Unit, question: Question, action: Moderate, actor: Actor, faq: Matcher,
                said: Said) -> Reply:
    """"Answer with FAQ entry": an id typed in the form wins over the entry ticked (it was found
    with `faq search`); the asker gets the entry's answer once, the matcher learns the wording."""
    entry_id = action.faq_entry_id or (action.faq_entry if action.faq_entry != ANOTHER_ENTRY else "")
    if not entry_id:
        return await _reply(unit, said, "Type the entry's id in the form (type **faq search** and a few words to "
                                        "find it), then press Answer with this entry. Nothing was changed.")
    try:
        done = await link(unit, question, known_entry(faq.faq, entry_id),
                          by=Answerer(id=actor.aad_id or actor.id, name=actor.label))
    except Refused as refusal:
        return await _reply(unit, said, f"{refusal} Nothing was changed.")
    return Notice(done)


async def _apply(unit: Unit, question: Question, action: Moderate, actor: Actor, said: Said) -> str | None:
    if action.op is Op.PRIVATE:  # HR or wellbeing: off the board and out of the digest, in any state
        if question.private:
            return f"{question.ref} is already private."
        await unit.questions.set_fields(question.id, private=True)
        # Its duplicates get its answers: they become private too, so no answer to a private
        # question is ever shown with a public one (and each asker gets it in a 1:1 chat).
        for duplicate in await unit.questions.merged_into(question.id):
            if not duplicate.private:
                await unit.questions.set_fields(duplicate.id, private=True)
                await queue_card_refresh(unit, duplicate.id, reason=f"private:{question.id}")
        return None
    if action.op is Op.CLAIM:
        if await unit.questions.move(question.id, to=QuestionStatus.CLAIMED,
                                     only_from=[QuestionStatus.FORWARDED], claimed_by=actor.label):
            return None
        return _already(question)
    if action.op is Op.RELEASE:  # back to waiting, for any moderator to take
        if await unit.questions.move(question.id, to=QuestionStatus.FORWARDED,
                                     only_from=[QuestionStatus.CLAIMED], claimed_by=None):
            return None
        return f"{question.ref} is not claimed; nothing was changed."
    if action.op is Op.ANSWER:
        if not action.answer:
            return "Type the answer in the box on the card, then press Send answer."
        if len(action.answer) > MAX_ANSWER_CHARS:
            return f"That answer is {len(action.answer):,} characters; the limit is {MAX_ANSWER_CHARS:,}."
        if question.status not in FIRST_ANSWER_FROM:
            return _already(question)
        if question.status is QuestionStatus.CLAIMED and question.claimed_by != actor.label and not action.send_anyway:
            return (f"{question.ref} is claimed by {question.claimed_by or 'another moderator'}; send anyway? "
                    "Your answer was not sent. To send it, tick \"Send it although another moderator claimed "
                    "it\" on the card and press Send answer again.")
        answered = await record_answer(
            unit, question, text=action.answer, by=Answerer(id=actor.aad_id or actor.id, name=actor.label),
            via=said.source, source_key=f"{said.source}:{said.delivery_key}", follow_ups=False,
        )
        return None if answered else _already(await unit.questions.get(question.id) or question)
    if action.op is Op.DISMISS:
        if not action.reason:
            return "Give a reason for dismissing it (the colleague who asked will see it)."
        if not await unit.questions.move(question.id, to=QuestionStatus.DISMISSED, only_from=OPEN_STATES,
                                         acted_by=actor.label, dismissed_reason=action.reason[:500]):
            return _already(question)
        await replies.enqueue_to_asker(unit.outbox, question, replies.dismissed(question, action.reason[:500]),
                                       dedupe_key=f"dismissed:{question.id}")
        return None
    typed = action.duplicate_of
    number = question_ref(f"[{typed}]") or (int(typed) if typed.isdigit() else None)
    target = await unit.questions.get(number) if number else None
    if target is None or target.id == question.id or target.status is QuestionStatus.MERGED:
        return "Give the reference of the question this one duplicates, e.g. Q-12."
    if target.private and not question.private:  # its answer would reach a public question
        return (f"{target.ref} is private, so {question.ref} can't be its duplicate: a private "
                f"question's answer is for its asker only. Answer {question.ref} on its own, or mark "
                "it private first if it is private too.")
    if not await unit.questions.move(question.id, to=QuestionStatus.MERGED, only_from=OPEN_STATES,
                                     acted_by=actor.label, merged_into=target.id):
        return _already(question)
    answers = await unit.answers.for_question(target.id)
    if answers:  # the original was answered already: this asker gets that answer now
        answer = replies.moderator_answer(question, answers[-1].text, follow_up=False, answer_id=answers[-1].id)
        await replies.enqueue_to_asker(unit.outbox, question, answer, dedupe_key=f"merged:{question.id}")
    return None


@job(ModerationCard)
async def refresh_card(deps: Deps, payload: ModerationCard) -> None:
    """Outbox job: the card shows the question's state as it is when the job runs."""
    async with deps.store.unit() as unit:
        address = await unit.state.get(MODERATORS_CHANNEL)
        question = await unit.questions.get(payload.question_id)
        if address is None or question is None:
            return
        answers = await unit.answers.for_question(question.id)
        event = await unit.events.get(question.event_id) if question.event_id else None
        merged = await unit.questions.get(question.merged_into) if question.merged_into else None
        faq_entry = await unit.faq.entry_from_question(question.id)
        linked = await unit.faq.linked_entry(question.id)
    message = replies.moderation_card(
        question, answers, event=event, merged_into=merged, faq_entry=faq_entry, faq_link=linked,
        faq_choices=await _nearest(deps.faq, question) if linked is None else (),
    )
    target = json.loads(address)
    channel = deps.channel(source_of(target))
    if question.moderation_card_id:
        await channel.update(target, question.moderation_card_id, message)
        return
    if not payload.first:
        async with deps.store.unit() as unit:  # the channel was set up after the forward
            await queue_card_refresh(unit, question.id, reason=FIRST_POST)
        raise Transient("the card is being posted by its first job", retry_after=CARD_WAIT_SECONDS)
    card_id = await channel.post(target, message)
    async with deps.store.unit() as unit:
        await unit.questions.set_fields(question.id, moderation_card_id=card_id)


async def _nearest(faq: Matcher, question: Question) -> tuple[FaqChoice, ...]:
    """The entries "Answer with FAQ entry" offers: the matcher's best few for the question (an
    open, non-private one; no other card offers the form)."""
    if question.private or not question.status.properties.open:
        return ()
    match = await asyncio.to_thread(faq.match, question.text)
    return tuple(FaqChoice(entry.id, entry.question) for entry, _ in match.candidates)


@job(ModerationPage)
async def post_page(deps: Deps, payload: ModerationPage) -> None:
    """Outbox job: `moderate here`'s page of cards, posted one after another so that they read
    oldest first. A rerun updates the cards it posted already instead of posting them again."""
    for question_id in payload.question_ids:
        await refresh_card(deps, ModerationCard(question_id, first=True))


async def _add_to_faq(
    unit: Unit, question: Question, action: Moderate, actor: Actor, faq: Matcher
) -> str | None:
    """An answered question becomes an FAQ entry (stored beside the bundled file), unless the
    FAQ already answers it: a second entry for one topic would split the matcher's confidence
    between the two (`cli.py faq suggest` lists the asker's wording as an alternate instead)."""
    existing = await unit.faq.entry_from_question(question.id)
    if existing:
        return f"{question.ref} is already in the FAQ as {existing}."
    if question.status is not QuestionStatus.ANSWERED:
        return f"Only an answered question can be added to the FAQ; {question.ref} is {question.status.value}."
    answers = await unit.answers.for_question(question.id)
    if question.private:  # the FAQ answers everyone: nothing of a private question goes in as it is
        originals = {question.text, *(a.text for a in answers)}
        if not action.faq_question or not action.faq_answer or {action.faq_question, action.faq_answer} & originals:
            return (f"{question.ref} is private: to add an FAQ entry from it, write a general question "
                    "and answer in your own words, without the colleague's text or answer.")
    text = action.faq_question or question.text
    answer = action.faq_answer or (answers[-1].text if answers else "")
    if not answer:
        return "Give the answer the FAQ should show."
    if len(text) > FAQ_MAX_QUESTION_CHARS or len(answer) > FAQ_MAX_ANSWER_CHARS:
        return (f"An FAQ question can be at most {FAQ_MAX_QUESTION_CHARS:,} characters and its answer "
                f"{FAQ_MAX_ANSWER_CHARS:,}; please shorten it.")
    already = (await asyncio.to_thread(faq.match, text)).entry
    if already is not None:
        return f"The FAQ already answers that with {already.id} ({already.question}); nothing was added."
    entry_id = new_entry_id(text, faq_ids(faq) | {entry.id for entry in await unit.faq.entries()})
    await unit.faq.add_entry(entry_id, question=text, answer=answer, question_id=question.id,
                             created_by=actor.label, topic=question.topic)
    # The click is answered now; the matcher's rebuild (seconds of CPU) is a job after it.
    await unit.outbox.enqueue(FaqRebuild(question.id), dedupe_key=f"{FaqRebuild.kind}:{question.id}")
    return None


def _already(question: Question) -> str:
    who = question.acted_by or question.claimed_by
    return f"{question.ref} is already {question.status.value}" + (f" by {who}." if who else ".")


async def _reply(unit: Unit, said: Said, text: str) -> Reply:
    return await reply_to(unit.outbox, said, Notice(text))
