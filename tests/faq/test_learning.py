"""Learning from use: moderators' FAQ entries change answers at once; `faq suggest` and
`faq export` read what colleagues and moderators did."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli import cli
from domain.cards import Moderate
from domain.jobs import FaqRebuild, Triage
from domain.states import QuestionStatus
from faq.commands import export_yaml, suggest_report
from faq.live import live_matcher_for_file
from faq.store import parse_faq
from handlers import moderation, triage
from handlers.asking import Asker, Said
from handlers.deps import Deps, Limits
from handlers.roles import Actor
from mail.eml import EmlOutbox
from store.records import NewQuestion
from store.store import Store
from tests.faq.conftest import BUNDLED_FAQ

SMALL_FAQ = """entries:
  - id: staff-parking
    question: How do I get a staff parking permit?
    alternates: ["Where can staff park at County Hall?"]
    answer: Apply on the Facilities page.
  - id: password-reset
    question: How do I reset my password?
    alternates: ["I have forgotten my password."]
    answer: Use the self-service reset link.
  - id: pay-date
    question: When is payday?
    alternates: ["What date do we get paid each month?"]
    answer: The 15th of each month.
"""
DOG_ANSWER = "Only assistance dogs may come into council offices; ask Facilities about others."
MODERATOR = Actor(id="29:mo", aad_id=None, name="Mo Moderator", email="mo@example.org")


def make_deps(store: Store, matcher: Any, tmp_path: Path) -> Deps:
    return Deps(
        store=store,
        faq=matcher,
        mail=EmlOutbox(tmp_path / "outbox", "bot@example.org"),
        limits=Limits(2000, "questions@example.org"),
        log=logging.getLogger("test"),
        clock=store.clock,
        admins=frozenset({"mo@example.org"}),
    )


async def ask(store: Store, text: str, key: str) -> int:
    async with store.unit() as unit:
        question_id = await unit.questions.add(
            NewQuestion(
                dedupe_key=f"test:{key}",
                source="teams",
                text=text,
                asker_id="29:asker",
                asker_aad_id=None,
                asker_name="Asker",
                asker_email=None,
                conversation_id="conv",
                conversation_type="personal",
                address={"conversation": {"id": "conv"}},
                reply_to_id=None,
            )
        )
    assert question_id is not None
    return question_id


def said(key: str) -> Said:
    return Said(
        delivery_key=key,
        source="teams",
        text="",
        asker=Asker(id=MODERATOR.id, aad_id=None, name=MODERATOR.name, email=MODERATOR.email),
        conversation_id="moderators",
        conversation_type="channel",
        address={"conversation": {"id": "moderators"}},
        reply_to_id=None,
        place="the channel “Moderators”",
    )


async def status_of(store: Store, question_id: int) -> tuple[QuestionStatus, str | None]:
    async with store.unit() as unit:
        question = await unit.questions.get(question_id)
    assert question is not None
    return question.status, question.faq_entry_id


async def moderate(deps: Deps, key: str, **value: Any) -> None:
    await moderation.act(deps, said(key), MODERATOR, Moderate.from_data(value))


async def test_moderator_adds_answered_question_to_faq_and_bot_answers_it_at_once(
    store: Store, tmp_path: Path
) -> None:
    faq_path = BUNDLED_FAQ  # calibrated on its labelled questions, as the bot runs
    matcher = live_matcher_for_file(faq_path, threshold=None, min_precision=0.97)
    deps = make_deps(store, matcher, tmp_path)

    first = await ask(store, "can I bring my dog to the office", "1")
    await triage.triage(deps, [Triage(first)])
    assert (await status_of(store, first))[0] is QuestionStatus.FORWARDED
    async with store.unit() as unit:  # no entry is near enough to give it a topic: say it had one
        await unit.questions.set_fields(first, topic="Buildings")

    await moderate(deps, "a1", op="answer", question_id=first, answer=DOG_ANSWER)
    await moderate(
        deps,
        "a2",
        op="faq",
        question_id=first,
        faq_question="Can I bring my dog to the office?",
        faq_answer=DOG_ANSWER,
    )
    assert matcher.match("are dogs allowed in the office").entry is None  # the click did not wait
    await moderation.rebuild_faq(deps, FaqRebuild(first))  # the job queued with it

    second = await ask(store, "are dogs allowed in the office", "2")
    await triage.triage(deps, [Triage(second)])
    status, entry_id = await status_of(store, second)
    assert status is QuestionStatus.ANSWERED_FAQ
    assert entry_id is not None and entry_id.startswith("can-i-bring-my-dog")
    async with store.unit() as unit:
        answered = await unit.questions.get(second)
    assert answered is not None and answered.topic == "Buildings"  # the new entry's, from its question
    # a near miss is still forwarded, and the file's entries still answer
    assert matcher.match("can I bring my child to the office").entry is None
    payday = matcher.match("what day do we get paid")
    assert payday.entry is not None and payday.entry.id == "pay-date"

    # a restarted bot (a new matcher) answers from the database's entry too
    restarted = live_matcher_for_file(faq_path, threshold=None, min_precision=0.97)
    assert restarted.match("are dogs allowed in the office").entry is None
    await restarted.reload(store)
    dog = restarted.match("are dogs allowed in the office")
    assert dog.entry is not None and dog.entry.answer == DOG_ANSWER

    # the export is one FAQ file in the bundled format, with the new entry last
    exported = parse_faq(await export_yaml(faq_path, store), "export")
    bundled = parse_faq(BUNDLED_FAQ.read_text(encoding="utf-8"), "bundled")
    assert exported.entries[:-1] == bundled.entries
    assert exported.entries[-1].id == entry_id
    assert exported.entries[-1].question == "Can I bring my dog to the office?"
    assert exported.entries[-1].topic == "Buildings"


async def test_only_answered_questions_become_faq_entries_and_only_once(
    store: Store, tmp_path: Path
) -> None:
    faq_path = tmp_path / "faq.yaml"
    faq_path.write_text(SMALL_FAQ, encoding="utf-8")
    matcher = live_matcher_for_file(faq_path, threshold=None, min_precision=0.97)
    deps = make_deps(store, matcher, tmp_path)
    question = await ask(store, "can I bring my dog to the office", "1")
    await triage.triage(deps, [Triage(question)])

    await moderate(deps, "f1", op="faq", question_id=question)  # not answered yet
    async with store.unit() as unit:
        assert await unit.faq.entries() == []

    await moderate(deps, "a1", op="answer", question_id=question, answer=DOG_ANSWER)
    await moderate(deps, "f2", op="faq", question_id=question)  # the card's defaults
    await moderate(deps, "f3", op="faq", question_id=question)  # a second click
    async with store.unit() as unit:
        entries = await unit.faq.entries()
    assert [(e.question, e.answer) for e in entries] == [
        ("can I bring my dog to the office", DOG_ANSWER)
    ]


async def test_question_the_faq_already_answers_is_not_added_twice(
    store: Store, tmp_path: Path
) -> None:
    faq_path = tmp_path / "faq.yaml"
    faq_path.write_text(SMALL_FAQ, encoding="utf-8")
    matcher = live_matcher_for_file(faq_path, threshold=None, min_precision=0.97)
    deps = make_deps(store, matcher, tmp_path)
    question = await ask(store, "when does the money land in my account", "1")
    await triage.triage(deps, [Triage(question)])
    await moderate(deps, "a1", op="answer", question_id=question, answer="On the 15th.")
    await moderate(deps, "f1", op="faq", question_id=question, faq_question="When is pay day?")
    async with store.unit() as unit:
        assert await unit.faq.entries() == []
        notices = [job.payload for job in await unit.outbox.claim(limit=100, lease_seconds=60)]
    assert any("already answers that with pay-date" in str(n) for n in notices)


async def answered_by_moderator(store: Store, text: str, key: str, answer: str) -> int:
    question_id = await ask(store, text, key)
    async with store.unit() as unit:
        await unit.questions.move(
            question_id, to=QuestionStatus.FORWARDED, only_from=[QuestionStatus.RECEIVED]
        )
        await unit.answers.add(
            question_id, text=answer, author="mo@example.org", author_name="Mo", via="mail",
            source_key=f"mail:{key}",
        )
        await unit.questions.move(
            question_id, to=QuestionStatus.ANSWERED, only_from=[QuestionStatus.FORWARDED]
        )
    return question_id


async def test_suggest_lists_missed_phrasings_and_new_entries_from_use(store: Store) -> None:
    bundled = parse_faq(BUNDLED_FAQ.read_text(encoding="utf-8"), "bundled")
    payslip = bundled.get("payslip-access")
    assert payslip is not None
    # a moderator answered with the payslip entry's answer: the FAQ missed this phrasing
    missed = await answered_by_moderator(
        store, "where can I see what I was paid and what was deducted", "m1", payslip.answer
    )
    # the same unanswered topic, asked twice: a new entry is needed
    dog = await answered_by_moderator(store, "can I bring my dog to the office", "d1", DOG_ANSWER)
    dogs = await ask(store, "is my dog welcome at work", "d2")
    # an FAQ answer the asker rejected
    rejected = await ask(store, "when do we get paid for overtime", "r1")
    async with store.unit() as unit:
        await unit.questions.move(
            dogs, to=QuestionStatus.FORWARDED, only_from=[QuestionStatus.RECEIVED]
        )
        await unit.questions.move(
            rejected, to=QuestionStatus.ANSWERED_FAQ, only_from=[QuestionStatus.RECEIVED],
            faq_entry_id="pay-date",
        )
        await unit.questions.add_feedback(rejected, "pay-date", helpful=False)

    report = await suggest_report(BUNDLED_FAQ, store)

    alternates, _, rest = report.partition("New entries")
    assert "payslip-access" in alternates
    assert f"+ where can I see what I was paid and what was deducted    [Q-{missed}" in alternates
    new_entries, _, rejections = rest.partition("did not help")
    assert "asked 2 times" in new_entries
    assert f"Q-{dog}: can I bring my dog to the office" in new_entries
    assert f"Q-{dogs}: is my dog welcome at work" in new_entries
    assert f"answer given: {DOG_ANSWER}" in new_entries
    assert "pay-date: 1" in rejections


@pytest.mark.parametrize("command", ["suggest", "export"])
def test_faq_suggest_and_export_read_database_url(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "bot.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{database}")
    runner = CliRunner()
    assert runner.invoke(cli, ["db", "upgrade"]).exit_code == 0
    result = runner.invoke(cli, ["faq", command, "--faq", str(BUNDLED_FAQ)])
    assert result.exit_code == 0, result.output
    if command == "suggest":
        assert "Alternates to add to existing entries (0)" in result.output
        assert "New entries suggested by forwarded questions (0)" in result.output
    else:
        exported = parse_faq(result.output, "export")
        assert exported.entries == parse_faq(BUNDLED_FAQ.read_text(encoding="utf-8"), "b").entries


async def test_exported_faq_used_as_the_file_does_not_duplicate_database_entries(
    store: Store, tmp_path: Path
) -> None:
    async with store.unit() as unit:
        await unit.faq.add_entry(
            "dogs-at-work", question="Can I bring my dog to the office?", answer=DOG_ANSWER,
            question_id=None, created_by="Mo",
        )
    faq_path = tmp_path / "faq.yaml"
    faq_path.write_text(SMALL_FAQ, encoding="utf-8")
    exported = tmp_path / "exported.yaml"
    exported.write_text(await export_yaml(faq_path, store), encoding="utf-8")

    matcher = live_matcher_for_file(exported, threshold=None, min_precision=0.97)
    await matcher.reload(store)
    assert [e.id for e in matcher.faq.entries].count("dogs-at-work") == 1
    dog = matcher.match("are dogs allowed in the office")
    assert dog.entry is not None and dog.entry.id == "dogs-at-work"


async def test_faq_match_with_database_url_decides_as_the_running_bot(
    store: Store, database_url: str, tmp_path: Path
) -> None:
    """The CLI's answers equal the bot's triage decisions, moderators' entries included."""
    async with store.unit() as unit:
        await unit.faq.add_entry(
            "dogs-at-work", question="Can I bring my dog to the office?", answer=DOG_ANSWER,
            question_id=None, created_by="Mo",
        )
    matcher = live_matcher_for_file(BUNDLED_FAQ, threshold=None, min_precision=0.97)
    await matcher.reload(store)  # what app.py does at start
    deps = make_deps(store, matcher, tmp_path)
    questions = [
        "are dogs allowed in the office",
        "what day do we get paid",
        "how do I join the teachers' pension scheme",
        "I've forgotten my password and I'm locked out",
        "what is the recipe for the canteen lasagne",
    ]
    bot = []
    for number, text in enumerate(questions):
        question_id = await ask(store, text, f"q{number}")
        await triage.triage(deps, [Triage(question_id)])
        status, entry_id = await status_of(store, question_id)
        bot.append(entry_id if status is QuestionStatus.ANSWERED_FAQ else None)
    assert bot[0] == "dogs-at-work" and bot[2] is None  # the database's entry is in use

    result = await asyncio.to_thread(
        CliRunner().invoke,
        cli,
        ["faq", "match", "--faq", str(BUNDLED_FAQ), "--database-url", database_url],
        input="\n".join(questions) + "\n",
        env={"FAQ_THRESHOLD": None, "FAQ_MIN_PRECISION": None},
    )
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["entry_id"] for line in result.output.splitlines()] == bot
