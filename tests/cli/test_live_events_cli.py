"""`cli.py roles` and `cli.py events`, as an organiser uses them against the bot's database."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli import cli
from domain.states import QuestionStatus
from handlers.answering import Answerer, record_answer
from handlers.hosting import open_event
from store.db import create_engine
from store.migrate import upgrade
from store.records import NewQuestion
from store.store import Store

ROOT = Path(__file__).resolve().parents[2]
OBJECT_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"
FORMULA = '=HYPERLINK("http://evil.example","click me")'
TABLES = ("events", "roles", "audit_log", "outbox", "questions", "answers")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A migrated SQLite database, as `cli.py db upgrade` leaves it."""
    path = tmp_path / "bot.db"
    upgrade(f"sqlite:///{path}")
    return path


def run(db: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--database-url", f"sqlite:///{db}"], catch_exceptions=False)


def rows(db: Path, table: str) -> list[dict[str, Any]]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute(f"SELECT * FROM {table} ORDER BY 1")]


def snapshot(db: Path) -> dict[str, list[dict[str, Any]]]:
    return {table: rows(db, table) for table in TABLES}


def test_an_admin_grants_lists_and_revokes_roles_and_each_change_is_audited(db: Path) -> None:
    assert run(db, "roles", "grant", "host", "Hana.Host@Council.example").stdout == (
        "hana.host@council.example now has the host role.\n")
    assert run(db, "roles", "grant", "moderator", OBJECT_ID).exit_code == 0
    again = run(db, "roles", "grant", "host", "hana.host@council.example")
    assert again.exit_code == 0 and "Nothing to change" in again.stdout

    listed = run(db, "roles", "list").stdout.splitlines()
    assert [line.split()[:2] for line in listed] == [["host", "hana.host@council.example"], ["moderator", OBJECT_ID]]
    assert all("(granted by cli)" in line for line in listed)

    assert run(db, "roles", "revoke", "host", "hana.host@council.example").stdout == (
        "hana.host@council.example no longer has the host role.\n")
    assert [line.split()[:2] for line in run(db, "roles", "list").stdout.splitlines()] == [["moderator", OBJECT_ID]]
    audit = [(r["actor"], r["action"], r["target"], r["detail"]) for r in rows(db, "audit_log")]
    assert audit == [
        ("cli", "role.grant", "hana.host@council.example", "host"),
        ("cli", "role.grant", OBJECT_ID, "moderator"),
        ("cli", "role.revoke", "hana.host@council.example", "host"),
    ]


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("roles", "grant", "admin", "ada@council.example"), "'admin' is not a role that can be granted"),
        (("roles", "revoke", "owner", "ada@council.example"), "'owner' is not a role that can be granted"),
        (("roles", "grant", "host", "hana"), "'hana' is neither an email address nor an Entra object id"),
        (("events", "close", "9"), "There is no event E-9"),
        (("events", "close", "Q-1"), "'Q-1' is not an event reference"),
        (("events", "open", "Briefing", "--ends-at", "tomorrow at ten"), "is not an ISO 8601 date and time"),
        (("events", "open", "Briefing", "--ends-at", "2001-01-01T10:00"), "is in the past"),
        (("events", "open", "   "), "An event needs a title"),
        (("events", "open", "x" * 201), "the limit is 200"),
        (("events", "publish", "E-9"), "There is no event E-9"),
        (("events", "export", "E-9", "--format", "jsonl"), "There is no event E-9"),
    ],
)
def test_bad_arguments_are_refused_on_stderr_with_exit_2_and_change_nothing(
    db: Path, args: tuple[str, ...], said: str
) -> None:
    asyncio.run(_seed(db))
    before = snapshot(db)
    result = run(db, *args)
    assert result.exit_code == 2
    assert said in result.stderr and result.stdout == ""
    assert snapshot(db) == before


def test_a_host_opens_lists_and_closes_an_event(db: Path) -> None:
    opened = run(db, "events", "open", "All-staff briefing", "--description", "Led by the chief executive.",
                 "--ends-at", "2999-01-14T15:00")
    assert opened.stdout == "opened E-1\n"
    [event] = rows(db, "events")
    assert (event["title"], event["description"], event["status"]) == (
        "All-staff briefing", "Led by the chief executive.", "open")
    assert event["ends_at"].startswith("2999-01-14 15:00")  # January: UK time is UTC

    [line] = run(db, "events", "list").stdout.splitlines()
    assert line.startswith("E-1") and " open " in line and line.endswith("0 asked  All-staff briefing")
    assert run(db, "events", "close", "E-1").stdout == "closed E-1\n"
    twice = run(db, "events", "close", "1")
    assert twice.exit_code == 0 and twice.stdout == "E-1 was already closed\n"
    assert " closed " in run(db, "events", "list").stdout
    assert [(r["actor"], r["action"], r["target"]) for r in rows(db, "audit_log")] == [
        ("cli", "event.open", "E-1"), ("cli", "event.close", "E-1")]


