"""What a colleague typed: a command (help, events, roles, ...) or a question.

Commands are plain words so they work the same in a personal chat, a channel (after the
@mention is removed) and a meeting chat. Host, moderator and admin commands check the role of
the authenticated sender first and refuse clearly, changing nothing.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from handlers import hosting, replies
from handlers.asking import Said, ask_in_confidence, record_question
from handlers.board import BOARD_REFRESH, board_changed
from handlers.deps import Deps
from handlers.digest import publish_here
from handlers.moderation import moderate_here
from handlers.privacy import is_personal, privacy_notice
from handlers.report import md_inline
from handlers.roles import Actor, BadRequest, NotAllowed, Role, change_role, describe, require
from mail.inbound import question_ref
from store.records import Event
from store.store import Unit
from store.subjects import without_speaker

HELP_WORDS = frozenset({"help", "?", "hi", "hello", "start"})
MAX_TITLE_CHARS = hosting.MAX_TITLE_CHARS

Command = Callable[[Deps, Said, Actor, re.Match[str]], Awaitable[str]]
_COMMANDS: list[tuple[re.Pattern[str], Command]] = []


def command(pattern: str) -> Callable[[Command], Command]:
    def register(handler: Command) -> Command:
        _COMMANDS.append((re.compile(pattern, re.IGNORECASE | re.DOTALL), handler))
        return handler

    return register


async def handle_text(deps: Deps, said: Said) -> None:
    """Help, a command, a refusal for over-long text, or a question to record once."""
    text = " ".join(said.text.split())
    if not text or text.lower().rstrip("!.") in HELP_WORDS:
        await _reply(deps, said, replies.help_text(privacy_notice(deps.limits)))
        return
    if len(text) > deps.limits.max_question_chars:
        await _reply(deps, said, replies.too_long(deps.limits.max_question_chars, len(text)))
        return
    actor = Actor(id=said.asker.id, aad_id=said.asker.aad_id, name=said.asker.name, email=said.asker.email)
    for pattern, handler in _COMMANDS:
        found = pattern.fullmatch(text)
        if found:
            try:
                answer = await handler(deps, said, actor, found)
            except (NotAllowed, BadRequest) as refusal:
                answer = f"{refusal} Nothing was changed."
            if answer:
                await _reply(deps, said, replies.notice(answer))
            return
    await record_question(deps, said, text)


@command(r"(?:ask )?anonymously:?\s+(?P<question>.+)")
async def _ask_anonymously(deps: Deps, said: Said, actor: Actor, found: re.Match[str]) -> str:
    await ask_in_confidence(deps, said, found["question"], anonymous=True)
    return ""


@command(r"ask privately:?\s+(?P<question>.+)")
async def _ask_privately(deps: Deps, said: Said, actor: Actor, found: re.Match[str]) -> str:
    """HR or wellbeing matters: answered like any question, never on a board or in a digest."""
    await ask_in_confidence(deps, said, found["question"], private=True)
    return ""


@command(r"my questions")
async def _my_questions(deps: Deps, said: Said, actor: Actor, found: re.Match[str]) -> str:
    """Listed in a personal chat only: in a channel or group chat others would read them
    (private and anonymous ones included)."""
    if not is_personal(said.address):
        return "Type **my questions** in a personal chat with me: I don't list your questions where others can read them."
    async with deps.store.unit() as unit:
        mine = await unit.questions.of_asker(said.asker.id, said.asker.aad_id)
    if not mine:
        return "You have not asked any questions yet."
    lines = [f"- **{q.ref}** ({_state(q.status.value)}): {q.text[:120]}" for q in mine]
    return "Your most recent questions:\n\n" + "\n".join(lines)


@command(r"me too:?\s+(?P<ref>\S+)")
async def _me_too(deps: Deps, said: Said, actor: Actor, found: re.Match[str]) -> str:
    number = question_ref(f"[{found['ref'].upper()}]")
    async with deps.store.unit() as unit:
        question = await unit.questions.get(number) if number else None
        if question is None or question.event_id is None or question.private:
            return "I can't find an event question with that reference (e.g. me too Q-12)."
        added = await unit.support.add(question.id, said.asker.aad_id or said.asker.id)
        if added:
            await board_changed(unit.outbox, question.event_id)
    return f"Noted: you want {question.ref} answered too." if added else f"You already support {question.ref}."


@command(r"open event:?\s+(?P<title>.+)")
async def _open_event(deps: Deps, said: Said, actor: Actor, found: re.Match[str]) -> str:
    await require(deps, actor, Role.HOST, address=said.address)
    title, _, description = found["title"].partition(" | ")
    title = " ".join(title.split())[:MAX_TITLE_CHARS]
    event_id = await hosting.open_event(deps.store, title, by=actor.label, description=description,
                                        meeting_id=said.meeting_id, source_key=said.delivery_key)
    return (f"Event **E-{event_id}** ({md_inline(title)}) is open: questions asked from now on belong to it. "
            "Type **board here** in the hosts' chat to watch them arrive.")


@command(r"close event(?:\s+E?-?(?P<id>\d+))?")
async def _close_event(deps: Deps, said: Said, actor: Actor, found: re.Match[str]) -> str:
    await require(deps, actor, Role.HOST, address=said.address)
    given = found["id"]
    if given is None:
        async with deps.store.unit() as unit:
            only = await _chosen_event(unit, None)
        if only is None:
            return "Which event? Type **close event E-3** (see **events**)."
        given = str(only.id)
    event, closed = await hosting.close_event(deps.store, given, by=actor.label)
    if not closed:
        return f"E-{event.id} is already closed."
    return f"Event **E-{event.id}** is closed. Late questions about it still count as its own."


@command(r"events")
async def _events(deps: Deps, said: Said, actor: Actor, found: re.Match[str]) -> str:
    listed = await hosting.list_events(deps.store)
    if not listed:
        return "No events yet. A host starts one with **open event** followed by its title."
    return "\n".join(f"- **E-{line.event.id}** {md_inline(line.event.title)} ({line.event.status}, "
                     f"{line.asked} {'question' if line.asked == 1 else 'questions'})" for line in listed[-10:])


@command(r"publish(?:\s+(?P<id>E?-?\d+))?\s+here")
async def _publish_here(deps: Deps, said: Said, actor: Actor, found: re.Match[str]) -> str:
    return await publish_here(deps, said, actor, found["id"])


@command(r"board here(?:\s+E?-?(?P<id>\d+))?")
async def _board_here(deps: Deps, said: Said, actor: Actor, found: re.Match[str]) -> str:
    await require(deps, actor, Role.HOST, address=said.address)
    async with deps.store.unit() as unit:
        event = await _chosen_event(unit, found["id"])
        if event is None:
            return "Which event? Type **board here E-3** (see **events**)."
        await unit.events.set_board(event.id, without_speaker(said.address), None)
        await unit.outbox.enqueue(BOARD_REFRESH, {"event_id": event.id, "first": True}, dedupe_key=f"board:{event.id}:here:{said.delivery_key}")
    return ""


@command(r"moderate here")
async def _moderate_here(deps: Deps, said: Said, actor: Actor, found: re.Match[str]) -> str:
    await moderate_here(deps, said, actor)
    return ""


@command(r"(?P<verb>grant|revoke)\s+(?P<role>host|moderator)\s+(?P<who>\S+)")
async def _grant(deps: Deps, said: Said, actor: Actor, found: re.Match[str]) -> str:
    await require(deps, actor, Role.ADMIN, address=said.address)
    change = await change_role(deps.store, grant=found["verb"].lower() == "grant", role=found["role"],
                               who=found["who"], by=actor.label)
    return md_inline(describe(change))


async def _chosen_event(unit: Unit, given: str | None) -> Event | None:
    """The event named, or the only open one."""
    if given:
        return await unit.events.get(int(given))
    open_events = await unit.events.open_events()
    return open_events[0] if len(open_events) == 1 else None


def _state(status: str) -> str:
    return {
        "received": "received", "answered_faq": "answered from the FAQ", "forwarded": "with the team",
        "claimed": "being answered", "answered": "answered", "dismissed": "closed", "merged": "answered with another",
    }.get(status, status)


async def _reply(deps: Deps, said: Said, message: dict[str, Any]) -> None:
    async with deps.store.unit() as unit:
        await replies.enqueue_reply(unit.outbox, address=said.address, reply_to_id=said.reply_to_id,
                                    message=message, dedupe_key=f"reply:{said.delivery_key}")
