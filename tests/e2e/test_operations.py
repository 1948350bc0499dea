"""What operators see: health and Prometheus metrics."""

from __future__ import annotations

import aiohttp
import pytest

from app import METRICS_LISTENER
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
    async with aiohttp.ClientSession() as session:
        url = f"http://127.0.0.1:{bot.client.app[METRICS_LISTENER].port}/metrics"
        async with session.get(url) as response:
            assert response.status == 200
            assert response.content_type == "text/plain"
            lines = set((await response.text()).splitlines())
    assert 'cqb_questions{status="forwarded"} 1.0' in lines
    assert "cqb_forwards 1.0" in lines
    assert "cqb_outbox_backlog 0.0" in lines
    assert "cqb_outbox_oldest_pending_seconds 0.0" in lines
    assert 'cqb_outbox_jobs_total{outcome="retried"} 1.0' in lines
