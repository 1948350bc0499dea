"""/metrics is never on the bot's public listener for anyone to read: it has a listener of its
own (METRICS_HOST, default loopback; METRICS_PORT), or needs METRICS_TOKEN as a bearer token."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from pydantic import ValidationError

from app import METRICS_LISTENER
from config.settings import Settings
from tests.e2e.conftest import OFF_TOPIC, Bot, bot_settings, serving
from tests.support.channel import FakeChannel

TOKEN = "4f1c2d9e8b7a6f5e4d3c2b1a09f8e7d6"


@pytest.fixture
def settings_overrides() -> dict[str, str]:
    return {"METRICS_PORT": "0", "METRICS_TOKEN": TOKEN}


async def test_metrics_need_the_private_listener_or_the_token(bot: Bot) -> None:
    await bot.say(bot.channel.new_user("Mo Metrics"), OFF_TOPIC)
    await bot.channel.connector.wait_for(1)
    await bot.drained()
    for authorization in (None, "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x"):
        headers = {"Authorization": authorization} if authorization else {}
        refused = await bot.client.get("/metrics", headers=headers)
        assert refused.status == 401, authorization
        assert "cqb_" not in await refused.text()
    with_token = await bot.client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert with_token.status == 200
    assert 'cqb_questions{status="forwarded"} 1.0' in (await with_token.text()).splitlines()

    listener = bot.client.app[METRICS_LISTENER]
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{listener.port}/metrics") as private:
            assert private.status == 200
            assert "cqb_forwards 1.0" in (await private.text()).splitlines()
        async with session.get(f"http://127.0.0.1:{listener.port}/api/messages") as other:
            assert other.status == 404  # the metrics listener serves nothing else


async def test_without_a_token_the_public_listener_has_no_metrics(
    channel: FakeChannel, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(channel.ca_bundle))
    for private_port in ("0", ""):
        settings = bot_settings(channel, database_url, tmp_path, METRICS_PORT=private_port)
        async with serving(channel, settings) as bot:
            assert (await bot.client.get("/metrics")).status == 404
            assert (await bot.client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})).status == 404


def test_a_guessable_metrics_token_stops_the_start() -> None:
    with pytest.raises(ValidationError, match="METRICS_TOKEN must be at least 32 characters"):
        Settings(METRICS_TOKEN="metrics")
