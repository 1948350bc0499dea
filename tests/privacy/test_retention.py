"""Retention: data older than RETENTION_DAYS disappears; recent data and owed work stay."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from domain.jobs import ModerationCard
from handlers.retention import RetentionPolicy, purge_expired
from store.db import create_engine
from store.migrate import upgrade
from store.schema import audit_log, inbound_mail, outbox, people, questions
from store.store import Store
from tests.e2e.conftest import OFF_TOPIC, Bot, eventually
from tests.privacy.seed import ask, backdate, counts

ROOT = Path(__file__).resolve().parents[2]
POLICY = RetentionPolicy(days=365, audit_days=730)


async def _seed_a_year_of_data(store: Store) -> dict[str, int]:
    """Old Olive's question (400 days untouched) with everything hanging off it, and an FAQ entry
    made from it; recent Rita's question; Paul, old in the people table but with a recent
    question; audit of two ages."""
    old = await ask(store, "Is the old depot closing?", key="teams:a:1", asker_id="29:olive",
                    aad_id="aad-olive", name="Olive Old")
    recent = await ask(store, "Is the new depot opening?", key="teams:a:2", asker_id="29:rita",
                       aad_id="aad-rita", name="Rita Recent")
    paul = await ask(store, "When is the Christmas party?", key="mail:<p@x>", asker_id="paul@council.example",
                     email="paul@council.example", source="mail")
    async with store.unit() as unit:
        await unit.answers.add(old, text="Yes, in March.", author="mo@council.example", author_name="Mo",
                               via="mail", source_key="mail:<answer-old@x>")
        await unit.answers.add(recent, text="Yes, in May.", author="mo@council.example", author_name="Mo",
                               via="mail", source_key="mail:<answer-recent@x>")
        await unit.questions.add_feedback(old, "depot", helpful=True)
        await unit.faq.link(old, "depot", text="Is the old depot closing?", linked_by="Mo")
        await unit.faq.link(recent, "depot", text="Is the new depot opening?", linked_by="Mo")
        await unit.faq.add_entry("depot-closing", question="Is the old depot closing?", answer="Yes, in March.",
                                 question_id=old, created_by="Mo")
        await unit.support.add(old, "aad-rita")
        await unit.people.remember("aad-olive", email="olive@council.example", name="Olive Old")
        await unit.people.remember("aad-rita", email="rita@council.example", name="Rita Recent")
        await unit.people.remember("aad-ghost", email="ghost@council.example", name="Gone Ghost")
        await unit.inbound_mail.record("<old-mail@x>", sender="olive@council.example", outcome="question",
                                       detail=None, question_id=old, received_at=datetime.now(UTC))
        await unit.inbound_mail.record("<new-mail@x>", sender="paul@council.example", outcome="question",
                                       detail=None, question_id=paul, received_at=datetime.now(UTC))
        await unit.outbox.enqueue(ModerationCard(old), dedupe_key="done-old")
        await unit.outbox.enqueue(ModerationCard(old), dedupe_key="owed-old")
        await unit.outbox.enqueue(ModerationCard(recent), dedupe_key="done-recent")
        await unit.audit.record("Mo", "question.claim", f"Q-{old}")
        await unit.audit.record("Mo", "question.claim", f"Q-{recent}")
    async with store.engine.begin() as conn:
        await conn.execute(outbox.update().where(outbox.c.dedupe_key != "owed-old").values(status="done"))
    await backdate(store, questions, "updated_at", 400, questions.c.id == old)
    await backdate(store, people, "updated_at", 400, people.c.aad_id.in_(["aad-olive", "aad-ghost"]))
    await backdate(store, people, "updated_at", 400, people.c.aad_id == "aad-rita")
    await backdate(store, inbound_mail, "created_at", 400, inbound_mail.c.internet_message_id == "<old-mail@x>")
    await backdate(store, outbox, "updated_at", 400, outbox.c.dedupe_key.in_(["done-old", "owed-old"]))
    await backdate(store, audit_log, "at", 800, audit_log.c.target == f"Q-{old}")
    await backdate(store, audit_log, "at", 400, audit_log.c.target == f"Q-{recent}")
    return {"old": old, "recent": recent, "paul": paul}


EXPECTED = {
    "questions": 1,  # Olive's
    "answers": 1,
    "question_support": 1,
    "faq_feedback": 1,
    "faq_phrasings": 1,  # Olive's question as a phrasing goes with it; Rita's stays
    "inbound_mail": 1,
    "outbox": 1,  # the finished one; the job still owed stays
    "people": 2,  # Olive (only an expired question) and Ghost (none); Rita has a kept question
    "audit_log": 1,  # 800 days old; the 400-day-old entry is within AUDIT_RETENTION_DAYS
}


async def test_purge_removes_what_is_older_than_the_period_and_keeps_the_rest(store: Store) -> None:
    ids = await _seed_a_year_of_data(store)
    before = await counts(store)

    assert await purge_expired(store, POLICY, dry_run=True) == EXPECTED
    assert await counts(store) == before  # a dry run changes nothing

    assert await purge_expired(store, POLICY) == EXPECTED
    after = await counts(store)
    assert {table: before[table] - after[table] for table in EXPECTED} == EXPECTED
    async with store.unit() as unit:
        assert await unit.questions.get(ids["old"]) is None
        kept = await unit.questions.get(ids["recent"])
        assert kept is not None and [a.text for a in await unit.answers.for_question(kept.id)] == ["Yes, in May."]
        assert await unit.people.email_of("aad-rita") == "rita@council.example"
        assert await unit.people.email_of("aad-olive") is None
        assert await unit.inbound_mail.seen("<new-mail@x>") and not await unit.inbound_mail.seen("<old-mail@x>")
        [entry] = await unit.faq.entries()  # the FAQ keeps it; only the link to the question goes
        assert (entry.id, entry.answer, entry.question_id) == ("depot-closing", "Yes, in March.", None)
    assert await purge_expired(store, POLICY) == dict.fromkeys(EXPECTED, 0)  # nothing left to do


async def test_a_longer_period_keeps_everything(store: Store) -> None:
    await _seed_a_year_of_data(store)
    removed = await purge_expired(store, RetentionPolicy(days=500, audit_days=900))
    assert removed == dict.fromkeys(EXPECTED, 0)


async def test_two_instances_purging_at_once_remove_each_row_once(store: Store, database_url: str) -> None:
    """Two app instances' hourly jobs may fire together (PostgreSQL); neither fails."""
    for n in range(30):
        await ask(store, f"Old question {n}", key=f"teams:old:{n}", asker_id="29:olive", aad_id="aad-olive")
    await backdate(store, questions, "updated_at", 400)
    other = Store(create_engine(database_url))
    try:
        first, second = await asyncio.gather(purge_expired(store, POLICY), purge_expired(other, POLICY))
    finally:
        await other.engine.dispose()
    assert first["questions"] + second["questions"] == 30
    assert (await counts(store))["questions"] == 0


