"""The bot under test: the real app on a real port, talking to a local Bot Framework channel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from app import create_app
from bot.auth import build_authentication
from bot.channel import TeamsChannel
from bot.sender import TeamsConnector
from config.settings import BUNDLED_FAQ, Settings
from faq.store import load_faq
from handlers.channels import TEAMS
from handlers.reminders import remind_waiting
from store.db import create_engine
from store.schema import outbox, questions, service_state
from store.store import Store
from tests.support.channel import FakeChannel, TeamsUser
from tests.support.clock import ShiftedClock
from tests.support.graph import GraphWorld, start_world, stop_world

T = TypeVar("T")
OFF_TOPIC = "Will the staff choir be singing at the Shire Hall carol service this year?"


def an_faq_entry() -> tuple[str, str, str]:
    """(id, question, answer) of a bundled FAQ entry: asking its own question must be answered."""
    entry = load_faq(BUNDLED_FAQ).entries[0]
    return entry.id, entry.question, entry.answer

APP_ID = "9f3e2a1c-0000-4000-8000-00000000b0t5"
APP_PASSWORD = "test-secret-value-do-not-log"


@dataclass
class Bot:
    """What a test needs: the HTTP client, the channel, the app's clock, and ways to see what
    was stored and sent."""

    client: TestClient
    channel: FakeChannel
    settings: Settings
    outbox_dir: Path
    clock: ShiftedClock

    async def post(self, activity: dict[str, Any], *, authorization: str | None = "valid") -> ClientResponse:
        return await self.channel.deliver(self.client, activity, authorization=authorization)

    async def say(self, user: TeamsUser, text: str, **options: Any) -> dict[str, Any]:
        activity = self.channel.activities.personal_message(user, text, **options)
        response = await self.post(activity)
        assert response.status == 200, await response.text()
        return activity

    async def question_rows(self) -> list[dict[str, Any]]:
        engine = create_engine(self.settings.database_url)
        try:
            async with engine.connect() as conn:
                rows = (await conn.execute(select(questions).order_by(questions.c.id))).mappings().all()
        finally:
            await engine.dispose()
        return [dict(row) for row in rows]

    async def outbox_count(self) -> int:
        engine = create_engine(self.settings.database_url)
        try:
            async with engine.connect() as conn:
                return (await conn.execute(select(func.count()).select_from(outbox))).scalar_one()
        finally:
            await engine.dispose()

    async def mailbox_baseline_taken(self) -> bool:
        engine = create_engine(self.settings.database_url)
        try:
            async with engine.connect() as conn:
                row = await conn.execute(select(service_state.c.value).where(service_state.c.name == "mailbox.delta"))
                return row.first() is not None
        finally:
            await engine.dispose()

    def mails(self) -> list[Path]:
        return sorted(self.outbox_dir.glob("*.eml"))

    async def drained(self, timeout: float = 15.0) -> None:
        """Wait until the outbox has nothing left to do, so "nothing more was sent" is a fact.

        The worker runs inside the app under test; its progress is only visible in the
        database, so this polls the table (briefly) rather than awaiting an event.
        """
        engine = create_engine(self.settings.database_url)
        try:
            deadline = asyncio.get_running_loop().time() + timeout
            while True:
                async with engine.connect() as conn:
                    pending = (
                        await conn.execute(
                            select(func.count()).select_from(outbox).where(outbox.c.status.in_(["todo", "doing"]))
                        )
                    ).scalar_one()
                if not pending:
                    return
                if asyncio.get_running_loop().time() > deadline:
                    raise TimeoutError(f"{pending} outbox jobs still pending")
                await asyncio.sleep(0.05)
        finally:
            await engine.dispose()

    async def remind_elsewhere(self, instances: int, *, after: timedelta, now: datetime) -> list[int]:
        """`instances` more instances of the bot, each on its own database connections and Teams
        connector, check for questions waiting longer than `after` at once; what each listed."""
        engines = [create_engine(self.settings.database_url) for _ in range(instances)]
        connectors = [TeamsConnector(build_authentication(self.settings)) for _ in range(instances)]
        try:
            return list(await asyncio.gather(*(
                remind_waiting(Store(engine), {TEAMS: TeamsChannel(connector)}.__getitem__, after=after, now=now)
                for engine, connector in zip(engines, connectors, strict=True)
            )))
        finally:
            for engine, connector in zip(engines, connectors, strict=True):
                await connector.close()
                await engine.dispose()

    async def after(self, seconds: float) -> None:
        """Move the app's clock on by `seconds`, then wait for what that made due (a board
        refresh queued for the end of its interval) to run: time passes without sleeping."""
        self.clock.advance(seconds)
        await self.drained()


@pytest.fixture
async def channel() -> AsyncIterator[FakeChannel]:
    async with FakeChannel.start() as started:
        yield started


def bot_settings(channel: FakeChannel, database_url: str, tmp_path: Path, **overrides: str) -> Settings:
    env = channel.bot_env(APP_ID, APP_PASSWORD)
    env.update(
        DATABASE_URL=database_url,
        MAIL_OUTBOX_DIR=str(tmp_path / "outbox"),
        MODERATORS_ADDRESS="staff-questions@council.example",
        OUTBOX_POLL_SECONDS="0.2",
    )
    env.update(overrides)
    return Settings(**env)


async def resolved(value: T) -> T:
    """`value`, awaitable: for `eventually` checks that only read a fake server's state."""
    return value


