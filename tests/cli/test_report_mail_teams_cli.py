"""`cli.py events report`, the figures in the published digest, `cli.py mail receive` refusing
what is no mail, and `cli.py teams package`, as an operator sees them."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import sqlite3
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

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
from teams_package import png_size

APP_ID = "3f2b8c1e-6d4a-4b7e-9a21-5c0d8e7f6a13"
START = datetime(2025, 1, 14, 10, 0, tzinfo=UTC)  # January: UK time is UTC


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "bot.db"
    upgrade(f"sqlite:///{path}")
    return path


def run(db: Path, *args: str, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(cli, [*args, "--database-url", f"sqlite:///{db}"], env=env, catch_exceptions=False)


def count(db: Path, table: str) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


# --- the event in figures ------------------------------------------------------------------


def test_the_report_gives_a_host_the_events_figures(db: Path) -> None:
    asyncio.run(_seed(db))
    result = run(db, "events", "report", "E-1", "--format", "text")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "E-1: All-staff briefing"
    for line in (
        "Questions asked: 7",
        "Answered from the FAQ: 1",
        "Answered by moderators: 4",  # the merged duplicate was answered with its original
        "Dismissed: 1",
        "Still waiting: 1",
        "Median time for a moderator to answer: 7 min",  # 3 min 5 s, 4, 10 and 20 min
        "  10:00 \u2014 4 questions",
        "  10:01 \u2014 2 questions",
        "  10:02 \u2014 1 question",
        "Questions by topic:",
        "  Pay \u2014 2 questions",
        "  Buildings \u2014 1 question",
        "  Other questions \u2014 4 questions",  # the private one's topic is not shown
    ):
        assert line in lines, (line, result.stdout)
    assert "Wellbeing" not in result.stdout  # a private question's topic is not shown
    assert "Elsewhere" not in result.stdout

    markdown = run(db, "events", "report", "1").stdout
    assert markdown.startswith("# E-1: All-staff briefing\n") and "- **Questions asked:** 7" in markdown


def test_the_html_report_has_the_figures_and_a_chart_without_script(db: Path, tmp_path: Path) -> None:
    asyncio.run(_seed(db))
    out = tmp_path / "report.html"
    result = run(db, "events", "report", "E-1", "--format", "html", "--output", str(out))
    assert result.exit_code == 0 and result.stdout == f"wrote the report to {out}\n"
    html = out.read_text(encoding="utf-8")
    assert "<strong>Answered by moderators:</strong> 4" in html
    [src] = re.findall(r'<img src="data:image/svg\+xml;base64,([^"]+)"', html)
    svg = base64.b64decode(src).decode()
    assert svg.startswith("<svg") and "Questions per minute: All-staff briefing" in svg
    assert "<script" not in svg and "<script" not in html
    assert [(r[0], r[1]) for r in _audit(db)][-1] == ("event.report", "E-1")


def test_the_published_digest_ends_with_the_figures_and_in_html_the_chart(db: Path) -> None:
    asyncio.run(_seed(db))
    digest = run(db, "events", "publish", "E-1").stdout
    figures = digest[digest.index("## The event in figures"):]
    assert "- **Questions asked:** 7" in figures and "- **Median time for a moderator to answer:** 7 min" in figures
    assert "Wellbeing" not in digest and "my own pay" not in digest
    html = run(db, "events", "publish", "E-1", "--format", "html").stdout
    assert "<strong>Dismissed:</strong> 1" in html and 'src="data:image/svg+xml;base64,' in html


def test_a_report_for_an_unknown_event_is_exit_2(db: Path) -> None:
    result = run(db, "events", "report", "E-9")
    assert (result.exit_code, result.stdout) == (2, "")
    assert "There is no event E-9" in result.stderr


# --- mail receive: what is not a mail ---------------------------------------------------------


def test_a_file_that_is_no_mail_too_large_or_unreadable_is_refused_with_exit_2(db: Path, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("remember to buy milk\n")
    picture = tmp_path / "photo.eml"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    big = tmp_path / "big.eml"
    big.write_bytes(b"From: a@example.org\nSubject: big\n\n" + b"x" * (1024 * 1024))
    for path, said in (
        (notes, "is not a mail"),
        (picture, "is not a mail"),
        (big, "a mail file can be at most 1,048,576 (1 MiB)"),
        (tmp_path / "missing.eml", "cannot read"),
        (tmp_path, "is not a file"),
    ):
        result = run(db, "mail", "receive", str(path))
        assert (result.exit_code, result.stdout) == (2, ""), result.stderr
        assert said in result.stderr
    assert (count(db, "inbound_mail"), count(db, "questions"), count(db, "outbox")) == (0, 0, 0)


def test_a_colleagues_mail_becomes_a_question_recorded_once_for_the_bot_to_triage(db: Path, tmp_path: Path) -> None:
    mail = tmp_path / "question.eml"
    mail.write_bytes(b"X-MS-Exchange-Organization-AuthAs: Internal\n"  # as Exchange stamps a colleague's mail
                     b"X-MS-Exchange-Organization-AuthSource: AM9PR07MB7105.eurprd07.prod.outlook.com\n"
                     b"From: Jo Bloggs <jo.bloggs@example.org>\nTo: questions-bot@example.org\n"
                     b"Subject: Canteen\nMessage-ID: <q1@example.org>\n\nIs the canteen open on Saturdays?\n")
    env: dict[str, str | None] = {"STAFF_MAIL_DOMAINS": "example.org", "SHARED_MAILBOX": None}
    assert run(db, "mail", "receive", str(mail), env=env).stdout == "question Q-1\n"
    assert run(db, "mail", "receive", str(mail), env=env).stdout == (
        "already received <q1@example.org> (question Q-1); nothing changed\n")
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT kind, status FROM outbox").fetchall() == [("question.triage", "todo")]
        assert conn.execute("SELECT text, status FROM questions").fetchall() == [
            ("Is the canteen open on Saturdays?", "received")]


# --- teams package ----------------------------------------------------------------------------


def test_teams_package_builds_the_zip_with_the_app_id_from_the_environment(tmp_path: Path) -> None:
    out = tmp_path / "staff-questions.zip"
    result = CliRunner().invoke(cli, ["teams", "package", "--output", str(out)], env={"MicrosoftAppId": APP_ID})
    assert (result.exit_code, result.stdout) == (0, f"wrote the Teams app package to {out}\n")
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == ["color.png", "manifest.json", "outline.png"]
        manifest = json.loads(archive.read("manifest.json"))
        assert png_size(archive.read("color.png")) == (192, 192)
        assert png_size(archive.read("outline.png")) == (32, 32)
    assert manifest["id"] == APP_ID and manifest["bots"][0]["botId"] == APP_ID

    other = "0f8fad5b-d9cb-469f-a165-70867728950e"
    given = CliRunner().invoke(cli, ["teams", "package", "--app-id", other, "--output", str(tmp_path)],
                               env={"MicrosoftAppId": APP_ID})
    assert given.exit_code == 0
    with zipfile.ZipFile(tmp_path / "colleague-questions-bot-1.0.0.zip") as archive:
        assert json.loads(archive.read("manifest.json"))["id"] == other


def test_teams_package_takes_the_developer_from_the_settings(tmp_path: Path) -> None:
    env = {"MicrosoftAppId": APP_ID, "TEAMS_DEVELOPER_NAME": "Shire County Council",
           "TEAMS_WEBSITE_URL": "https://www.shire.example/", "TEAMS_PRIVACY_URL": "https://www.shire.example/privacy",
           "TEAMS_TERMS_URL": "https://www.shire.example/terms"}
    result = CliRunner().invoke(cli, ["teams", "package", "--output", str(tmp_path / "app.zip")], env=env)
    assert result.exit_code == 0, result.stderr
    with zipfile.ZipFile(tmp_path / "app.zip") as archive:
        assert json.loads(archive.read("manifest.json"))["developer"] == {
            "name": "Shire County Council", "websiteUrl": "https://www.shire.example/",
            "privacyUrl": "https://www.shire.example/privacy", "termsOfUseUrl": "https://www.shire.example/terms"}
    bad = CliRunner().invoke(cli, ["teams", "package", "--output", str(tmp_path / "bad.zip")],
                             env={**env, "TEAMS_PRIVACY_URL": "http://www.shire.example/privacy"})
    assert bad.exit_code == 2 and "TEAMS_PRIVACY_URL" in bad.stderr and not (tmp_path / "bad.zip").exists()


@pytest.mark.parametrize(("args", "said"), [
    ((), "set MicrosoftAppId"),
    (("--app-id", "not-a-guid"), "is not a GUID"),
    (("--app-id", APP_ID, "--version", "1.0"), "three whole numbers"),
])
def test_teams_package_without_a_usable_app_id_is_exit_2_and_writes_nothing(
    tmp_path: Path, args: tuple[str, ...], said: str
) -> None:
    out = tmp_path / "app.zip"
    result = CliRunner().invoke(cli, ["teams", "package", *args, "--output", str(out)], env={"MicrosoftAppId": None})
    assert (result.exit_code, result.stdout) == (2, "")
    assert said in result.stderr and not out.exists()


# --- seeding ----------------------------------------------------------------------------------


def _audit(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT action, target FROM audit_log ORDER BY id").fetchall()


async def _seed(db: Path) -> None:
    """E-1 with timings a host can check by hand (asked and answered at set seconds past 10:00)."""
    engine = create_engine(f"sqlite:///{db}")
    store = Store(engine)
    try:
        event = await open_event(store, "All-staff briefing", by="Hana Host")
        await _question(store, event, "Car park?", asked=10, answered=250, topic="Pay")  # 4 min
        await _question(store, event, "Pay award?", asked=40, answered=640, topic="pay")  # 10 min
        await _question(store, event, "Car park again?", asked=65, merged_into=1)  # 3 min 5 s
        await _question(store, event, "Choir?", asked=20, dismissed="Not about work.", topic="Buildings")
        await _question(store, event, "When is payday?", asked=90, faq="pay-date")
        await _question(store, event, "Still waiting?", asked=120)
        await _question(store, event, "A matter about my own pay", asked=50, answered=1250, topic="Wellbeing",
                        private=True)  # 20 min
        await _question(store, None, "Elsewhere", asked=30, answered=60, topic="Elsewhere")
    finally:
        await engine.dispose()


def _at(seconds: int) -> str:
    return (START + timedelta(seconds=seconds)).replace(tzinfo=None).isoformat(sep=" ")


async def _question(
    store: Store,
    event_id: int | None,
    text: str,
    *,
    asked: int,
    answered: int | None = None,
    topic: str | None = None,
    private: bool = False,
    merged_into: int | None = None,
    dismissed: str | None = None,
    faq: str | None = None,
) -> None:
    async with store.unit() as unit:
        question_id = await unit.questions.add(NewQuestion(
            dedupe_key=f"teams:seed:{text}", source="teams", text=text, asker_id="29:seed", asker_aad_id=None,
            asker_name="Sam Staff", asker_email=None, conversation_id="a:seed", conversation_type="personal",
            address={"conversation": {"id": "a:seed"}}, reply_to_id=None, event_id=event_id,
        ))
        assert question_id is not None
        await unit.questions.set_fields(question_id, topic=topic, private=private)
        if faq:
            await unit.questions.move(question_id, to=QuestionStatus.ANSWERED_FAQ,
                                      only_from=[QuestionStatus.RECEIVED], faq_entry_id=faq)
        else:
            await unit.questions.move(question_id, to=QuestionStatus.FORWARDED, only_from=[QuestionStatus.RECEIVED])
        if merged_into:
            await unit.questions.move(question_id, to=QuestionStatus.MERGED, only_from=[QuestionStatus.FORWARDED],
                                      merged_into=merged_into, acted_by="Mo One")
        if dismissed:
            await unit.questions.move(question_id, to=QuestionStatus.DISMISSED, only_from=[QuestionStatus.FORWARDED],
                                      dismissed_reason=dismissed, acted_by="Mo One")
        if answered is not None:
            question = await unit.questions.get(question_id)
            assert question is not None
            assert await record_answer(unit, question, text=f"Answer to {text}", via="teams",
                                       by=Answerer(id="mo@council.example", name="Mo One"),
                                       source_key=f"seed:{question_id}", follow_ups=False)
    db = Path(str(store.engine.url.database))
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE questions SET created_at = ? WHERE id = ?", (_at(asked), question_id))
        if answered is not None:
            conn.execute("UPDATE answers SET created_at = ? WHERE question_id = ?", (_at(answered), question_id))