def test_the_digest_shows_answered_questions_once_and_names_nobody_who_asked_anonymously(db: Path) -> None:
    asyncio.run(_seed(db))
    result = run(db, "events", "publish", "E-1", "--format", "md")
    assert result.exit_code == 0, result.stderr
    digest = result.stdout
    assert digest.startswith("# Questions from All-staff briefing\n")
    assert "*Asked by A colleague (Q-1, also asked as Q-3). 2 colleagues also asked this*" in digest
    assert "Sam" not in digest  # DIGEST_NAMES is off by default: nobody is named
    assert "\n\nYes, from 3 March.\n\n*Answered by Mo One*" in digest
    assert "<script>" not in digest and "&lt;script&gt;" in digest  # shown as typed, never run
    assert "Asked by A colleague (Q-2)" in digest and "Priya" not in digest
    assert "Dee" not in digest and digest.count("car park") == 1  # the duplicate is shown once
    assert "HYPERLINK" not in digest  # dismissed
    assert "private" not in digest.lower() and "Pat" not in digest  # a private question
    assert "payday" not in digest  # answered from the FAQ, which is published already
    assert "Elsewhere" not in digest  # another event's question
    assert [(r["actor"], r["action"], r["target"], r["detail"]) for r in rows(db, "audit_log")][-1] == (
        "cli", "event.publish", "E-1", "md")


def test_with_digest_names_the_digest_names_who_asked_openly_and_nobody_else(db: Path) -> None:
    asyncio.run(_seed(db))
    result = CliRunner().invoke(cli, ["events", "publish", "E-1", "--database-url", f"sqlite:///{db}"],
                                env={"DIGEST_NAMES": "true"}, catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert "*Asked by Sam Staff (Q-1, also asked as Q-3). 2 colleagues also asked this*" in result.stdout
    assert "Asked by A colleague (Q-2)" in result.stdout and "Priya" not in result.stdout
    assert "Pat" not in result.stdout  # a private question


def test_the_html_digest_goes_to_a_file_with_colleagues_markup_made_harmless(db: Path, tmp_path: Path) -> None:
    asyncio.run(_seed(db))
    out = tmp_path / "digest.html"
    result = run(db, "events", "publish", "1", "--format", "html", "--names", "--output", str(out))
    assert result.exit_code == 0 and result.stdout == f"wrote the digest to {out}\n"
    html = out.read_text(encoding="utf-8")
    assert html.startswith('<article class="qa-digest">')
    assert "Sam Staff" in html and "Priya" not in html
    assert "<script" not in html and "&lt;script&gt;" in html  # typed by the colleague, shown as text


def test_the_export_has_every_question_for_organisers_with_askers_only_when_named(db: Path) -> None:
    asyncio.run(_seed(db))
    lines = run(db, "events", "export", "E-1", "--format", "jsonl").stdout.splitlines()
    exported = [json.loads(line) for line in lines]
    by_ref = {row["ref"]: row for row in exported}
    assert list(by_ref) == ["Q-1", "Q-2", "Q-3", "Q-4", "Q-6"]  # Q-5 is private, Q-7 another event's
    assert by_ref["Q-1"] | {"asked_at": None} == {
        "ref": "Q-1",
        "asked_at": None,
        "status": "answered",
        "asker": "Sam Staff",
        "support": 2,
        "text": "Will the car park reopen after the works? <script>alert(1)</script>",
        "answer": "Yes, from 3 March.",
        "merged_into": "",
        "faq_entry": "",
    }
    assert (by_ref["Q-2"]["asker"], by_ref["Q-2"]["answer"]) == ("", "No changes are planned for your team.")
    assert (by_ref["Q-3"]["status"], by_ref["Q-3"]["merged_into"], by_ref["Q-3"]["answer"]) == (
        "merged",
        "Q-1",
        "Yes, from 3 March.",
    )
    assert (by_ref["Q-4"]["status"], by_ref["Q-4"]["text"], by_ref["Q-4"]["answer"]) == ("dismissed", FORMULA, "")
    assert (by_ref["Q-6"]["status"], by_ref["Q-6"]["faq_entry"]) == ("answered_faq", "pay-date")

    table = list(csv.DictReader(io.StringIO(run(db, "events", "export", "1").stdout)))
    assert [row["ref"] for row in table] == list(by_ref)
    assert table[3]["text"] == "'" + FORMULA  # a spreadsheet shows it instead of running it
    assert table[0]["asker"] == "Sam Staff" and table[1]["asker"] == ""
    assert [r["action"] for r in rows(db, "audit_log")][-2:] == ["event.export", "event.export"]


def test_as_a_process_bad_input_is_exit_2_on_stderr(db: Path) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db}"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "events", "publish", "E-4"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "Error: There is no event E-4 (see the list of events).\n"


