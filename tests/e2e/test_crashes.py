"""kill -9 at the moments that matter, restart, and check that nothing was lost or done twice.

Each test holds one request at a fake server (the Bot Connector or Graph) so the bot is
exactly at the chosen point, kills the bot process with SIGKILL, starts a new one on the same
database, and looks at what the colleague and the mailbox end up with.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select, text

from store.db import create_engine
from store.schema import outbox, questions
from tests.e2e.conftest import APP_ID, APP_PASSWORD, OFF_TOPIC, eventually, graph_mail_env, resolved
from tests.support.channel import FakeChannel, TeamsUser
from tests.support.graph import GraphWorld
from tests.support.process import bot_process, free_port, wait_healthy

ANSWER = "Yes, the choir sings on 12 December."


@pytest.fixture
def env(channel: FakeChannel, graph_world: GraphWorld, database_url: str) -> dict[str, str]:
    settings = channel.bot_env(APP_ID, APP_PASSWORD)
    settings.update(
        HOST="127.0.0.1",
        DATABASE_URL=database_url,
        OUTBOX_POLL_SECONDS="0.2",
        OUTBOX_LEASE_SECONDS="1",  # a killed instance's jobs come back quickly
        **graph_mail_env(graph_world),
    )
    return settings


@dataclass
class Instance:
    url: str
    process: asyncio.subprocess.Process

    async def kill(self) -> None:
        """SIGKILL: no clean-up runs, as when a machine or container dies."""
        self.process.kill()
        await self.process.wait()

    async def ask(self, channel: FakeChannel, user: TeamsUser, text: str) -> dict[str, Any]:
        activity = channel.activities.personal_message(user, text)
        async with aiohttp.ClientSession() as session, \
                await channel.deliver(session, activity, path=f"{self.url}/api/messages") as response:
            assert response.status == 200
        return activity


@asynccontextmanager
async def running(env: dict[str, str], log: Path) -> AsyncIterator[Instance]:
    port = free_port()
    with open(log, "ab") as output:
        async with bot_process({**env, "PORT": str(port)}, output=output) as process:
            await wait_healthy(f"http://127.0.0.1:{port}")
            yield Instance(f"http://127.0.0.1:{port}", process)


async def _question(database_url: str) -> dict[str, Any]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            [row] = (await conn.execute(select(questions))).mappings().all()
            return dict(row)
    finally:
        await engine.dispose()


async def _teams_sends_recorded(database_url: str) -> bool | None:
    """True once every Teams send the bot queued is recorded as done."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            statuses = (await conn.execute(select(outbox.c.status).where(outbox.c.kind == "teams.send"))).scalars()
            return all(status == "done" for status in statuses) or None
    finally:
        await engine.dispose()


def _posts_with(channel: FakeChannel, text: str) -> list[Any]:
    return [p for p in channel.connector.posts() if p.text and text in p.text]


def _forwards(world: GraphWorld) -> list[dict[str, Any]]:
    return [m for m in world.graph.sent_items() if m["subject"].startswith("[Q-")]


async def _one_forward(world: GraphWorld) -> dict[str, Any]:
    async def sent() -> dict[str, Any] | None:
        return next(iter(_forwards(world)), None)

    return await eventually(sent, timeout=30, what="the forward in Sent Items")


async def test_killed_after_recording_before_the_reply_the_colleague_gets_one_reply(
    env: dict[str, str], channel: FakeChannel, graph_world: GraphWorld, tmp_path: Path
) -> None:
    held = channel.connector.hold_next({"reply"})
    async with running(env, tmp_path / "bot.log") as bot:
        asked = await bot.ask(channel, channel.new_user("Kim Killed"), OFF_TOPIC)
        await held.reached.wait()
        await bot.kill()
    held.release()
    async with running(env, tmp_path / "bot.log"):
        [reply] = await channel.connector.wait_for(1, timeout=30)
        await _one_forward(graph_world)
    assert reply.activity_id == asked["id"] and "Q-1" in reply.text
    assert len(channel.connector.posts()) == 1
    assert len(_forwards(graph_world)) == 1
    assert (await _question(env["DATABASE_URL"]))["status"] == "forwarded"


async def test_killed_between_sending_a_forward_and_recording_it_the_mail_is_sent_once(
    env: dict[str, str], channel: FakeChannel, graph_world: GraphWorld, tmp_path: Path
) -> None:
    held = graph_world.graph.hold_next("POST */send", after=True)  # sent, the bot not yet told
    async with running(env, tmp_path / "bot.log") as bot:
        await bot.ask(channel, channel.new_user("Fern Forward"), OFF_TOPIC)
        await held.reached.wait()
        # the acknowledgement's own send is not what this test is about: a kill before its
        # record would send it twice (the Teams crash window, measured in bench/crash_window.py)
        await eventually(lambda: _teams_sends_recorded(env["DATABASE_URL"]), timeout=30,
                         what="the acknowledgement recorded as sent")
        await bot.kill()
    held.release()
    async with running(env, tmp_path / "bot.log"):

        async def recorded() -> str | None:
            return (await _question(env["DATABASE_URL"]))["forward_message_id"]

        message_id = await eventually(recorded, timeout=30, what="the forward recorded")
    [forward] = _forwards(graph_world)
    assert forward["internetMessageId"] == message_id
    assert len(channel.connector.posts()) == 1


