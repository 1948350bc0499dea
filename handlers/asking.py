"""A colleague says something to the bot: a command, or a question to record once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from handlers import replies
from handlers.deps import Deps
from handlers.board import board_changed
from handlers.triage import TRIAGE_JOB
from store.records import Event, NewQuestion
from store.store import Unit



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
    meeting_id: str | None = None  # a Teams meeting's chat: questions belong to its event


async def record_question(
    deps: Deps, said: Said, text: str, *, anonymous: bool = False, private: bool = False
) -> int | None:
    """Commit the question and its triage job together; None if this delivery was seen before.

    A private question (HR or wellbeing matters) is marked in the same transaction, so it is
    never on a board or in a digest, not even for a moment.

    While an event is open the question belongs to it (in a meeting chat: the meeting's event;
    with several open, the newest).

    Matching and replying happen in the outbox worker after the HTTP request is answered, so
    the channel gets its acknowledgement in milliseconds and a crash loses nothing.
    """
    async with deps.store.unit() as unit:
        event = await _current_event(unit, said.meeting_id)
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
                address=said.address,
                reply_to_id=said.reply_to_id,
                event_id=event.id if event else None,
                anonymous=anonymous,
            )
        )
        if question_id is None:
            deps.log.info("redelivered activity %s: already recorded", said.delivery_key)
            return None
        if private:
            await unit.questions.set_fields(question_id, private=True)
        await unit.outbox.enqueue(
            TRIAGE_JOB, {"question_id": question_id}, dedupe_key=f"triage:{question_id}"
        )
        await board_changed(unit.outbox, event.id if event else None)
    return question_id


async def _current_event(unit: Unit, meeting_id: str | None) -> Event | None:
    if meeting_id:
        linked = await unit.events.by_meeting(meeting_id)
        if linked is not None:
            return linked
    open_events = await unit.events.open_events()
    return open_events[-1] if open_events else None


async def welcome(deps: Deps, *, delivery_key: str, address: dict[str, Any]) -> None:
    """The bot was added to a chat or team: introduce it, once per installation event."""
    async with deps.store.unit() as unit:
        await replies.enqueue_reply(
            unit.outbox,
            address=address,
            reply_to_id=None,
            message=replies.welcome(),
            dedupe_key=f"welcome:{delivery_key}",
        )