async def _seed(db: Path) -> None:
    """Event E-1 as a moderator left it: answered, anonymous, merged, dismissed, private, FAQ."""
    engine = create_engine(f"sqlite:///{db}")
    store = Store(engine)
    try:
        event_id = await open_event(store, "All-staff briefing", by="Hana Host")
        await _question(
            store,
            event_id,
            "Sam Staff",
            "Will the car park reopen after the works? <script>alert(1)</script>",
            answer="Yes, from 3 March.",
            supporters=2,
        )
        await _question(
            store,
            event_id,
            "Priya Private",
            "Is my team affected by the restructure?",
            anonymous=True,
            answer="No changes are planned for your team.",
        )
        await _question(store, event_id, "Dee Duplicate", "When does the car park open again?", merged_into=1)
        await _question(store, event_id, "Tom Tables", FORMULA, dismissed="Not about the briefing.")
        await _question(
            store,
            event_id,
            "Pat Person",
            "A private matter about my own pay",
            private=True,
            answer="We will write to you.",
        )
        await _question(store, event_id, "Fay Faq", "When is payday?", faq="pay-date")
        await _question(store, None, "Else Where", "Elsewhere: a question outside the event", answer="Noted.")
    finally:
        await engine.dispose()


async def _question(
    store: Store,
    event_id: int | None,
    asker: str,
    text: str,
    *,
    answer: str | None = None,
    anonymous: bool = False,
    private: bool = False,
    supporters: int = 0,
    merged_into: int | None = None,
    dismissed: str | None = None,
    faq: str | None = None,
) -> None:
    async with store.unit() as unit:
        key = f"teams:seed:{text}"
        question_id = await unit.questions.add(
            NewQuestion(
                dedupe_key=key,
                source="teams",
                text=text,
                asker_id=f"29:{asker}",
                asker_aad_id=None,
                asker_name=asker,
                asker_email=None,
                conversation_id="a:seed",
                conversation_type="personal",
                address={"conversation": {"id": "a:seed"}},
                reply_to_id=None,
                event_id=event_id,
                anonymous=anonymous,
            )
        )
        assert question_id is not None
        if private:
            await unit.questions.set_fields(question_id, private=True)
        for n in range(supporters):
            await unit.support.add(question_id, f"supporter-{n}")
        if faq:
            await unit.questions.move(
                question_id, to=QuestionStatus.ANSWERED_FAQ, only_from=[QuestionStatus.RECEIVED], faq_entry_id=faq
            )
            return
        await unit.questions.move(question_id, to=QuestionStatus.FORWARDED, only_from=[QuestionStatus.RECEIVED])
        if merged_into:
            await unit.questions.move(
                question_id,
                to=QuestionStatus.MERGED,
                only_from=[QuestionStatus.FORWARDED],
                merged_into=merged_into,
                acted_by="Mo One",
            )
        if dismissed:
            await unit.questions.move(
                question_id,
                to=QuestionStatus.DISMISSED,
                only_from=[QuestionStatus.FORWARDED],
                dismissed_reason=dismissed,
                acted_by="Mo One",
            )
        if answer:
            question = await unit.questions.get(question_id)
            assert question is not None
            assert await record_answer(
                unit,
                question,
                text=answer,
                by=Answerer(id="mo@council.example", name="Mo One"),
                via="teams",
                source_key=f"seed:{question_id}",
                follow_ups=False,
            )


def test_a_database_that_was_never_migrated_is_named_with_what_to_do(tmp_path: Path) -> None:
    result = run(tmp_path / "empty.db", "events", "list")
    assert result.exit_code == 1 and result.stdout == ""
    assert "cannot use the database" in result.stderr and "cli.py db upgrade" in result.stderr