async def eventually(check: Callable[[], Awaitable[T | None]], *, timeout: float = 15.0, what: str = "") -> T:
    """Poll `check` until it returns something truthy: for effects only visible in a fake
    server's state or the database, which offer nothing to await."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"timed out waiting for {what or check}")
        await asyncio.sleep(0.05)


def board_counts(card: Any) -> dict[str, int]:
    """The hosts' board's count tiles as read on the card: {"Asked": 3, "Waiting": 1, ...}."""
    def tiles(node: Any) -> Any:
        if isinstance(node, dict):
            if node.get("id") == "counts":
                return [column for row in node["items"] for column in row["columns"]]
            node = list(node.values())
        if isinstance(node, list):
            return next((found for child in node if (found := tiles(child)) is not None), None)
        return None

    return {column["items"][1]["text"]: int(column["items"][0]["text"].replace(",", "")) for column in tiles(card)}


@pytest.fixture
def settings_overrides() -> dict[str, str]:
    """Extra settings for the bot under test; a test module overrides this fixture."""
    return {}


@asynccontextmanager
async def serving(channel: FakeChannel, settings: Settings) -> AsyncIterator[Bot]:
    """The real app on a loopback port, with these settings, talking to `channel`."""
    clock = ShiftedClock()
    async with TestClient(TestServer(create_app(settings, clock), host="127.0.0.1")) as client:
        yield Bot(client, channel, settings, settings.mail_outbox_dir, clock)


@pytest.fixture
async def bot(
    channel: FakeChannel,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    settings_overrides: dict[str, str],
) -> AsyncIterator[Bot]:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(channel.ca_bundle))
    settings = bot_settings(channel, database_url, tmp_path, **settings_overrides)
    async with serving(channel, settings) as bot:
        yield bot


@pytest.fixture
async def graph_world(tmp_path: Path) -> AsyncIterator[GraphWorld]:
    world = await start_world(tmp_path, mailbox="staff-questions@council.example")
    try:
        yield world
    finally:
        await stop_world(world)


def graph_mail_env(world: GraphWorld) -> dict[str, str]:
    """Settings that send and read the bot's mail through the local Graph server."""
    return {
        "SHARED_MAILBOX": world.mailbox,
        "GRAPH_TENANT_ID": world.tenant_id,
        "GRAPH_CLIENT_ID": world.client_id,
        "GRAPH_CLIENT_SECRET": world.client_secret,
        "GRAPH_AUTHORITY_HOST": world.identity.base_url,
        "GRAPH_URL": world.graph.base_url,
        "GRAPH_CA_BUNDLE": world.ca_path,
        "MODERATOR_SENDERS": "@council.example",
        "STAFF_MAIL_DOMAINS": "council.example",
        "MAIL_POLL_SECONDS": "0.2",
    }


@pytest.fixture
async def mail_bot(
    channel: FakeChannel,
    graph_world: GraphWorld,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Bot]:
    """The bot with its mail going through Microsoft Graph (the local Graph server)."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(channel.ca_bundle))
    settings = bot_settings(
        channel,
        database_url,
        tmp_path,
        MODERATORS_ADDRESS="",
        **graph_mail_env(graph_world),
    )
    async with serving(channel, settings) as bot:
        await eventually(bot.mailbox_baseline_taken, what="the first mailbox sync")
        yield bot
