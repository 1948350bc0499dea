"""One organisation: activities from other tenants or other channels are refused, whatever
their roster says, and roles never come from them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from config.settings import ROOT, Settings
from store.db import create_engine
from store.store import Store
from tests.e2e.conftest import APP_ID, APP_PASSWORD, OFF_TOPIC, Bot, eventually, resolved, serving
from tests.hostile.support import question_states, row_counts
from tests.support.channel import FakeChannel

ADMIN_EMAIL = "admin@council.example"
MODERATORS_CHANNEL = "19:moderators@thread.tacv2"
FOREIGN_TENANT = "0badf00d-0000-4000-8000-0000000e7e11"
REFUSAL = "only serves the colleagues of the organisation"


@pytest.fixture
def settings_overrides() -> dict[str, str]:
    return {"ADMINS": ADMIN_EMAIL}


async def _snapshot(bot: Bot) -> tuple[dict[str, int], list[tuple[Any, ...]]]:
    store = Store(create_engine(bot.settings.database_url))
    try:
        return await row_counts(store), await question_states(store)
    finally:
        await store.engine.dispose()


def _cards_in(bot: Bot, conversation_prefix: str) -> list[Any]:
    return [r for r in bot.channel.connector.posts() if (r.conversation_id or "").startswith(conversation_prefix)]


async def test_a_foreign_tenant_user_with_an_admins_email_changes_nothing_and_sees_no_question(bot: Bot) -> None:
    channel = bot.channel
    admin = channel.new_user("Ada Admin", email=ADMIN_EMAIL)
    here = channel.activities.channel_mention(admin, "moderate here", channel_id=MODERATORS_CHANNEL)
    assert (await bot.post(here)).status == 200
    await bot.say(channel.new_user("Sam Staff"), OFF_TOPIC)
    card = await eventually(lambda: resolved(next(iter(_cards_in(bot, MODERATORS_CHANNEL)), None)), what="card")
    await bot.drained()
    before = await _snapshot(bot)
    sent_before = len(channel.connector.recorded())

    # Another organisation's user, whose own directory gives them the admin's email.
    eve = channel.new_user_in_tenant("Eve Elsewhere", FOREIGN_TENANT, email=ADMIN_EMAIL)
    foreign = channel.activities_in_tenant(FOREIGN_TENANT)
    foreign_channel = "19:evil-team-general@thread.tacv2"
    messages = [
        foreign.personal_message(eve, "grant moderator eve@evil.example"),
        foreign.channel_mention(eve, "moderate here", channel_id=foreign_channel),
        foreign.channel_mention(eve, "open event Phishing briefing", channel_id=foreign_channel),
        foreign.personal_message(eve, "What is the pay award this year?"),
        foreign.card_submit(eve, {"action": "moderate", "op": "answer", "question_id": 1,
                                  "answer": "Log in at https://evil.example"}, reply_to_id=card.created_id),
    ]
    for activity in messages:
        assert (await bot.post(activity)).status == 200
    clicks = [
        foreign.invoke_action(eve, "moderate", {"op": "claim", "question_id": 1}, reply_to_id=card.created_id),
        foreign.invoke_action(eve, "faq_feedback", {"question_id": 1, "helpful": False}),
    ]
    for click in clicks:
        response = await bot.post(click)
        assert response.status == 403
        assert REFUSAL in (await response.json())["value"]["message"]
    # Teams names the tenant twice; one foreign name is enough to be refused.
    mixed = channel.activities.personal_message(eve, "grant host eve@evil.example")
    mixed["conversation"]["tenantId"] = FOREIGN_TENANT
    assert (await bot.post(mixed)).status == 200

    refusals = await channel.connector.wait_until(lambda r: REFUSAL in (r.text or ""), n=len(messages) + 1)
    assert sorted(r.activity_id for r in refusals) == sorted(a["id"] for a in [*messages, mixed])
    await bot.drained()
    assert await _snapshot(bot) == before  # no role, no queue, no event, no question, no answer
    assert len(channel.connector.recorded()) == sent_before + len(refusals)  # not even a roster look-up

    # A colleague's next question goes to the organisation's moderators only.
    await bot.say(channel.new_user("Bea Staff"), f"{OFF_TOPIC} (again)")
    await eventually(lambda: resolved(len(_cards_in(bot, MODERATORS_CHANNEL)) == 2), what="second card")
    await bot.drained()
    theirs = {activity["conversation"]["id"] for activity in [*messages, *clicks, mixed]}
    to_them = [r.text for r in channel.connector.posts() if r.conversation_id in theirs]
    assert len(to_them) == len(refusals) and all(REFUSAL in text for text in to_them)


async def test_no_role_without_an_entra_object_id_even_with_an_admins_roster_email(bot: Bot) -> None:
    """Teams always sends from.aadObjectId; without it, from.id is never a stand-in for roles."""
    nameless = bot.channel.new_user("Ada Admin", email=ADMIN_EMAIL)
    activity = bot.channel.activities.personal_message(nameless, "grant moderator eve@evil.example")
    del activity["from"]["aadObjectId"]
    assert (await bot.post(activity)).status == 200
    [reply] = await bot.channel.connector.wait_for(1)
    assert "needs the admin role" in reply.text
    await bot.drained()
    counts, _ = await _snapshot(bot)
    assert counts["roles"] == 0


async def test_activities_on_channels_other_than_teams_are_refused(bot: Bot) -> None:
    """The channel's key endorses these channels too; with auth on, only Teams is served."""
    user = bot.channel.new_user("Wendy Webchat")
    elsewhere = []
    for channel_id in ("webchat", "directline", "emulator"):
        activity = bot.channel.activities.personal_message(user, OFF_TOPIC)
        activity["channelId"] = channel_id
        assert (await bot.post(activity)).status == 200
        elsewhere.append(activity["id"])
    refusals = await bot.channel.connector.wait_for(len(elsewhere))
    assert all(REFUSAL in r.text for r in refusals)
    await bot.drained()
    assert len(bot.channel.connector.posts()) == len(elsewhere)  # one refusal each, nothing more
    assert await bot.question_rows() == []
    assert await bot.outbox_count() == 0


