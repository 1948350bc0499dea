"""What a colleague typed: a command (help, events, roles, ...) or a question.

Commands are plain words so they work the same in a personal chat, a channel (after the
@mention is removed) and a meeting chat. Host, moderator and admin commands check the role of
the authenticated sender first and refuse clearly, changing nothing.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from domain.jobs import BoardRefresh
from domain.replies import Help, HelpCommand, HelpSection, Notice, Reply, TooLong
from errors import Refused
from handlers import faq_links, hosting, replies
from handlers.asking import Said, ask_in_confidence, is_asker, record_question
from handlers.board import board_changed
from handlers.channels import kept, tagged
from handlers.deps import Deps
from handlers.digest import publish_here
from handlers.moderation import moderate_here, show_card
from handlers.plain import cut, inert
from handlers.privacy import privacy_notice
from handlers.roles import Actor, Role, change_role, describe, require, roles_of
from mail.inbound import question_ref
from store.records import Event
from store.store import Unit

HELP_WORDS = frozenset({"help", "?", "hi", "hello", "start", "commands", "menu"})
MAX_TITLE_CHARS = hosting.MAX_TITLE_CHARS
STAFF = "staff"


@dataclass(frozen=True)
class Guide:
    """One line of `help`: a command, who may use it, what it does and one example."""

    role: str  # "staff" or a Role value
    command: str
    does: str
    example: str


GUIDE = (
    Guide(STAFF, "ask anonymously", "ask without your name being shown", "ask anonymously Will the canteen reopen?"),
    Guide(STAFF, "ask privately", "HR or wellbeing: answered, never on a board or published",
          "ask privately Can I change my hours after leave?"),
    Guide(STAFF, "my questions", "your questions and where each stands", "my questions"),
    Guide(STAFF, "me too", "support a colleague's question at an event", "me too Q-12"),
    Guide(Role.MODERATOR, "moderate here", "make this channel the moderators' queue", "moderate here"),
    Guide(Role.MODERATOR, "show", "post a question's card here again", "show Q-12"),
    Guide(Role.MODERATOR, "faq search", "find an FAQ entry's id (for Answer with FAQ entry, or #faq by mail)",
          "faq search laptop broken"),
    Guide(Role.HOST, "open event", "start taking questions for an event", "open event Town hall, March"),
    Guide(Role.HOST, "board here", "a live board of the event's questions here", "board here E-3"),
    Guide(Role.HOST, "close event", "stop taking questions", "close event E-3"),
    Guide(Role.HOST, "events", "the events and how many questions each has", "events"),
    Guide(Role.HOST, "publish here", "post the event's answered questions here", "publish E-3 here"),
    Guide(Role.ADMIN, "grant moderator", "give someone a role (host or moderator)",
          "grant moderator sam@council.example"),
    Guide(Role.ADMIN, "revoke host", "take a role away", "revoke host sam@council.example"),
)
ROLE_ORDER = (STAFF, Role.MODERATOR, Role.HOST, Role.ADMIN)

# A known command with its argument missing: (pattern, what to ask for). Nothing is recorded.
MISSING_PART = (
    (r"(?:ask )?anonymously:?", "Type your question after it, e.g. **ask anonymously Will the canteen reopen?**"),
    (r"ask privately:?", "Type your question after it, e.g. **ask privately Can I change my hours after leave?**"),
    (r"me too:?", "Say which question, e.g. **me too Q-12** (the reference is on the event board)."),
    (r"open event:?", "Give the event's title, e.g. **open event Town hall, March**."),
    (r"(?:grant|revoke)(?:\s+(?:host|moderator))?",
     "Say the role and whose email, e.g. **grant moderator sam@council.example**."),
    (r"publish", "Say where, e.g. **publish here** (or **publish E-3 here**)."),
    (r"faq search:?", "Type the words to look for after it, e.g. **faq search laptop broken**."),
)
_MISSING = [(re.compile(pattern, re.IGNORECASE), ask) for pattern, ask in MISSING_PART]
# Text that starts like a command but does not parse gets "did you mean", not a Q-number: a
# command word and at most this many words after it (a longer text is a question).
COMMAND_STARTS = re.compile(
    r"(?:my questions?|me too|open events?|close events?|board|moderate|publish|grant|revoke|show|queue|events?"
    r"|ask (?:anonymously|privately))\b", re.IGNORECASE)
NEAR_MISS_MAX_WORDS = 3

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
    actor = Actor(id=said.asker.id, aad_id=said.asker.aad_id, name=said.asker.name, email=said.asker.email)
    if not text or text.lower().rstrip("!.") in HELP_WORDS:
        roles = await roles_of(deps, actor, at=said)
        await _reply(deps, said, Help(sections=help_sections(roles), privacy=privacy_notice(deps.limits)))
        return
    if len(text) > deps.limits.max_question_chars:
        await _reply(deps, said, TooLong(limit=deps.limits.max_question_chars, length=len(text)))
        return
    for pattern, handler in _COMMANDS:
        found = pattern.fullmatch(text)
        if found:
            try:
                answer = await handler(deps, said, actor, found)
            except Refused as refusal:
                answer = f"{refusal} Nothing was changed."
            if answer:
                await _reply(deps, said, Notice(answer))
            return
    not_a_question = _not_a_question(text)
    if not_a_question:
        await _reply(deps, said, Notice(not_a_question))
        return
    await record_question(deps, said, text)


def help_sections(roles: set[Role]) -> tuple[HelpSection, ...]:
    """The commands this sender may use, by role (staff first), one example each."""
    shown = [STAFF, *(role for role in ROLE_ORDER[1:] if role in roles)]
    return tuple(HelpSection(str(role), tuple(HelpCommand(g.command, g.does, g.example)
                                              for g in GUIDE if g.role == role)) for role in shown)


def _not_a_question(text: str) -> str | None:
    """What to say to a command missing its argument, or to text that starts like a command
    and does not parse; None for a question. Either way nothing is recorded."""
    bare = text.rstrip(" ?!.")
    for pattern, ask in _MISSING:
        if pattern.fullmatch(bare):
            return f"{ask} Nothing was recorded."
    if not COMMAND_STARTS.match(text) or len(text.split()) > NEAR_MISS_MAX_WORDS:
        return None
    first_words = " ".join(text.lower().split()[:2])
    known = [g.command for g in GUIDE] + ["help"]
    guess = difflib.get_close_matches(first_words, known, n=1, cutoff=0.3)
    example = next((g.example for g in GUIDE if guess and g.command == guess[0]), "help")
    suggestion = f"Did you mean **{example}**? " if guess else ""
    return (f"I didn't recognise that command, so nothing was recorded. {suggestion}Type **help** for the "
            "commands you can use. To ask it as a question, add a few words, e.g. \"How do I ...?\"")


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
    if not deps.channel(said.source).is_personal(said.address):
        return ("Type **my questions** in a personal chat with me: I don't list your questions where others "
                "can read them.")
    async with deps.store.unit() as unit:
        mine = await unit.questions.of_asker(said.asker.id, said.asker.aad_id)
    if not mine:
        return "You have not asked any questions yet."
    lines = [f"- **{q.ref}** ({q.status.properties.label}): {inert(cut(q.text, 120))}" for q in mine]
    return "Your most recent questions:\n\n" + "\n".join(lines)


@command(r"me too:?\s+(?P<ref>\S+)")
async def _me_too(deps: Deps, said: Said, actor: Actor, found: re.Match[str]) -> str:
    number = question_ref(f"[{found['ref'].upper()}]")
    async with deps.store.unit() as unit:
        question = await unit.questions.get(number) if number else None
        if question is None or question.event_id is None or question.private:
            return "I can't find an event question with that reference (e.g. me too Q-12)."
        if is_asker(question, said):  # the asker is counted by asking; support counts others
            return (f"{question.ref} is your own question, so it counts already and its answer will "
                    "come to you. **me too** is for a colleague's question you want answered as well.")
        supporter = said.asker.aad_id or said.asker.id
        added = await unit.support.add(question.id, supporter, tagged(said.source, said.address))
        if added:
            await board_changed(unit.outbox, question.event_id)
    return (f"Noted: you want {question.ref} answered too. Its answer will come to you in a personal chat."
            if added else f"You already support {question.ref}.")


@command(r"open (?P<another>another )?event:?\s+(?P<title>.+)")
async def _open_event(deps: Deps, said: Said, actor: Actor, found: re.Match[str]) -> str:
    """`open another event` confirms a second event with the title of an open one."""
    await require(deps, actor, Role.HOST, at=said)
    title, _, description = found["title"].partition(" | ")
    title = " ".join(title.split())[:MAX_TITLE_CHARS]
    event_id = await hosting.open_event(deps.store, title, by=actor.label, description=description,
                                        meeting_id=said.meeting_id, source_key=said.delivery_key,
                                        same_title_ok=bool(found["another"]))
    return (f"Event **E-{event_id}** ({inert(title)}) is open: questions asked from now on belong to it. "
            "Type **board here** in the hosts' chat to watch them arrive.")


@command(r"close event(?:\s+E?-?(?P<id>\d+))?")
async def _close_event(deps: Deps, said: Said, actor: Actor, found: re.Match[str]) -> str:
    await require(deps, actor, Role.HOST, at=said)
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
    return "\n".join(f"- **E-{line.event.id}** {inert(line.event.title)} ({line.event.status}, "
                     f"{line.asked} {'question' if line.asked == 1 else 'questions'})" for line in listed[-10:])


@command(r"publish(?:\s+(?P<id>E?-?\d+))?\s+here")
async def _publish_here(deps: Deps, said: Said, actor: Actor, found: re.Match[str]) -> str:
    return await publish_here(deps, said, actor, found["id"])


@command(r"board here(?:\s+E?-?(?P<id>\d+))?")
async def _board_here(deps: Deps, said: Said, actor: Actor, found: re.Match[str]) -> str:
    await require(deps, actor, Role.HOST, at=said)
    async with deps.store.unit() as unit:
        event = await _chosen_event(unit, found["id"])
        if event is None:
            return "Which event? Type **board here E-3** (see **events**)."
        await unit.events.set_board(event.id, kept(said.source, deps.channel(said.source), said.address), None)
        await unit.outbox.enqueue(BoardRefresh(event.id, first=True),
                                  dedupe_key=f"board:{event.id}:here:{said.delivery_key}")
    return ""


@command(r"moderate here")
async def _moderate_here(deps: Deps, said: Said, actor: Actor, found: re.Match[str]) -> str:
    await moderate_here(deps, said, actor)
    return ""


@command(r"show\s+Q-?(?P<number>\d{1,9})")
async def _show(deps: Deps, said: Said, actor: Actor, found: re.Match[str]) -> str:
    return await show_card(deps, said, actor, int(found["number"]))


@command(r"faq search:?\s+(?P<words>.+)")
async def _faq_search(deps: Deps, said: Said, actor: Actor, found: re.Match[str]) -> str:
    return await faq_links.search_reply(deps, said, actor, found["words"])


@command(r"(?P<verb>grant|revoke)\s+(?P<role>host|moderator)\s+(?P<who>\S+)")
async def _grant(deps: Deps, said: Said, actor: Actor, found: re.Match[str]) -> str:
    await require(deps, actor, Role.ADMIN, at=said)
    change = await change_role(deps.store, grant=found["verb"].lower() == "grant", role=found["role"],
                               who=found["who"], by=actor.label)
    return inert(describe(change))


async def _chosen_event(unit: Unit, given: str | None) -> Event | None:
    """The event named, or the only open one."""
    if given:
        return await unit.events.get(int(given))
    open_events = await unit.events.open_events()
    return open_events[0] if len(open_events) == 1 else None


async def _reply(deps: Deps, said: Said, message: Reply) -> None:
    async with deps.store.unit() as unit:
        await replies.enqueue_reply(unit.outbox, source=said.source, address=said.address,
                                    reply_to_id=said.reply_to_id, message=message,
                                    dedupe_key=f"reply:{said.delivery_key}")
