"""A weekly briefing reuses one Teams meeting, so its chat moves on to each week's event."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import OFF_TOPIC, Bot
from tests.e2e.test_live_events import _staff, settings_overrides  # noqa: F401 - the admin fixture
from tests.support.channel import TeamsUser

MEETING_CHAT = "19:meeting_weekly-briefing@thread.v2"
MEETING_ID = "MCMxOTptZWV0aW5nX3dlZWtseUB0aHJlYWQudjIjMA=="


async def _in_meeting(bot: Bot, user: TeamsUser, text: str) -> dict[str, Any]:
    activity = bot.channel.activities.group_chat_message(user, text, conversation_id=MEETING_CHAT)
    activity["channelData"]["meeting"] = {"id": MEETING_ID}
    response = await bot.post(activity)
    assert response.status == 200, await response.text()
    return activity


async def test_next_weeks_event_in_the_same_meeting_takes_its_questions(bot: Bot) -> None:
    host = (await _staff(bot))["host"]
    await _in_meeting(bot, host, "open event Weekly briefing, week 1")
    await _in_meeting(bot, host, "close event")
    await _in_meeting(bot, host, "open event Weekly briefing, week 2")
    replies = await bot.channel.connector.wait_for(6)
    assert any("Event **E-2** (Weekly briefing, week 2) is open" in (r.text or "") for r in replies)
    await _in_meeting(bot, bot.channel.new_user("Sam Staff"), OFF_TOPIC)
    await bot.drained()
    [question] = await bot.question_rows()
    assert question["event_id"] == 2
