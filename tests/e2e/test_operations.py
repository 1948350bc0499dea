"""What operators see: health and Prometheus metrics."""

from __future__ import annotations

import aiohttp
import pytest
from sqlalchemy import update

from app import METRICS_LISTENER
from store.db import create_engine
from store.schema import questions
from tests.e2e.conftest import OFF_TOPIC, Bot


@pytest.fixture
def settings_overrides() -> dict[str, str]:
    return {"METRICS_PORT": "0"}  # the private metrics listener, on a free port


async def test_healthz_reports_the_database(bot: Bot) -> None:
    response = await bot.client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok", "database": "ok"}


async def test_metrics_show_questions_forwards_and_backlog(bot: Bot) -> None:
    bot.channel.connector.fail_next(1, status=429, retry_after=0.2)
    await bot.say(bot.channel.new_user("Mo Metrics"), OFF_TOPIC)
    await bot.channel.connector.wait_for(1)
    await bot.drained()
    status, text = await _scrape(bot)
    assert status == 200
    lines = set(text.splitlines())
    assert 'cqb_questions{status="forwarded"} 1.0' in lines
    assert 'cqb_questions{status="merged"} 0.0' in lines  # every state, so an alert can watch each
    assert "cqb_forwards 1.0" in lines
    assert "cqb_outbox_backlog 0.0" in lines
    assert "cqb_outbox_oldest_pending_seconds 0.0" in lines
    assert 'cqb_outbox_jobs_total{outcome="retried"} 1.0' in lines


async def test_a_question_state_this_version_does_not_know_fails_the_scrape_naming_it(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    await bot.say(bot.channel.new_user("Mo Metrics"), OFF_TOPIC)
    await bot.drained()
    engine = create_engine(bot.settings.database_url)
    try:
        async with engine.begin() as conn:  # as a newer version might leave it after a rollback
            await conn.execute(update(questions).values(status="withdrawn"))
    finally:
        await engine.dispose()

    status, _ = await _scrape(bot)
    assert status == 500  # not a count that quietly leaves the question out
    assert "unknown question state 'withdrawn'" in caplog.text


async def _scrape(bot: Bot) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session:
        url = f"http://127.0.0.1:{bot.client.app[METRICS_LISTENER].port}/metrics"
        async with session.get(url) as response:
            text = await response.text()
            if response.status == 200:
                assert response.content_type == "text/plain"
            return response.status, text
