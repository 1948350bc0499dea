"""A moderator says which FAQ entry answers a question: on its card ("Answer with FAQ entry"),
by a mail reply whose first line is `#faq ENTRY-ID`, or with `cli.py faq link Q-n ENTRY_ID`.

The question's text becomes a confirmed phrasing of the entry; a rebuild of the live matcher is
queued with it (other instances take it in at their next reload, every FAQ_RELOAD_SECONDS), so
the next colleague asking it in other words is answered from the FAQ. If the question still
waits for the team, the entry's answer goes to its asker as the team's answer, once. The
question takes the entry's topic (digest, report, board). A private question's text never
leaves its question.
"""

from __future__ import annotations

import asyncio
import re

from domain.jobs import FaqRebuild
from errors import Refused
from faq.store import Faq, FaqEntry
from handlers.answering import Answerer, record_answer
from handlers.asking import Said
from handlers.board import board_changed
from handlers.deps import Deps
from handlers.plain import cut, inert
from handlers.queue import queue_card_refresh
from handlers.references import reference_number
from handlers.roles import Actor, Role, require
from store.records import Question
from store.store import Store, Unit

FAQ_LINK = "faq.link"
SEARCH_RESULTS = 10
# The card form's last choice, "another entry: the id typed below"; never an id (ids are slugs)
ANOTHER_ENTRY = "*"
# A moderator's mail reply that links instead of answering: `#faq it-equipment` on its first line
MAIL_COMMAND = re.compile(r"#faq\b:?[ \t]*(?P<entry>.*)", re.IGNORECASE)


def question_number(given: str) -> int:
    """`12`, `Q-12` or `q12` → 12; Refused for anything else."""
    return reference_number(given, "Q", "a question", 12)


async def link_question(store: Store, faq: Faq, ref: str, entry_id: str, *, by: str) -> str:
    """`cli.py faq link`: link the question to the entry and answer it if it waits; Refused
    (nothing changed) for an unknown question or entry, or a private question."""
    number = question_number(ref)
    entry = known_entry(faq, entry_id)
    async with store.unit() as unit:
        question = await unit.questions.lock(number)
        if question is None:
            raise Refused(f"There is no question Q-{number} (never asked, or erased or purged).")
        return await link(unit, question, entry, by=Answerer(by, None))


def known_entry(faq: Faq, entry_id: str) -> FaqEntry:
    """The entry with this id; Refused naming the id when the FAQ has none."""
    entry = faq.get(entry_id.strip())
    if entry is None:
        raise Refused(f"The FAQ has no entry {entry_id.strip()!r}: check the id (in a chat with the "
                      "bot in Teams, faq search and a few words lists entries with theirs).")
    return entry


async def link(unit: Unit, question: Question, entry: FaqEntry, *, by: Answerer) -> str:
    """In the caller's transaction: store the link, answer a waiting asker once, queue the
    matcher's rebuild and the card's update. Returns what happened; Refused (nothing
    changed) for a private question. A second link of the same question changes nothing."""
    if question.private:
        raise Refused(f"{question.ref} is private: its text is not used for the FAQ.")
    who = by.name or by.id
    if not await unit.faq.link(question.id, entry.id, text=question.text, linked_by=who):
        return f"{question.ref} was linked to an FAQ entry before; nothing changed."
    await unit.audit.record(who, FAQ_LINK, question.ref, entry.id)
    if question.topic != entry.topic:  # the moderator's word on what it is about
        await unit.questions.set_fields(question.id, topic=entry.topic)
        await board_changed(unit.outbox, question.event_id)
    reason = f"{FAQ_LINK}:{question.id}"
    # Still with the team: linking answers it. Otherwise the asker has had an answer (the
    # FAQ's or the team's), or their question was merged into one that will get it.
    answered = question.status.properties.open and await record_answer(
        unit, question, text=entry.answer, by=by, via="faq", source_key=reason, follow_ups=False,
    )
    await unit.outbox.enqueue(FaqRebuild(question.id), dedupe_key=f"{FaqRebuild.kind}:{reason}")
    await queue_card_refresh(unit, question.id, reason=reason)  # one job with record_answer's
    sent = "; its answer is on its way to the asker" if answered else ""
    return f"{question.ref} is now a phrasing of {entry.id}{sent}."


def mail_command(said: str) -> str | None:
    """The entry id of a `#faq ENTRY-ID` first line ("" if it names none); None for a reply
    that is an answer."""
    first = next((line.strip() for line in said.splitlines() if line.strip()), "")
    found = MAIL_COMMAND.fullmatch(first)
    return found["entry"].strip() if found else None


def search(faq: Faq, words: str) -> list[FaqEntry]:
    """Entries whose id, question, alternates or answer hold every word (case ignored)."""
    wanted = words.casefold().split()
    found = []
    for entry in faq.entries:
        text = " ".join((entry.id, *entry.phrasings, entry.answer)).casefold()
        if all(word in text for word in wanted):
            found.append(entry)
    return found


async def search_reply(deps: Deps, said: Said, actor: Actor, words: str) -> str:
    """`faq search WORDS` (moderators): the ids to give "Answer with FAQ entry" or `#faq`;
    when no entry holds every word, the entries nearest in meaning."""
    await require(deps, actor, Role.MODERATOR, at=said)
    found = search(deps.faq.faq, words)
    heading = f"FAQ entries with {inert(cut(words, 100))}"
    if not found:
        match = await asyncio.to_thread(deps.faq.match, words)
        found = [entry for entry, _ in match.candidates]
        heading = "No FAQ entry has all those words; the nearest in meaning"
    if not found:
        return "No FAQ entry matches those words."
    more = f" (the first {SEARCH_RESULTS} of {len(found)})" if len(found) > SEARCH_RESULTS else ""
    lines = [f"- **{inert(entry.id)}**: {inert(cut(entry.question, 150))}" for entry in found[:SEARCH_RESULTS]]
    return f"{heading}{more}:\n\n" + "\n".join(lines)
