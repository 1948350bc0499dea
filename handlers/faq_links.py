"""A moderator says which FAQ entry answers a question (`cli.py faq link Q-n ENTRY_ID`).

The question's text becomes a confirmed phrasing of the entry, which the live matcher takes in
at its next reload (every FAQ_RELOAD_SECONDS), so the next colleague asking it in other words
is answered from the FAQ. If the question still waits for the team, the entry's answer goes to
its asker as the team's answer, once. A private question's text never leaves its question.
"""

from __future__ import annotations


from faq.store import Faq
from handlers.answering import Answerer, record_answer
from handlers.references import reference_number
from handlers.roles import BadRequest
from store.store import Store

FAQ_LINK = "faq.link"


def question_number(given: str) -> int:
    """`12`, `Q-12` or `q12` → 12; BadRequest for anything else."""
    return reference_number(given, "Q", "a question", 12)


async def link_question(store: Store, faq: Faq, ref: str, entry_id: str, *, by: str) -> str:
    """Link the question to the entry and answer it if it waits; BadRequest (nothing changed)
    for an unknown question or entry, or a private question."""
    number = question_number(ref)
    entry = faq.get(entry_id)
    if entry is None:
        raise BadRequest(f"The FAQ has no entry {entry_id!r} (see `cli.py faq export` for the ids).")
    async with store.unit() as unit:
        question = await unit.questions.lock(number)
        if question is None:
            raise BadRequest(f"There is no question Q-{number} (never asked, or erased or purged).")
        if question.private:
            raise BadRequest(f"{question.ref} is private: its text is not used for the FAQ.")
        if not await unit.faq.link(question.id, entry.id, text=question.text, linked_by=by):
            return f"{question.ref} was linked to an FAQ entry before; nothing changed."
        await unit.audit.record(by, FAQ_LINK, question.ref, entry.id)
        # Still with the team: linking answers it. Otherwise the asker has had an answer (the
        # FAQ's or the team's), or their question was merged into one that will get it.
        answered = question.status.properties.open and await record_answer(
            unit, question, text=entry.answer, by=Answerer(by, None), via="faq",
            source_key=f"{FAQ_LINK}:{question.id}", follow_ups=False,
        )
    sent = "; its answer is on its way to the asker" if answered else ""
    return f"{question.ref} is now a phrasing of {entry.id}{sent}."
