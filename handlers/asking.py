"""A colleague says something to the bot: a command, or a question to record once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain.cards import EventChoice
from domain.replies import Notice, NotYourQuestion, Reply, Welcome
from domain.states import QuestionStatus
from errors import Permanent, Transient
from handlers import replies
from handlers.board import board_changed
from handlers.deps import Deps
from handlers.privacy import privacy_notice, with_notice, with_place
from handlers.queue import queue_card_refresh
from handlers.triage import queue_triage
from store.outbox import OutboxRepo
from store.records import Event, NewQuestion, Question
from store.store import Unit

EVENT_CHOSEN = "question.event"  # audit action: the asker said which event (or none) it is about


@dataclass(frozen=True)
class Asker:
    """Who is asking, as the channel authenticated them (never from message content)."""

    id: str
    aad_id: str | None
    name: str | None
    email: str | None = None


@dataclass(frozen=True)
class Said:
    """One thing a colleague said in a conversation, with what is needed to answer later."""

    delivery_key: str  # unique per delivery: a redelivery carries the same key
    source: str
    text: str
    asker: Asker
    conversation_id: str
    conversation_type: str | None
    address: dict[str, Any]
    reply_to_id: str | None
    place: str  # where it was said, in its channel's words (a question keeps them): never an id
    meeting_id: str | None = None  # a Teams meeting's chat: questions belong to its event
    # A card's Action.Execute: Teams shows the reply on the card, from the HTTP answer to the
    # click, so it is not also posted in the chat (see reply_to).
    answer_in_turn: bool = False


async def reply_to(outbox: OutboxRepo, said: Said, message: Reply) -> Reply:
    """Answer what was said, and return the answer (for a card's Action.Execute response).

    In a chat the reply is queued in the caller's transaction, so it goes out if and only if
    the change it reports was committed; it is keyed by the delivery, so a redelivery sends
    nothing new.
    """
    if not said.answer_in_turn:
        await replies.enqueue_reply(outbox, source=said.source, address=said.address, reply_to_id=said.reply_to_id,
                                    message=message, dedupe_key=f"reply:{said.delivery_key}")
    return message


def is_asker(question: Question, said: Said) -> bool:
    """Whether the authenticated sender is the colleague who asked (Entra id when both have one)."""
    if question.asker_aad_id and said.asker.aad_id:
        return question.asker_aad_id == said.asker.aad_id
    return question.asker_id == said.asker.id


async def record_question(
    deps: Deps,
    said: Said,
    text: str,
    *,
    anonymous: bool = False,
    private: bool = False,
    personal_chat: dict[str, Any] | None = None,
) -> int | None:
    """Commit the question and its triage job together; None if this delivery was seen before.

    A private question (HR or wellbeing matters) is marked in the same transaction, so it is
    never on a board or in a digest, not even for a moment. With `personal_chat` (a private or
    anonymous question asked in a shared chat, see ask_in_confidence) everything the bot says
    about the question goes there, and the shared chat is only told so, in the same commit.

    While an event is open the question belongs to it (in a meeting chat: the meeting's event).
    With several open, it is recorded untagged and the asker gets a card to pick one (see
    choose_event); triage does not wait for the choice.

    Matching and replying happen in the outbox worker after the HTTP request is answered, so
    the channel gets its acknowledgement in milliseconds and a crash loses nothing.
    """
    address, reply_to_id = (personal_chat, None) if personal_chat else (said.address, said.reply_to_id)

    async def record(unit: Unit) -> int | None:
        event, choices = await _current_event(unit, said.meeting_id)
        question_id = await unit.questions.add(
            NewQuestion(
                dedupe_key=said.delivery_key,
                source=said.source,
                text=text,
                asker_id=said.asker.id,
                asker_aad_id=said.asker.aad_id,
                asker_name=said.asker.name,
                asker_email=said.asker.email,
                conversation_id=said.conversation_id,
                conversation_type=said.conversation_type,
                address=with_place(address, said.place),
                reply_to_id=reply_to_id,
                event_id=event.id if event else None,
                anonymous=anonymous,
            )
        )
        if question_id is None:
            return None
        if private:
            await unit.questions.set_fields(question_id, private=True)

        async def tell(message: Reply, key: str) -> None:
            await replies.enqueue_reply(unit.outbox, source=said.source, address=address,
                                        reply_to_id=reply_to_id, message=message,
                                        dedupe_key=f"{key}:{question_id}")

        if personal_chat:
            await replies.enqueue_reply(unit.outbox, source=said.source, address=said.address,
                                        reply_to_id=said.reply_to_id,
                                        message=Notice(REPLIED_PRIVATELY),
                                        dedupe_key=f"reply:{said.delivery_key}")
        # A new asker's first reply ends with what is kept about them (handlers.privacy).
        new_asker = not await unit.questions.asked_before(said.asker.id, said.asker.aad_id, question_id)
        if anonymous or private:
            shared = not deps.channel(said.source).is_personal(said.address)
            acknowledgement = Notice(_in_confidence(said, text, private=private, shared=shared))
            await tell(with_notice(acknowledgement, privacy_notice(deps.limits)) if new_asker else acknowledgement,
                       "confidence")
            new_asker = False
        if choices:
            await tell(replies.event_choice(question_id, text, [(e.id, e.title) for e in choices]),
                       "event-choice")
        await queue_triage(unit.outbox, question_id, new_asker=new_asker)
        await board_changed(unit.outbox, event.id if event else None)
        return question_id

    # Grouped: questions arriving together share one commit (each is still committed before
    # its own acknowledgement).
    question_id = await deps.store.grouped(record)
    if question_id is None:
        deps.log.info("redelivered activity %s: already recorded", said.delivery_key)
    return question_id


async def ask_in_confidence(deps: Deps, said: Said, text: str, *, anonymous: bool = False,
                            private: bool = False) -> None:
    """A private or anonymous question. In a channel, group chat or meeting chat it is taken to
    the colleague's 1:1 chat with the bot: nothing about it but "I replied privately" is ever
    posted where it was asked.

    The 1:1 chat is opened in the turn, before anything is recorded: Teams gives the same chat
    for the same user every time, so opening it again on a redelivery is harmless, and when
    Teams refuses (the app is not installed for them) nothing is recorded and the colleague is
    told how to ask in a personal chat. Then the question, the acknowledgement in the 1:1 chat
    and the one line in the shared chat are committed together, before the turn is answered.
    """
    personal_chat = None
    channel = deps.channel(said.source)
    if not channel.is_personal(said.address):
        try:
            personal_chat = await channel.open_personal(said.address)
        except (Transient, Permanent) as failure:
            deps.log.warning("could not open a personal chat for %s: %s", said.delivery_key, failure)
            await _reply_only(deps, said, NO_PERSONAL_CHAT_NOW)
            return
        if personal_chat is None:
            await _reply_only(deps, said, NO_PERSONAL_CHAT)
            return
    await record_question(deps, said, text, anonymous=anonymous, private=private, personal_chat=personal_chat)


REPLIED_PRIVATELY = "I've replied to you in a personal chat."
NO_PERSONAL_CHAT = (
    "I can't open a personal chat with you (the app isn't installed for you), so nothing was "
    "recorded. To ask privately or anonymously, open a chat with me (**Apps**, find me, **Add**) "
    "and type **ask privately** or **ask anonymously** and your question there."
)
NO_PERSONAL_CHAT_NOW = (
    "I couldn't open a personal chat with you just now, so nothing was recorded. Please try "
    "again in a minute, or ask in a personal chat with me."
)


def _in_confidence(said: Said, text: str, *, private: bool, shared: bool) -> str:
    """The acknowledgement in the 1:1 chat: what was asked (there may be no other trace of it
    here), and what private or anonymous means."""
    quoted = "\n".join(f"> {line}" for line in text.splitlines() if line.strip())
    kind = ("**private**: only the moderators who answer questions will see it; it is never shown "
            "on an event board or published." if private else
            "**anonymous**: moderators, hosts and the published digest never see your name.")
    where = f" in {said.place}" if shared else ""
    return f"You asked{where}:\n\n{quoted}\n\nYour question is marked {kind} I'll answer you here."


async def _reply_only(deps: Deps, said: Said, text: str) -> None:
    async with deps.store.unit() as unit:
        await reply_to(unit.outbox, said, Notice(text))


async def _current_event(unit: Unit, meeting_id: str | None) -> tuple[Event | None, list[Event]]:
    """The question's event, or none and the open events for the asker to choose from.

    Guessing the newest of several open events would put questions on the wrong board."""
    if meeting_id:
        linked = await unit.events.by_meeting(meeting_id)
        if linked is not None:
            return linked, []
    open_events = await unit.events.open_events()
    if len(open_events) == 1:
        return open_events[0], []
    return None, open_events


async def choose_event(deps: Deps, said: Said, action: EventChoice) -> Reply:
    """The asker answers "Which event is your question about?" (`event_id` None: none of them).

    Only the asker may answer, only once, and only with an event that is still open and was
    already open when they asked (so an old question cannot be moved onto today's board). The
    row is locked while checking, so a double click records one choice.
    """
    question_id, event_id = action.question_id, action.event_id
    async with deps.store.unit() as unit:
        question = await unit.questions.lock(question_id)
        if question is None or not is_asker(question, said):
            return await reply_to(unit.outbox, said, NotYourQuestion())
        if question.event_id is not None or await unit.audit.find(EVENT_CHOSEN, question.ref):
            return await reply_to(unit.outbox, said, Notice(
                f"You already said which event {question.ref} is about; nothing was changed."))
        if event_id is None:
            await unit.audit.record("asker", EVENT_CHOSEN, question.ref, "none")
            return await reply_to(unit.outbox, said, Notice(
                f"Noted: {question.ref} is not about any of those events."))
        event = await unit.events.get(event_id)
        if event is None or event.status != "open" or event.opened_at > question.created_at:
            return await reply_to(unit.outbox, said, Notice(
                f"E-{event_id} was not open when you asked {question.ref}, or has closed since; "
                "nothing was changed."))
        await unit.questions.set_fields(question.id, event_id=event.id)
        await unit.audit.record("asker", EVENT_CHOSEN, question.ref, str(event.id))
        await board_changed(unit.outbox, event.id)
        if question.status not in (QuestionStatus.RECEIVED, QuestionStatus.ANSWERED_FAQ):
            # forwarded already: its moderators' card shows the event from now on
            await queue_card_refresh(unit, question.id, reason=f"event:{event.id}")
        return await reply_to(unit.outbox, said, Notice(
            f"Thanks: {question.ref} is now a question for **E-{event.id}**."))


async def welcome(deps: Deps, *, source: str, delivery_key: str, address: dict[str, Any]) -> None:
    """The bot was added to a chat or team: introduce it (and what it keeps), once per
    installation event."""
    async with deps.store.unit() as unit:
        await replies.enqueue_reply(
            unit.outbox,
            source=source,
            address=address,
            reply_to_id=None,
            message=Welcome(privacy=privacy_notice(deps.limits)),
            dedupe_key=f"welcome:{delivery_key}",
        )
