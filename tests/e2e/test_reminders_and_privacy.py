"""Nothing waits unseen (reminders in the moderators' channel) and private questions (never on
the board, never published), over real HTTP with the fake Teams channel."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from handlers.board import INTERVAL_SECONDS
from store.db import create_engine
from store.schema import outbox, questions
from tests.e2e.conftest import OFF_TOPIC, Bot, board_counts, eventually, resolved
from tests.e2e.test_live_events import ADMIN_EMAIL, HOSTS_CHANNEL, MODERATORS_CHANNEL, _cards_in, _command, _staff
from tests.support.channel import TeamsUser

STRESS = "Could my grievance hearing be moved because of my hospital appointment?"
PARKING = "Will the Shire Hall bike shed get a roof this winter?"
HEADING = "waited more than 24 h for an answer"


@pytest.fixture
def settings_overrides() -> dict[str, str]:
    return {"ADMINS": ADMIN_EMAIL, "REMINDER_AFTER_HOURS": "24", "REMINDER_CHECK_SECONDS": "0.2"}


async def _card_for(bot: Bot, text: str) -> Any:
    async def found() -> Any:
        return next((c for c in _cards_in(bot, MODERATORS_CHANNEL) if text in str(c.body)), None)

    return await eventually(found, what=f"the moderation card for {text!r}")


async def _moderate(bot: Bot, who: TeamsUser, here: dict[str, Any], card: Any, **value: Any) -> None:
    submit = bot.channel.activities.card_submit(who, {"action": "moderate", **value},
                                                reply_to_id=card.created_id, context=here)
    assert (await bot.post(submit)).status == 200
    await bot.drained()


async def _asked_hours_ago(bot: Bot, question_ids: list[int], hours: float) -> None:
    engine = create_engine(bot.settings.database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(update(questions).where(questions.c.id.in_(question_ids))
                               .values(created_at=datetime.now(UTC) - timedelta(hours=hours)))
    finally:
        await engine.dispose()


def _reminders(bot: Bot) -> list[Any]:
    return [r for r in bot.channel.connector.posts()
            if r.conversation_id.startswith(MODERATORS_CHANNEL) and HEADING in (r.text or "")]


async def _board_after_refresh(bot: Bot) -> Any:
    """The board as the hosts see it once every queued refresh has run."""
    await bot.after(INTERVAL_SECONDS)  # a refresh may be queued for the end of the current interval
    cards = _cards_in(bot, HOSTS_CHANNEL, "update") or _cards_in(bot, HOSTS_CHANNEL)
    return cards[-1].body


async def test_questions_waiting_too_long_are_listed_once_per_period_in_the_moderators_channel(bot: Bot) -> None:
    people = await _staff(bot)
    here = await _command(bot, people["mod1"], "moderate here", MODERATORS_CHANNEL)
    asker = bot.channel.new_user("Sam Staff")
    texts = [OFF_TOPIC, PARKING, "Is the Christmas lunch on the 19th?", "Can we book the Shire Hall garden?"]
    for text in texts:
        await bot.say(asker, text)
    cards = [await _card_for(bot, text) for text in texts]
    await _moderate(bot, people["mod1"], here, cards[1], op="answer", question_id=2, answer="Yes, 40 spaces.")
    await _moderate(bot, people["mod2"], here, cards[3], op="claim", question_id=4)
    assert _reminders(bot) == [], "nothing has waited 24 hours yet"

    await _asked_hours_ago(bot, [1, 2, 4], hours=30)  # Q-3 was asked just now
    [reminder] = await eventually(lambda: resolved(_reminders(bot)), what="the reminder")
    assert "2 questions have waited more than 24 h for an answer" in reminder.text
    assert f"**Q-1** (not claimed, waiting 30 h): {OFF_TOPIC}" in reminder.text
    assert "**Q-4** (claimed by Max Two, waiting 30 h): Can we book the Shire Hall garden?" in reminder.text
    assert reminder.conversation_id == MODERATORS_CHANNEL and reminder.kind == "send"  # a new post
    assert "Q-2" not in reminder.text and "Q-3" not in reminder.text  # answered; not waiting long yet

    await asyncio.sleep(1.0)  # five more checks in the same period
    await bot.drained()
    assert len(_reminders(bot)) == 1

    # Two more instances checking at once in the same period queue nothing more.
    jobs = await bot.outbox_count()
    listed = await bot.remind_elsewhere(2, after=timedelta(hours=24), now=datetime.now(UTC))
    assert listed == [0, 0] and await bot.outbox_count() == jobs


async def test_two_instances_checking_at_once_queue_one_reminder(bot: Bot) -> None:
    people = await _staff(bot)
    await _command(bot, people["mod1"], "moderate here", MODERATORS_CHANNEL)
    await bot.say(bot.channel.new_user("Sam Staff"), OFF_TOPIC)
    await _card_for(bot, OFF_TOPIC)
    # A period far in the future: the bot's own checks (24-h periods) have nothing to do with it.
    later = datetime.now(UTC) + timedelta(days=400)
    listed = await bot.remind_elsewhere(3, after=timedelta(hours=1), now=later)
    assert sorted(listed) == [0, 0, 1]
    engine = create_engine(bot.settings.database_url)
    try:
        async with engine.connect() as conn:
            queued = (await conn.execute(select(func.count()).select_from(outbox)
                                         .where(outbox.c.dedupe_key.like("reminder:%")))).scalar_one()
    finally:
        await engine.dispose()
    assert queued == 1


async def test_a_question_asked_privately_is_answered_but_never_on_the_board_or_in_the_digest(bot: Bot) -> None:
    people = await _staff(bot)
    here = await _command(bot, people["mod1"], "moderate here", MODERATORS_CHANNEL)
    await _command(bot, people["host"], "open event All-staff briefing", HOSTS_CHANNEL)
    await _command(bot, people["host"], "board here", HOSTS_CHANNEL)
    private_asker = bot.channel.new_user("Pat Person")
    await bot.say(private_asker, f"ask privately {STRESS}")
    await bot.say(bot.channel.new_user("Sam Staff"), PARKING)

    told = await eventually(lambda: resolved([r for r in bot.channel.connector.posts()
                                            if "marked **private**" in (r.text or "")]), what="the notice")
    assert "never shown on an event board or published" in told[0].text
    private_card = await _card_for(bot, STRESS)
    assert "Q-1 · Private" in str(private_card.body)  # moderators see it, marked
    assert "Mark private" not in str(private_card.body)
    board = await _board_after_refresh(bot)
    assert PARKING in str(board) and STRESS not in str(board)
    assert board_counts(board)["Asked"] == 2  # counted, never shown

    await _moderate(bot, people["mod1"], here, private_card, op="answer", question_id=1, answer="Call the EAP line.")
    await _moderate(bot, people["mod1"], here, await _card_for(bot, PARKING), op="answer", question_id=2,
                    answer="Yes, 40 more spaces.")
    answers = [r for r in bot.channel.connector.posts() if "Call the EAP line." in (r.text or "")]
    assert len(answers) == 1 and "An answer to your question Q-1" in answers[0].text

    await _command(bot, people["host"], "publish here", HOSTS_CHANNEL)
    digest = await eventually(lambda: resolved([r for r in bot.channel.connector.posts()
                                              if (r.text or "").startswith("# Questions from")]), what="digest")
    assert PARKING in digest[0].text and "40 more spaces" in digest[0].text
    assert "grievance" not in digest[0].text and "EAP" not in digest[0].text and "Pat" not in digest[0].text


async def test_a_moderator_marks_a_question_private_and_it_leaves_the_board(bot: Bot) -> None:
    people = await _staff(bot)
    here = await _command(bot, people["mod1"], "moderate here", MODERATORS_CHANNEL)
    await _command(bot, people["host"], "open event All-staff briefing", HOSTS_CHANNEL)
    await _command(bot, people["host"], "board here", HOSTS_CHANNEL)
    await bot.say(bot.channel.new_user("Sam Staff"), STRESS)
    card = await _card_for(bot, STRESS)
    assert "Mark private" in str(card.body)
    assert STRESS in str(await _board_after_refresh(bot))

    intruder = bot.channel.new_user("Ian Intruder")
    await _moderate(bot, intruder, here, card, op="private", question_id=1)
    assert any("needs the moderator role" in (r.text or "") for r in bot.channel.connector.posts())
    assert [row["private"] for row in await bot.question_rows()] == [False]

    await _moderate(bot, people["mod2"], here, card, op="private", question_id=1)
    [row] = await bot.question_rows()
    assert row["private"] and row["status"] == "forwarded"  # still waiting for its answer
    board = await _board_after_refresh(bot)
    assert STRESS not in str(board) and board_counts(board)["Asked"] == 1
    updated = _cards_in(bot, MODERATORS_CHANNEL, "update")[-1]
    assert updated.activity_id == card.created_id
    assert "Q-1 · Private" in str(updated.body) and "Mark private" not in str(updated.body)


async def test_merges_never_carry_a_private_answer_into_a_public_question(bot: Bot) -> None:
    people = await _staff(bot)
    here = await _command(bot, people["mod1"], "moderate here", MODERATORS_CHANNEL)
    await _command(bot, people["host"], "open event All-staff briefing", HOSTS_CHANNEL)
    pat, sam, kim = (bot.channel.new_user(name) for name in ("Pat Person", "Sam Staff", "Kim Kind"))
    await bot.say(pat, f"ask privately {STRESS}")
    await bot.say(sam, PARKING)
    await bot.say(kim, f"ask privately {PARKING} (asking for my disabled son)")
    cards = [await _card_for(bot, text) for text in (STRESS, f"{PARKING}", "disabled son")]

    # A public question into a private one: refused, nothing changes.
    await _moderate(bot, people["mod1"], here, cards[1], op="merge", question_id=2, duplicate_of="Q-1")
    assert any("Q-1 is private, so Q-2 can't be its duplicate" in (r.text or "") for r in bot.channel.connector.posts())
    assert [row["status"] for row in await bot.question_rows()][1] == "forwarded"

    # A private question into a public one: its asker gets the public answer, in their own chat.
    await _moderate(bot, people["mod1"], here, cards[2], op="merge", question_id=3, duplicate_of="Q-2")
    await _moderate(bot, people["mod1"], here, cards[1], op="answer", question_id=2, answer="Yes, 40 more spaces.")
    await _moderate(bot, people["mod1"], here, cards[0], op="answer", question_id=1, answer="Call the EAP line.")
    # Nor does a private question's text or answer go into the FAQ, which answers everyone.
    await _moderate(bot, people["mod1"], here, cards[0], op="faq", question_id=1,
                    faq_question=STRESS, faq_answer="Call the EAP line.")
    assert any("Q-1 is private: to add an FAQ entry" in (r.text or "") for r in bot.channel.connector.posts())
    kims_chat = bot.channel.activities.personal_conversation(kim)["id"]
    to_kim = [r for r in bot.channel.connector.posts() if r.conversation_id == kims_chat]
    assert any("40 more spaces" in (r.text or "") for r in to_kim)

    await _command(bot, people["host"], "publish here", HOSTS_CHANNEL)
    digest = await eventually(
        lambda: resolved([r for r in bot.channel.connector.posts() if (r.text or "").startswith("# Questions from")]),
        what="digest",
    )
    assert "40 more spaces" in digest[0].text and "Q-3" not in digest[0].text and "disabled son" not in digest[0].text
    assert "EAP" not in digest[0].text and "grievance" not in digest[0].text


async def test_a_channel_question_marked_private_is_answered_in_a_personal_chat_with_its_duplicates(bot: Bot) -> None:
    people = await _staff(bot)
    here = await _command(bot, people["mod1"], "moderate here", MODERATORS_CHANNEL)
    sam, kim = bot.channel.new_user("Sam Staff"), bot.channel.new_user("Kim Kind")
    asked = bot.channel.activities.channel_mention(sam, STRESS)
    assert (await bot.post(asked)).status == 200  # Q-1, asked openly in a channel
    await bot.say(kim, f"{STRESS} (me too)")
    card, duplicate = await _card_for(bot, STRESS), await _card_for(bot, "(me too)")
    await _moderate(bot, people["mod1"], here, duplicate, op="merge", question_id=2, duplicate_of="Q-1")
    await _moderate(bot, people["mod1"], here, card, op="private", question_id=1)
    assert [row["private"] for row in await bot.question_rows()] == [True, True]  # the duplicate too
    await _moderate(bot, people["mod1"], here, card, op="answer", question_id=1, answer="Call the EAP line.")
    answered = [r for r in bot.channel.connector.posts() if "EAP" in (r.text or "")]
    assert {r.conversation_id for r in answered} == {
        bot.channel.activities.personal_conversation(who)["id"] for who in (sam, kim)
    }
    assert not any(
        r.conversation_id == asked["conversation"]["id"] and "EAP" in (r.text or "")
        for r in bot.channel.connector.posts()
    )
