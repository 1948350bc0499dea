"""A reply that gave up (its OUTBOX_GIVE_UP_AFTER_HOURS spent in a connector outage) is counted
in /metrics, listed by `cli.py outbox failed` without personal data, and delivered once when
`cli.py outbox retry` re-queues it after the outage."""

from __future__ import annotations

import asyncio
import sys

import pytest

from tests.e2e.conftest import OFF_TOPIC, Bot, eventually
from tests.support.process import ROOT

pytestmark = pytest.mark.timeout(90)
METRICS_TOKEN = "operators-scrape-token-of-32-chars-or-more"


@pytest.fixture
def settings_overrides() -> dict[str, str]:
    # 0.72 s: the first backoff goes past it; /metrics on the bot's listener to a bearer token
    return {"OUTBOX_GIVE_UP_AFTER_HOURS": "0.0002", "METRICS_TOKEN": METRICS_TOKEN}


async def cli(database_url: str, *args: str) -> tuple[int, str, str]:
    """`cli.py` as an operator runs it, against the bot's database: (exit status, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "cli.py", *args, "--database-url", database_url, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def failed_metrics(bot: Bot) -> set[str]:
    response = await bot.client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status == 200
    return {line for line in (await response.text()).splitlines() if line.startswith("cqb_outbox_failed{")}


async def test_a_reply_that_gave_up_is_listed_counted_and_sent_once_when_re_queued(bot: Bot) -> None:
    url = bot.settings.database_url
    bot.channel.connector.fail_for(600, status=503)  # no Retry-After: backoff, until the budget is spent
    asker = bot.channel.new_user("Priya Private", email="priya.private@council.example")
    await bot.say(asker, OFF_TOPIC)

    async def reply_failed() -> set[str] | None:
        lines = await failed_metrics(bot)
        return lines if 'cqb_outbox_failed{kind="teams.send"} 1.0' in lines else None

    lines = await eventually(reply_failed, timeout=30, what="the reply to give up")
    assert 'cqb_outbox_failed{kind="mail.forward"} 0.0' in lines  # every kind the bot runs is shown

    status, listed, _ = await cli(url, "outbox", "failed")
    assert status == 0
    header, row = listed.splitlines()
    assert header.split()[:3] == ["JOB", "KIND", "FAILED"]
    job_id, kind = row.split()[:2]
    assert kind == "teams.send"
    assert row.endswith("gave up after 0.0002 h: could not send a Teams message: HTTP 503")
    for personal in ("Priya", "priya.private", "Shire Hall", asker.id, asker.aad_object_id):
        assert personal not in listed

    status, _, error = await cli(url, "outbox", "retry", "999999")
    assert status == 2 and "999999 (no such job); nothing was changed" in error
    assert bot.channel.connector.posts() == []

    bot.channel.connector.clear_faults()  # the outage ends
    status, requeued, _ = await cli(url, "outbox", "retry", "--all")
    assert (status, requeued) == (0, f"re-queued 1 failed job: {job_id}\n")
    [reply] = await bot.channel.connector.wait_for(1, timeout=30)
    assert "Q-1" in (reply.text or "")
    await bot.drained()
    assert len(bot.channel.connector.posts()) == 1
    assert await cli(url, "outbox", "failed") == (0, "No failed jobs.\n", "")
    assert 'cqb_outbox_failed{kind="teams.send"} 0.0' in await failed_metrics(bot)
