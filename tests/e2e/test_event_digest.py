"""After an event: a host publishes the digest in Teams; askers say whether answers helped."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from sqlalchemy import select

from store.db import create_engine
from store.schema import audit_log
from tests.e2e.conftest import OFF_TOPIC, Bot, eventually, resolved
from tests.e2e.test_live_events import (
    HOSTS_CHANNEL,
    MODERATORS_CHANNEL,
    _cards_in,
    _command,
    _staff,
    settings_overrides,  # noqa: F401 - the admin these tests need
)
from tests.support.channel import TeamsUser

RESTRUCTURE = "Is the restructure going to affect my team?"
TABLE_TENNIS = "Could the Shire Hall staff room get a table tennis table?"


async def _audit(bot: Bot, action: str) -> list[dict[str, Any]]:
    engine = create_engine(bot.settings.database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(select(audit_log).where(audit_log.c.action == action).order_by(audit_log.c.id))
            return [dict(row) for row in rows.mappings()]
    finally:
        await engine.dispose()


async def _card_for(bot: Bot, text: str) -> Any:
    async def found() -> Any:
        return next((c for c in _cards_in(bot, MODERATORS_CHANNEL) if text in str(c.body)), None)

    return await eventually(found, what=f"the moderation card for {text!r}")


async def _moderate(bot: Bot, moderator: TeamsUser, here: dict[str, Any], card: Any, **value: Any) -> None:
    submit = bot.channel.activities.card_submit(
        moderator, {"action": "moderate", **value}, reply_to_id=card.created_id, context=here
    )
    assert (await bot.post(submit)).status == 200
    await bot.drained()


def _posts_in(bot: Bot, conversation_prefix: str, starting: str) -> list[Any]:
    return [r for r in bot.channel.connector.posts()
            if r.conversation_id.startswith(conversation_prefix) and (r.text or "").startswith(starting)]


async def test_a_host_publishes_the_digest_in_the_channel_once(bot: Bot) -> None:
    people = await _staff(bot)
    await _command(bot, people["host"], "open event All-staff briefing", HOSTS_CHANNEL)
    here = await _command(bot, people["mod1"], "moderate here", MODERATORS_CHANNEL)
    await bot.say(bot.channel.new_user("Sam Staff"), OFF_TOPIC)
    await bot.say(bot.channel.new_user("Priya Private"), f"ask anonymously {RESTRUCTURE}")
    await bot.say(bot.channel.new_user("Dee Duplicate"), f"{OFF_TOPIC} (again)")
    await bot.say(bot.channel.new_user("Tom Tennis"), TABLE_TENNIS)
    mod = people["mod1"]
    await _moderate(bot, mod, here, await _card_for(bot, "(again)"), op="merge", question_id=3, duplicate_of="Q-1")
    await _moderate(bot, mod, here, await _card_for(bot, OFF_TOPIC), op="answer", question_id=1,
                    answer="Yes: 12 December, 6pm. <img src=x onerror=alert(1)>")
    await _moderate(bot, mod, here, await _card_for(bot, RESTRUCTURE), op="answer", question_id=2,
                    answer="No team changes are planned this year.")
    await _moderate(bot, mod, here, await _card_for(bot, TABLE_TENNIS), op="dismiss", question_id=4,
                    reason="Not for this briefing.")

    publish = await _command(bot, people["host"], "publish here", HOSTS_CHANNEL)
    [digest] = await eventually(lambda: resolved(_posts_in(bot, HOSTS_CHANNEL, "# Questions from")), what="digest")
    text = digest.text
    assert text.startswith("# Questions from All-staff briefing")
    assert digest.activity_id == publish["id"]  # in the thread of the host's command
    assert "12 December, 6pm" in text and "No team changes are planned this year." in text
    assert "Asked by A colleague (Q-1, also asked as Q-3)" in text  # DIGEST_NAMES is off by default
    assert "Asked by A colleague (Q-2)" in text and "Priya" not in text and "Sam Staff" not in text
    assert "Dee Duplicate" not in text and text.count("staff choir") == 1
    assert "table tennis" not in text and "Q-4" not in text
    assert "<img" not in text and "&lt;img" in text

    assert (await bot.post(publish)).status == 200  # Teams redelivers the command
    await bot.drained()
    assert len(_posts_in(bot, HOSTS_CHANNEL, "# Questions from")) == 1
    [logged] = await _audit(bot, "event.publish")
    assert (logged["actor"], logged["target"]) == ("Hana Host", "E-1")


async def test_the_digest_groups_answers_by_the_faq_topic_and_the_figures_count_each_topic(bot: Bot) -> None:
    people = await _staff(bot)
    await _command(bot, people["host"], "open event All-staff briefing", HOSTS_CHANNEL)
    here = await _command(bot, people["mod1"], "moderate here", MODERATORS_CHANNEL)
    laptops = "When will the new laptops arrive for my team?"  # nearest entry: it-equipment (IT)
    prayer = "Is there a prayer room at County Hall?"  # nearest entry: building-hours (Buildings)
    await bot.say(bot.channel.new_user("Lin Laptop"), laptops)
    await bot.say(bot.channel.new_user("Pat Prayer"), prayer)
    await bot.say(bot.channel.new_user("Sam Staff"), OFF_TOPIC)  # near no entry, no topic
    await bot.say(bot.channel.new_user("Fay Faq"), "When is payday?")  # answered from the FAQ (Pay)
    mod = people["mod1"]
    for number, text in enumerate((laptops, prayer, OFF_TOPIC), start=1):
        await _moderate(bot, mod, here, await _card_for(bot, text), op="answer", question_id=number,
                        answer=f"Answer {number}.")

    await _command(bot, people["host"], "publish here", HOSTS_CHANNEL)
    [digest] = await eventually(lambda: resolved(_posts_in(bot, HOSTS_CHANNEL, "# Questions from")), what="digest")
    lines = digest.text.splitlines()
    # the FAQ's topics in staff-news order, questions near no entry last
    assert [line for line in lines if line.startswith("### ")] == ["### Buildings", "### IT", "### Other questions"]
    assert lines.index("### Buildings") < order(lines, "Answer 2.") < lines.index("### IT") \
        < order(lines, "Answer 1.") < lines.index("### Other questions") < order(lines, "Answer 3.")
    figures = lines[lines.index("**Questions by topic**"):]
    assert [line for line in figures if line.startswith("- ")][:4] == [
        "- Buildings — 1 question", "- IT — 1 question", "- Pay — 1 question", "- Other questions — 1 question"]


def order(lines: list[str], text: str) -> int:
    return next(n for n, line in enumerate(lines) if text in line)


async def test_publishing_needs_the_host_role(bot: Bot) -> None:
    people = await _staff(bot)
    await _command(bot, people["host"], "open event All-staff briefing", HOSTS_CHANNEL)
    await bot.channel.connector.wait_for(4)
    await _command(bot, people["mod1"], "publish E-1 here", HOSTS_CHANNEL)  # a moderator, not a host
    [*_, refusal] = await bot.channel.connector.wait_for(5)
    assert "needs the host role" in refusal.text and "Nothing was changed" in refusal.text
    await bot.drained()
    assert _posts_in(bot, HOSTS_CHANNEL, "# Questions from") == []
    assert await _audit(bot, "event.publish") == []


async def test_publishing_an_unknown_event_says_so(bot: Bot) -> None:
    people = await _staff(bot)
    await _command(bot, people["host"], "publish E-7 here", HOSTS_CHANNEL)
    [*_, reply] = await bot.channel.connector.wait_for(4)
    assert "There is no event E-7" in reply.text and "Nothing was changed" in reply.text
    assert await _audit(bot, "event.publish") == []


async def test_the_asker_says_an_answer_helped_and_it_is_recorded_once(bot: Bot) -> None:
    people = await _staff(bot)
    here = await _command(bot, people["mod1"], "moderate here", MODERATORS_CHANNEL)
    asker = bot.channel.new_user("Sam Staff")
    await bot.say(asker, OFF_TOPIC)
    await _moderate(bot, people["mod1"], here, await _card_for(bot, OFF_TOPIC), op="answer", question_id=1,
                    answer="Yes: 12 December, 6pm.")

    [answer] = _posts_in(bot, "", "**An answer to your question Q-1")
    card = answer.attachments[0]["content"]
    assert [a["title"] for a in card["actions"]] == ["Helpful", "Not helpful"]
    helpful, not_helpful = (a["data"] for a in card["actions"])

    # Someone else pressing the asker's button (a forwarded card, a crafted submit) counts for nothing.
    other = bot.channel.new_user("Ian Intruder")
    poke = bot.channel.activities.card_submit(other, helpful, reply_to_id=answer.created_id)
    assert (await bot.post(poke)).status == 200
    await bot.drained()
    assert _posts_in(bot, "", "Only the colleague who asked")

    # A double click: both buttons at once. One verdict is recorded and thanked, the other is told.
    click = bot.channel.activities.card_submit(asker, helpful, reply_to_id=answer.created_id)
    second = bot.channel.activities.card_submit(asker, not_helpful, reply_to_id=answer.created_id)
    assert [r.status for r in await asyncio.gather(bot.post(click), bot.post(second))] == [200, 200]
    await bot.drained()
    assert (await bot.post(click)).status == 200  # Teams redelivers a click
    await bot.drained()
    assert len(_posts_in(bot, "", "Thanks for telling us")) == 1
    assert len(_posts_in(bot, "", "Thanks, your answer to that card was already recorded")) == 1
    [verdict] = await _audit(bot, "answer.feedback")
    assert verdict["target"] == "Q-1" and verdict["actor"] == "asker"
    assert json.loads(verdict["detail"])["answer_id"] == helpful["answer_id"]