async def test_killed_between_reading_a_reply_and_delivering_it_the_answer_arrives_once(
    env: dict[str, str], channel: FakeChannel, graph_world: GraphWorld, tmp_path: Path
) -> None:
    async with running(env, tmp_path / "bot.log") as bot:
        asked = await bot.ask(channel, channel.new_user("Ria Reply"), OFF_TOPIC)
        forward = await _one_forward(graph_world)
        await channel.connector.wait_for(1)
        held = channel.connector.hold_next({"send", "reply"})
        graph_world.graph.deliver_to_inbox(
            "moderator.one@council.example", f"RE: {forward['subject']}", text=ANSWER,
            in_reply_to=forward["internetMessageId"],
        )
        await held.reached.wait()
        await bot.kill()
    held.release()
    async with running(env, tmp_path / "bot.log"):
        [answer] = await eventually(lambda: resolved(_posts_with(channel, ANSWER)), timeout=30, what="the answer")
    assert answer.conversation_id == asked["conversation"]["id"]
    assert len(_posts_with(channel, ANSWER)) == 1
    assert (await _question(env["DATABASE_URL"]))["status"] == "answered"


async def test_killed_during_a_delta_sync_the_mail_is_handled_once(
    env: dict[str, str], channel: FakeChannel, graph_world: GraphWorld, tmp_path: Path
) -> None:
    async with running(env, tmp_path / "bot.log") as bot:
        await bot.ask(channel, channel.new_user("Dev Delta"), OFF_TOPIC)
        forward = await _one_forward(graph_world)
        await channel.connector.wait_for(1)
        # handled and committed, but not yet tagged and the delta link not yet saved
        held = graph_world.graph.hold_next("PATCH */messages/*", after=False)
        graph_world.graph.deliver_to_inbox(
            "moderator.one@council.example", f"RE: {forward['subject']}", text=ANSWER,
            in_reply_to=forward["internetMessageId"],
        )
        await held.reached.wait()
        await bot.kill()
    held.release()
    async with running(env, tmp_path / "bot.log"):
        await eventually(lambda: resolved(_posts_with(channel, ANSWER)), timeout=30, what="the answer")

        async def tagged() -> bool:
            return all(m.get("categories") for m in graph_world.graph.inbox())

        await eventually(tagged, timeout=30, what="the reply tagged as handled")
    assert len(_posts_with(channel, ANSWER)) == 1
    assert len(_forwards(graph_world)) == 1


async def _sends_recorded(database_url: str) -> bool:
    """Whether Teams sends were queued and every one of them is recorded as done."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            sends = outbox.c.kind == "teams.send"
            queued = (await conn.execute(select(func.count()).where(sends))).scalar_one()
            pending = (await conn.execute(select(func.count()).where(sends, outbox.c.status != "done"))).scalar_one()
    finally:
        await engine.dispose()
    return bool(queued) and not pending


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_send_the_connector_took_is_recorded_at_once_not_after_other_commits(
    env: dict[str, str], channel: FakeChannel, tmp_path: Path
) -> None:
    """The reply is recorded as sent in a commit of its own right after the connector's
    answer, not in a later group commit shared with colleagues' questions: while another
    question's commit waits (here: on a table lock, only PostgreSQL can hold one table), the
    reply is recorded anyway, so a kill -9 then does not send it twice."""
    env = {**env, "OUTBOX_LEASE_SECONDS": "30"}  # the held send is not claimed again meanwhile
    first, second = channel.new_user("Ana First"), channel.new_user("Ben Blocked")
    held = channel.connector.hold_next({"reply"})
    locker = create_engine(env["DATABASE_URL"])
    try:
        async with running(env, tmp_path / "bot.log") as bot:
            asked = await bot.ask(channel, first, OFF_TOPIC)
            await held.reached.wait()
            async with locker.connect() as lock:
                await lock.execute(text("LOCK TABLE questions IN SHARE MODE"))  # inserts wait
                blocked = asyncio.create_task(bot.ask(channel, second, OFF_TOPIC))

                async def waiting_on_the_lock() -> bool:
                    query = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    return bool((await lock.execute(text(query))).scalar_one())

                await eventually(waiting_on_the_lock, what="the second question's commit to wait")
                held.release()
                await eventually(lambda: _sends_recorded(env["DATABASE_URL"]), timeout=15,
                                 what="the reply recorded as sent")
                await bot.kill()
                await lock.rollback()
            with pytest.raises(aiohttp.ClientError):
                await blocked
        async with running(env, tmp_path / "bot.log") as bot:
            redelivered = await bot.ask(channel, second, OFF_TOPIC)
            await eventually(lambda: resolved(len(channel.connector.posts()) >= 2), timeout=30, what="both replies")
            await eventually(lambda: _sends_recorded(env["DATABASE_URL"]), timeout=30, what="every send recorded")
    finally:
        await locker.dispose()
    replied_to = sorted(post.activity_id for post in channel.connector.posts())
    assert replied_to == sorted([asked["id"], redelivered["id"]])
