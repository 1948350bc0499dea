"""Erased means gone from every file the product writes, while it keeps running: `app.py` runs
in its own process, `cli.py subject erase` runs beside it, and then every byte of the SQLite
files (database, -wal, -shm) and of the mail folder is searched for the person."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import func, select

from store.db import create_engine
from store.migrate import upgrade
from store.schema import outbox
from tests.e2e.conftest import APP_ID, APP_PASSWORD, OFF_TOPIC, eventually, resolved
from tests.e2e.test_crashes import running
from tests.e2e.test_offline_mail import MODERATOR, reply_to
from tests.privacy.cli import run_cli
from tests.support.channel import FakeChannel

JO_PRIVATE = "My manager has been shouting at me in team meetings and I cannot face the office; who can I tell?"
SAM_QUESTION = "Will the staff choir rehearse in the Shire Hall ballroom on Thursday evening?"
ANSWER = "Yes: the choir sings on 12 December at 6pm."


async def drained(database_url: str) -> None:
    """Until the running bot's outbox has nothing left to do (only the database shows it)."""
    engine = create_engine(database_url)

    async def nothing_pending() -> bool:
        async with engine.connect() as conn:
            pending = await conn.execute(
                select(func.count()).select_from(outbox).where(outbox.c.status.in_(["todo", "doing"]))
            )
            return pending.scalar_one() == 0

    try:
        await eventually(nothing_pending, timeout=30, what="the outbox drained")
    finally:
        await engine.dispose()


def written_files(database: Path, mail_folder: Path) -> dict[Path, bytes]:
    """Every file the product writes: SQLite's three, and everything in the mail folder."""
    sqlite_files = [database, database.with_name(database.name + "-wal"), database.with_name(database.name + "-shm")]
    mail_files = [path for path in mail_folder.rglob("*") if path.is_file()]
    return {path: path.read_bytes() for path in [*sqlite_files, *mail_files] if path.exists()}


def posts_to(channel: FakeChannel, asked: dict[str, Any]) -> list[Any]:
    return [p for p in channel.connector.posts() if p.conversation_id == asked["conversation"]["id"]]


async def test_after_erase_the_person_is_in_no_byte_of_any_file_while_the_bot_keeps_running(
    channel: FakeChannel, tmp_path: Path
) -> None:
    database, mail_folder = tmp_path / "bot.db", tmp_path / "outbox"
    url = f"sqlite:///{database}"
    await asyncio.to_thread(upgrade, url)
    env = channel.bot_env(APP_ID, APP_PASSWORD)
    env.update(HOST="127.0.0.1", DATABASE_URL=url, MAIL_OUTBOX_DIR=str(mail_folder), MODERATORS_ADDRESS=MODERATOR,
               OUTBOX_POLL_SECONDS="0.2")
    jo, sam = channel.new_user("Jo Bloggs"), channel.new_user("Sam Other")
    assert jo.email
    async with running(env, tmp_path / "bot.log") as bot:
        asked = await bot.ask(channel, jo, OFF_TOPIC)
        await bot.ask(channel, jo, f"ask privately {JO_PRIVATE}")
        await bot.ask(channel, sam, SAM_QUESTION)
        forwards = await eventually(
            lambda: resolved([p for p in mail_folder.glob("*.eml") if b"Jo Bloggs" in p.read_bytes()]),
            timeout=30, what="Jo's question forwarded with Jo's name",
        )
        reply = tmp_path / "reply.eml"
        reply.write_bytes(reply_to(next(p for p in forwards if b"carol service" in p.read_bytes()), ANSWER))
        assert await run_cli("mail", "receive", str(reply), env=env) == (0, "answer to Q-1\n", "")
        await eventually(lambda: resolved([p for p in posts_to(channel, asked) if ANSWER in (p.text or "")]),
                         timeout=30, what="the answer in Jo's chat")
        await drained(url)
        before = written_files(database, mail_folder)
        assert any(jo.email.encode() in data for data in before.values()), "the scan must see Jo before erasing"

        code, out, err = await run_cli("subject", "erase", "--user", jo.email, "--yes", env=env)
        assert (code, err) == (0, ""), out
        assert "  questions_deleted: 2" in out

        later = await bot.ask(channel, sam, "Is there a car share scheme for the Shire Hall annexe staff?")
        await eventually(lambda: resolved(posts_to(channel, later)), timeout=30, what="the bot still answering")
        async with aiohttp.ClientSession() as session, session.get(f"{bot.url}/healthz") as health:
            assert health.status == 200
        assert bot.process.returncode is None

        after = written_files(database, mail_folder)
        for needle in (jo.email, jo.name, OFF_TOPIC, JO_PRIVATE):
            found = [path.name for path, data in after.items() if needle.encode() in data]
            assert not found, f"{needle!r} is still in {found}"
        assert any(SAM_QUESTION.encode() in data for data in after.values()), "others' data is kept"
