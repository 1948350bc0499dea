"""The bot's HTTP edge over raw TCP: bodies cut into segments, deep JSON, idle and slow clients.

Teams' activities reach the bot through TLS terminators and proxies that forward a body in
several TCP segments; each must be read whole. Clients that never finish a request must not
hold a connection (a file descriptor) for longer than REQUEST_TIMEOUT_SECONDS.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import time
from typing import Any

import pytest

from tests.e2e.conftest import Bot, an_faq_entry

REQUEST_TIMEOUT = 1.0  # seconds, for this module's bot (REQUEST_TIMEOUT_SECONDS)
SEGMENTED_ACTIVITIES = 100


@pytest.fixture
def settings_overrides() -> dict[str, str]:
    return {"REQUEST_TIMEOUT_SECONDS": str(REQUEST_TIMEOUT)}


def _request_head(bot: Bot, headers: dict[str, str], body_length: int) -> bytes:
    lines = [
        "POST /api/messages HTTP/1.1",
        f"Host: 127.0.0.1:{bot.client.port}",
        f"Content-Length: {body_length}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _connect(bot: Bot) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", bot.client.port)
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return reader, writer


async def _post_in_segments(bot: Bot, activity: dict[str, Any], rng: random.Random) -> int:
    """POST the activity as the channel signs it, cut into 2-8 TCP segments (every cut after
    the headers, so the body always arrives in pieces) with 0-5 ms between them."""
    body = json.dumps(activity).encode()
    head = _request_head(bot, bot.channel.headers_for(activity), len(body))
    request = head + body
    cuts = sorted(rng.sample(range(len(head) + 1, len(request)), rng.randint(1, 7)))
    reader, writer = await _connect(bot)
    try:
        for start, end in zip([0, *cuts], [*cuts, len(request)], strict=True):
            writer.write(request[start:end])
            await writer.drain()
            await asyncio.sleep(rng.uniform(0, 0.005))
        status_line = await asyncio.wait_for(reader.readline(), 10)
        await reader.read()  # the rest of the answer, to the server's close
    finally:
        writer.close()
    return int(status_line.split()[1])


async def test_activities_cut_into_tcp_segments_are_each_accepted_and_answered_once(bot: Bot) -> None:
    _, question, _ = an_faq_entry()
    rng = random.Random(20261206)
    activities = [
        bot.channel.activities.personal_message(bot.channel.new_user(f"Segmented Colleague {n}"), question)
        for n in range(SEGMENTED_ACTIVITIES)
    ]
    at_once = asyncio.Semaphore(8)

    async def post(activity: dict[str, Any]) -> int:
        async with at_once:
            return await _post_in_segments(bot, activity, rng)

    statuses = await asyncio.gather(*(post(activity) for activity in activities))
    assert statuses == [200] * SEGMENTED_ACTIVITIES
    await bot.channel.connector.wait_for(SEGMENTED_ACTIVITIES, timeout=60)
    await bot.drained(timeout=30)
    answered = [reply.activity_id for reply in bot.channel.connector.posts()]
    assert sorted(answered) == sorted(activity["id"] for activity in activities)  # each once
    assert len(await bot.question_rows()) == SEGMENTED_ACTIVITIES


def _nested(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = {"deeper": value}
    return value


def _nested_body(activity: dict[str, Any], depth: int) -> str:
    """The activity with channelData nesting to `depth` levels in all (the activity itself and
    channelData are two); very deep ones written out, since json.dumps would recurse."""
    if depth > 1000:
        activity["channelData"]["extra"] = "NESTED"
        return json.dumps(activity).replace('"NESTED"', "[" * (depth - 2) + "]" * (depth - 2))
    activity["channelData"]["extra"] = _nested(depth - 2)
    return json.dumps(activity)


async def test_json_nested_deeper_than_64_levels_gets_400_and_records_nothing(bot: Bot) -> None:
    user = bot.channel.new_user("Nadia Nested")
    for depth in (65, 100_000):
        activity = bot.channel.activities.personal_message(user, "What is the pay award this year?")
        body = _nested_body(activity, depth)
        response = await bot.client.post("/api/messages", data=body, headers=bot.channel.headers_for(activity))
        assert response.status == 400, depth
        assert "deeper than 64" in (await response.json())["detail"]
    await bot.drained()
    assert await bot.question_rows() == []
    assert await bot.outbox_count() == 0
    assert bot.channel.connector.recorded() == []

    within = bot.channel.activities.personal_message(user, "What is the pay award this year?")
    response = await bot.client.post(
        "/api/messages", data=_nested_body(within, 64), headers=bot.channel.headers_for(within)
    )
    assert response.status == 200
    assert [row["text"] for row in await bot.question_rows()] == ["What is the pay award this year?"]


async def _closed_by_server(reader: asyncio.StreamReader, within: float) -> bool:
    """Whether the server closes the connection within `within` seconds (answer included)."""
    try:
        async with asyncio.timeout(within):
            while await reader.read(4096):
                pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


async def test_idle_half_sent_and_slow_requests_are_closed_within_the_request_timeout(bot: Bot) -> None:
    """100 connections: half send nothing, half trickle their headers a line at a time; then
    one sends its headers and trickles its body."""
    started = time.monotonic()
    connections = [await _connect(bot) for _ in range(100)]

    async def trickle_headers(writer: asyncio.StreamWriter) -> None:
        writer.write(b"POST /api/messages HTTP/1.1\r\n")
        for n in range(50):
            await asyncio.sleep(0.1)
            if writer.is_closing():
                return
            writer.write(f"X-Slow-{n}: still coming\r\n".encode())

    tricklers = [asyncio.create_task(trickle_headers(writer)) for _, writer in connections[50:]]
    try:
        closed = await asyncio.gather(
            *(_closed_by_server(reader, REQUEST_TIMEOUT + 2.0) for reader, _ in connections)
        )
    finally:
        for task in tricklers:
            task.cancel()
        for _, writer in connections:
            writer.close()
    assert closed == [True] * 100
    assert time.monotonic() - started < REQUEST_TIMEOUT + 2.5
    assert (await bot.client.get("/healthz")).status == 200  # and the bot still answers

    # A request whose headers arrive but whose body trickles: 408, closed, nothing recorded.
    user = bot.channel.new_user("Sloane Slow")
    activity = bot.channel.activities.personal_message(user, "What is the pay award this year?")
    body = json.dumps(activity).encode()
    reader, writer = await _connect(bot)
    writer.write(_request_head(bot, bot.channel.headers_for(activity), len(body)))

    async def trickle_body() -> None:
        for offset in range(0, len(body) - 1, 10):  # never the last byte
            writer.write(body[offset:min(offset + 10, len(body) - 1)])
            await asyncio.sleep(0.1)

    trickling = asyncio.create_task(trickle_body())
    try:
        status_line = await asyncio.wait_for(reader.readline(), REQUEST_TIMEOUT + 2.0)
        assert int(status_line.split()[1]) == 408
        assert await _closed_by_server(reader, 2.0)
    finally:
        trickling.cancel()
        writer.close()
    await bot.drained()
    assert await bot.question_rows() == []
    assert bot.channel.connector.recorded() == []
