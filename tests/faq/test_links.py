"""`cli.py faq link`: a moderator says which FAQ entry answers a question; the bot learns it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from cli import cli
from domain.cards import FaqFeedback
from domain.jobs import Triage
from domain.states import QuestionStatus
from faq.commands import export_yaml
from faq.live import live_matcher_for_file
from faq.store import load_faq, parse_faq
from handlers import feedback, triage
from handlers.asking import Asker, Said
from store.schema import faq_phrasings, outbox
from store.store import Store
from tests.faq.conftest import BUNDLED_FAQ
from tests.faq.test_learning import ask, make_deps, status_of

# Forwarded by today's bundled FAQ; once the first is linked, the second is answered.
LINKED = "my laptop screen is cracked, who fixes it"
PARAPHRASE = "the display on my work laptop is broken, who repairs it"
ENTRY = "it-equipment"


def link(database_url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli, ["faq", "link", *args, "--faq", str(BUNDLED_FAQ), "--database-url", database_url]
    )
    return result.exit_code, result.output


def cli_match(database_url: str, text: str) -> str | None:
    """`faq match --database-url`'s decision on one question: the entry id, or None."""
    result = CliRunner().invoke(
        cli, ["faq", "match", "--faq", str(BUNDLED_FAQ), "--database-url", database_url],
        input=text + "\n", env={"FAQ_THRESHOLD": None, "FAQ_MIN_PRECISION": None},
    )
    assert result.exit_code == 0, result.output
    entry_id: str | None = json.loads(result.output)["entry_id"]
    return entry_id


async def forwarded(store: Store, text: str, key: str) -> int:
    question_id = await ask(store, text, key)
    async with store.unit() as unit:
        await unit.questions.move(question_id, to=QuestionStatus.FORWARDED,
                                  only_from=[QuestionStatus.RECEIVED])
    return question_id


async def sent_to_asker(store: Store, text: str) -> int:
    """Outbox jobs whose message carries `text` (the replies queued to the asker)."""
    async with store.engine.connect() as conn:
        payloads = (await conn.execute(select(outbox.c.payload))).scalars().all()
    return sum(json.loads(payload).get("message", {}).get("answer") == text for payload in payloads)


async def linked_rows(store: Store) -> int:
    async with store.engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(faq_phrasings))).scalar_one()


async def test_link_answers_the_waiting_asker_once_and_teaches_the_matcher(
    store: Store, database_url: str
) -> None:
    answer = load_faq(BUNDLED_FAQ).get(ENTRY).answer  # type: ignore[union-attr]
    matcher = live_matcher_for_file(BUNDLED_FAQ, threshold=None, min_precision=0.97)
    await matcher.reload(store)
    assert matcher.match(PARAPHRASE).entry is None  # today: forwarded
    question_id = await forwarded(store, LINKED, "linked")

    code, output = await asyncio.to_thread(link, database_url, f"Q-{question_id}", ENTRY)
    assert code == 0, output
    assert f"Q-{question_id} is now a phrasing of {ENTRY}" in output
    assert (await status_of(store, question_id))[0] is QuestionStatus.ANSWERED
    async with store.unit() as unit:
        linked = await unit.questions.get(question_id)
    assert linked is not None and linked.topic == "IT"  # the entry's topic, for the digest
    assert await sent_to_asker(store, answer) == 1

    code, output = await asyncio.to_thread(link, database_url, f"Q-{question_id}", ENTRY)
    assert code == 0 and "nothing changed" in output
    assert await sent_to_asker(store, answer) == 1  # not twice

    assert await matcher.reload(store)
    match = matcher.match(PARAPHRASE)
    assert match.entry is not None and match.entry.id == ENTRY

    assert await asyncio.to_thread(cli_match, database_url, PARAPHRASE) == ENTRY  # as the bot

    exported = parse_faq(await export_yaml(BUNDLED_FAQ, store), "export").get(ENTRY)
    assert exported is not None and exported.alternates[-1] == LINKED  # for the file's editor


@pytest.mark.parametrize("case", ["private", "unknown question", "unknown entry", "not a reference"])
async def test_link_refuses_and_changes_nothing(store: Store, database_url: str, case: str) -> None:
    question_id = await forwarded(store, LINKED, "q")
    if case == "private":
        async with store.unit() as unit:
            await unit.questions.set_fields(question_id, private=True)
    ref, entry = {
        "private": (f"Q-{question_id}", ENTRY),
        "unknown question": (f"Q-{question_id + 1}", ENTRY),
        "unknown entry": (f"Q-{question_id}", "no-such-entry"),
        "not a reference": ("E-1", ENTRY),
    }[case]
    code, output = await asyncio.to_thread(link, database_url, ref, entry)
    assert code == 2, output
    assert "Error:" in output
    assert await linked_rows(store) == 0
    assert (await status_of(store, question_id))[0] is QuestionStatus.FORWARDED


async def test_no_on_an_faq_answer_stops_that_answer_to_that_question(
    store: Store, database_url: str, tmp_path: Path
) -> None:
    matcher = live_matcher_for_file(BUNDLED_FAQ, threshold=None, min_precision=0.97)
    await matcher.reload(store)
    deps = make_deps(store, matcher, tmp_path)
    text = "when do we get paid this month"
    question_id = await ask(store, text, "pay")
    await triage.triage(deps, [Triage(question_id)])
    status, entry_id = await status_of(store, question_id)
    assert status is QuestionStatus.ANSWERED_FAQ and entry_id is not None

    asker = Asker(id="29:asker", aad_id=None, name="Asker", email=None)
    said = Said(delivery_key="no", source="teams", text="", asker=asker, conversation_id="conv",
                conversation_type="personal", address={"conversation": {"id": "conv"}}, reply_to_id=None,
                place="a personal chat with the bot")
    await feedback.faq_feedback(deps, said, FaqFeedback(question_id, helpful=False))

    assert await matcher.reload(store)
    assert matcher.match(text).entry is None  # the same question is forwarded from now on
    assert await asyncio.to_thread(cli_match, database_url, text) is None  # as the bot
    own_question = load_faq(BUNDLED_FAQ).get(entry_id).question  # type: ignore[union-attr]
    again = matcher.match(own_question)
    assert again.entry is not None and again.entry.id == entry_id  # other questions still answered