def test_the_period_is_at_least_one_day() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RetentionPolicy(days=0, audit_days=730)


async def _cli(*args: str, database_url: str) -> tuple[int, str, str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    env.pop("RETENTION_DAYS", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "cli.py", *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_cli_purge_prints_per_table_what_it_would_remove_then_removes_it(
    store: Store, database_url: str
) -> None:
    await _seed_a_year_of_data(store)
    before = await counts(store)

    code, out, err = await _cli("purge", "--dry-run", database_url=database_url)
    assert code == 0, err
    assert out.splitlines()[0].startswith("would remove (data older than 365 days")
    assert "  questions: 1" in out and "  people: 2" in out and "  audit_log: 1" in out
    assert await counts(store) == before

    code, out, err = await _cli("purge", "--days", "1000", database_url=database_url)
    assert code == 0, err
    assert out.startswith("removed") and "  questions: 0" in out
    assert (await counts(store))["questions"] == before["questions"]

    code, out, err = await _cli("purge", database_url=database_url)
    assert code == 0, err
    assert "  questions: 1" in out and "  outbox: 1" in out
    assert (await counts(store))["questions"] == before["questions"] - 1


async def test_cli_purge_refuses_a_period_under_one_day(database_url: str) -> None:
    code, _, err = await _cli("purge", "--days", "0", database_url=database_url)
    assert code == 2
    assert "--days" in err and "x>=1" in err


@pytest.fixture
def settings_overrides() -> dict[str, str]:
    return {"RETENTION_INTERVAL_SECONDS": "0.2"}


async def test_the_running_bot_purges_old_questions_by_itself(bot: Bot) -> None:
    """The hourly job (here every 0.2 s) removes an expired question while the bot serves."""
    await bot.say(bot.channel.new_user("Olive Old"), OFF_TOPIC)
    await bot.channel.connector.wait_for(1)
    await bot.drained()
    [asked] = await bot.question_rows()
    store = Store(create_engine(bot.settings.database_url))
    try:
        await backdate(store, questions, "updated_at", 366, questions.c.id == asked["id"])
        await bot.say(bot.channel.new_user("Rita Recent"), "Will the library reopen on Saturdays?")

        async def only_the_recent_question_left() -> bool:
            rows = await bot.question_rows()
            return [row["asker_name"] for row in rows] == ["Rita Recent"]

        await eventually(only_the_recent_question_left, what="the expired question to be purged")
    finally:
        await store.engine.dispose()
    response = await bot.client.get("/healthz")
    assert response.status == 200


def test_retention_settings_have_documented_defaults_and_limits() -> None:
    from pydantic import ValidationError

    from config.settings import Settings

    settings = Settings()
    assert (settings.retention_days, settings.audit_retention_days) == (365, 730)
    assert settings.retention_interval_seconds == timedelta(hours=1).total_seconds()
    with pytest.raises(ValidationError, match="RETENTION_DAYS"):
        Settings(RETENTION_DAYS="0")


def _mail_files(folder: Path, ages_in_days: dict[str, int]) -> None:
    """Forward mails as the .eml transport leaves them, written `age` days ago."""
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC).timestamp()
    for name, age in ages_in_days.items():
        path = folder / name
        path.write_text("Subject: [Q-1] Is the old depot closing?\r\n\r\nAsked by Olive Old\r\n")
        os.utime(path, (now - age * 86400, now - age * 86400))


async def test_mail_files_older_than_the_period_go_with_the_rows(store: Store, tmp_path: Path) -> None:
    from mail.eml import EmlOutbox

    folder = tmp_path / "outbox"
    _mail_files(folder, {"forward-1.eml": 400, "forward-2.eml": 10, "forward-3.eml.partial": 400})
    mail = EmlOutbox(folder, "bot@council.example")
    assert (await purge_expired(store, POLICY, dry_run=True, mail=mail))["mail files"] == 2
    assert len(list(folder.iterdir())) == 3
    assert (await purge_expired(store, POLICY, mail=mail))["mail files"] == 2
    assert [path.name for path in folder.iterdir()] == ["forward-2.eml"]


async def test_cli_purge_counts_the_old_mail_files_too(database_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "outbox"
    _mail_files(folder, {"forward-1.eml": 400, "forward-2.eml": 10})
    code, out, err = await _cli("purge", "--dry-run", "--mail-outbox-dir", str(folder), database_url=database_url)
    assert code == 0, err
    assert "  mail files: 1" in out
    assert len(list(folder.iterdir())) == 2


async def test_purged_data_is_in_no_byte_of_the_sqlite_files(tmp_path: Path) -> None:
    """SQLite keeps old pages in its write-ahead log and deleted rows in free space: the purge
    empties the log, and deleted rows are overwritten (secure_delete), so expired questions
    cannot be read back from the files."""
    database = tmp_path / "bot.db"
    url = f"sqlite:///{database}"
    await asyncio.to_thread(upgrade, url)
    engine = create_engine(url)
    store = Store(engine)
    try:
        old = await ask(store, "Is the old depot closing before Easter?", key="teams:a:1", asker_id="29:olive",
                        aad_id="aad-olive", name="Olive Oldfield")
        await ask(store, "Is the new depot opening in May?", key="teams:a:2", asker_id="29:rita", name="Rita Recent")
        await backdate(store, questions, "updated_at", 400, questions.c.id == old)
        assert (await purge_expired(store, POLICY))["questions"] == 1
        files = [database, tmp_path / "bot.db-wal", tmp_path / "bot.db-shm"]
        held = b"".join(path.read_bytes() for path in files if path.exists())
        assert b"old depot closing" not in held and b"Olive Oldfield" not in held
        assert b"new depot opening" in held
    finally:
        await engine.dispose()