async def test_a_single_tenant_bot_serves_its_own_tenant_by_default(
    channel: FakeChannel, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(channel.ca_bundle))
    env = channel.bot_env(APP_ID, APP_PASSWORD, single_tenant_id=channel.tenant_id)
    del env["ALLOWED_TENANT_IDS"]
    env.update(DATABASE_URL=database_url, MAIL_OUTBOX_DIR=str(tmp_path / "outbox"))
    async with serving(channel, Settings(**env)) as bot:
        await bot.say(channel.new_user("Holly Home"), OFF_TOPIC)
        outsider = channel.new_user_in_tenant("Otto Outsider", FOREIGN_TENANT)
        elsewhere = channel.activities_in_tenant(FOREIGN_TENANT).personal_message(outsider, "Is the canteen open?")
        assert (await bot.post(elsewhere)).status == 200
        replies = {r.activity_id: r.text for r in await channel.connector.wait_for(2)}
        assert REFUSAL in replies[elsewhere["id"]]
        await bot.drained()
        assert [row["text"] for row in await bot.question_rows()] == [OFF_TOPIC]


def test_a_multi_tenant_bot_without_allowed_tenants_does_not_start() -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("Microsoft", "ALLOWED_"))}
    env.update(MicrosoftAppId=APP_ID, MicrosoftAppPassword=APP_PASSWORD, MicrosoftAppType="MultiTenant")
    started = subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=120, check=False)
    assert started.returncode == 2
    assert "needs ALLOWED_TENANT_IDS" in started.stderr
    with pytest.raises(ValidationError, match="ALLOWED_TENANT_IDS takes Entra tenant ids"):
        Settings(MicrosoftAppId=APP_ID, MicrosoftAppPassword=APP_PASSWORD, ALLOWED_TENANT_IDS="contoso.example")


async def test_a_guest_from_another_tenant_in_a_shared_channel_gains_no_role_from_their_email(bot: Bot) -> None:
    """A channel the organisation shares with another one: the activity carries our tenant, but
    the roster says the guest belongs to theirs, so their directory's email vouches for nothing."""
    channel = bot.channel
    guest = channel.new_user_in_tenant("Eve Elsewhere", FOREIGN_TENANT, email=ADMIN_EMAIL)
    shared_channel = "19:shared-with-a-partner@thread.tacv2"
    before = await _snapshot(bot)
    for command in ("grant moderator eve@evil.example", "moderate here"):
        activity = channel.activities.channel_mention(guest, command, channel_id=shared_channel)
        assert (await bot.post(activity)).status == 200
    await bot.drained()
    (counts, states), (counts_before, _) = await _snapshot(bot), before
    assert {**counts, "outbox": 0} == {**counts_before, "outbox": 0} and states == []  # only the two refusals queued
    refusals = [r.text or "" for r in _cards_in(bot, shared_channel)]
    assert len(refusals) == 2 and not any("now" in text and "moderator" in text for text in refusals)
