"""Question states on a real database: what each state means is acted on, and a state this
version does not know stops what reads it, naming the state."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from domain.jobs import ForwardMail
from handlers.deps import Deps, Limits
from handlers.forwarding import forward
from mail.eml import EmlOutbox
from store import schema
from store.store import Store
from tests.privacy.seed import ask

MODERATORS = "staff-questions@council.example"


class _Unused:
    """Forwarding looks nothing up: these outside services are never called."""

    def match(self, text: str) -> Any:
        raise AssertionError("forwarding does not match")

    def match_many(self, texts: Any) -> Any:
        raise AssertionError("forwarding does not match")



def _deps(store: Store, outbox: Path) -> Deps:
    return Deps(store=store, faq=_Unused(), mail=EmlOutbox(outbox, MODERATORS),
                limits=Limits(max_question_chars=2000, moderators_address=MODERATORS),
                log=logging.getLogger("states"), clock=store.clock)


async def _set(store: Store, question_id: int, **values: Any) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(update(schema.questions).where(schema.questions.c.id == question_id).values(**values))


async def _question_in(store: Store, status: str, key: str) -> int:
    question_id = await ask(store, f"Is the car park open? ({key})", key=key, asker_id="jo@council.example",
                            email="jo@council.example", source="mail")
    await _set(store, question_id, status=status)
    return question_id


@pytest.mark.parametrize("status", ["forwarded", "claimed", "answered"])
async def test_the_forward_mail_goes_while_the_question_is_with_the_moderators_or_answered(
    store: Store, tmp_path: Path, status: str
) -> None:
    question_id = await _question_in(store, status, "a")
    await forward(_deps(store, tmp_path / "mail"), ForwardMail(question_id))
    assert len(list((tmp_path / "mail").glob("*.eml"))) == 1
    async with store.unit() as unit:
        question = await unit.questions.get(question_id)
    assert question is not None and question.forward_message_id


@pytest.mark.parametrize("status", ["dismissed", "merged", "received", "answered_faq"])
async def test_no_forward_mail_for_a_question_dismissed_or_merged_before_it_went(
    store: Store, tmp_path: Path, status: str
) -> None:
    question_id = await _question_in(store, status, "b")
    await forward(_deps(store, tmp_path / "mail"), ForwardMail(question_id))
    assert list((tmp_path / "mail").glob("*.eml")) == []


async def test_a_state_this_version_does_not_know_is_an_error_naming_it(store: Store) -> None:
    question_id = await _question_in(store, "withdrawn", "c")
    async with store.unit() as unit:
        with pytest.raises(ValueError, match="unknown question state 'withdrawn'"):
            await unit.questions.get(question_id)
    async with store.unit() as unit:
        event_id, _ = await unit.events.open("Town hall", description=None, ends_at=None, by="host")
    await _set(store, question_id, event_id=event_id)
    async with store.unit() as unit:  # the board and report count by state: never a silent miscount
        with pytest.raises(ValueError, match="unknown question state 'withdrawn'"):
            await unit.events.tallies(event_id)
