"""Nothing leaves for a host the operator did not configure.

The bot runs as an operator runs it (`python app.py`), behind a recording proxy that forwards
nothing, with every TCP connection and name look-up it makes written down. It starts, answers
an FAQ question, forwards another to the moderators by Graph mail, and delivers a moderator's
mail reply in Teams; the only destinations are then the configured endpoints.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from tests.e2e.conftest import (
    APP_ID,
    APP_PASSWORD,
    OFF_TOPIC,
    an_faq_entry,
    eventually,
    graph_mail_env,
)
from tests.support.channel import FakeChannel
from tests.support.graph import GraphWorld
from tests.support.process import ROOT, bot_process, free_port, wait_healthy
from tests.support.proxy import recording_proxy

# onnxruntime's telemetry made its first upload 9 s after the process started; the bot is
# watched for longer than that.
WATCH_SECONDS = 15.0
RECORDER = ROOT / "tests" / "support" / "record_connections"
DEFAULT_PORTS = {"https": 443, "http": 80, "postgresql": 5432}


def _endpoints(urls: Iterable[str]) -> set[tuple[str, int]]:
    """(host, port) of each URL."""
    parsed = [urlsplit(url) for url in urls]
    return {(p.hostname, p.port or DEFAULT_PORTS[p.scheme]) for p in parsed if p.hostname}


async def test_the_bot_reaches_only_its_configured_endpoints(
    channel: FakeChannel, graph_world: GraphWorld, database_url: str, tmp_path: Path
) -> None:
    env = channel.bot_env(APP_ID, APP_PASSWORD)
    env.update(
        HOST="127.0.0.1",
        DATABASE_URL=database_url,
        OUTBOX_POLL_SECONDS="0.2",
        **graph_mail_env(graph_world),
    )
    configured = _endpoints(value for value in env.values() if "://" in value)
    record = tmp_path / "connections.txt"
    port = free_port()
    async with recording_proxy() as proxy:
        env.update(
            proxy.env(), PORT=str(port), RECORD_CONNECTIONS_TO=str(record), PYTHONPATH=str(RECORDER)
        )
        started = asyncio.get_running_loop().time()
        with (tmp_path / "bot.log").open("wb") as log:
            async with bot_process(env, output=log):
                url = f"http://127.0.0.1:{port}"
                await wait_healthy(url)
                await _ask_forward_and_answer(url, channel, graph_world)
                await asyncio.sleep(
                    max(0.0, started + WATCH_SECONDS - asyncio.get_running_loop().time())
                )

    assert proxy.destinations == [], (
        f"the bot tried to reach hosts nobody configured: {proxy.destinations}"
    )
    lines = [line.split() for line in record.read_text().splitlines()]
    connected = {(host, int(port)) for kind, host, port in lines if kind == "connect"}
    looked_up = {host for kind, host, _ in lines if kind == "lookup"}
    used = _endpoints(
        [
            channel.login_base,
            channel.service_url,
            graph_world.identity.base_url,
            graph_world.graph.base_url,
            database_url if "postgresql" in database_url else "",
        ]
    )
    assert connected == used, f"connections: {sorted(connected)}; configured: {sorted(configured)}"
    assert looked_up <= {host for host, _ in configured} | {"127.0.0.1", "localhost"}, looked_up


async def _ask_forward_and_answer(url: str, channel: FakeChannel, graph_world: GraphWorld) -> None:
    """An FAQ question answered, another forwarded by Graph mail, the moderator's mail reply
    delivered in Teams."""
    _, faq_question, faq_answer = an_faq_entry()
    async with aiohttp.ClientSession() as session:
        for text in (faq_question, OFF_TOPIC):
            activity = channel.activities.personal_message(
                channel.new_user(f"Asker of {text[:9]}"), text
            )
            async with await channel.deliver(
                session, activity, path=f"{url}/api/messages"
            ) as response:
                assert response.status == 200
    replies = await channel.connector.wait_for(2, timeout=60)
    assert any(faq_answer in str(reply.attachments) for reply in replies)

    async def forwarded() -> dict | None:
        return next(
            (m for m in graph_world.graph.sent_items() if m["subject"].startswith("[Q-")), None
        )

    forward = await eventually(forwarded, timeout=60, what="the forward in Sent Items")
    graph_world.graph.deliver_to_inbox(
        "moderator.one@council.example",
        f"RE: {forward['subject']}",
        text="Yes, on 12 December.",
        in_reply_to=forward["internetMessageId"],
    )

    async def answered() -> object | None:
        return next(
            (p for p in channel.connector.posts() if p.text and "12 December" in p.text), None
        )

    await eventually(answered, timeout=60, what="the moderator's answer in Teams")
