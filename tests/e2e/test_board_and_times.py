"""The hosts' board at a glance, and forward mails a moderator can act on, with every time in the
organisation's TIMEZONE. Over real HTTP with the local Bot Framework channel; mail as .eml files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from handlers.board import INTERVAL_SECONDS
from tests.e2e.conftest import OFF_TOPIC, Bot, an_faq_entry, board_counts, bot_settings
from tests.e2e.test_live_events import ADMIN_EMAIL, HOSTS_CHANNEL, _cards_in, _command, _staff
from tests.support.channel import FakeChannel

# Far from UTC and London, and not on the hour: a time shown in the wrong zone cannot pass.
ZONE = "Asia/Kathmandu"


@pytest.fixture
def settings_overrides() -> dict[str, str]:
    return {"ADMINS": ADMIN_EMAIL, "TIMEZONE": ZONE}


def _local_minutes(around: datetime) -> set[str]:
    """The wall-clock minute (and the one before, for a run across a minute) in ZONE."""
    return {(around - timedelta(minutes=back)).astimezone(ZoneInfo(ZONE)).strftime("%H:%M") for back in (0, 1)}


def _line(card: Any, ref: str) -> str:
    """The board's line for one question, as its text runs read."""
    def lines(node: Any) -> Any:
        if isinstance(node, dict):
            if node.get("type") == "RichTextBlock":
                yield "".join(run.get("text", "") for run in node["inlines"])
            for child in node.values():
                yield from lines(child)
        elif isinstance(node, list):
            for child in node:
                yield from lines(child)
    return next(line for line in lines(card) if line.startswith(f"{ref} "))


async def test_the_board_shows_count_tiles_a_state_per_question_support_and_the_local_update_time(bot: Bot) -> None:
    people = await _staff(bot)
    await _command(bot, people["host"], "open event Town hall", HOSTS_CHANNEL)
    await _command(bot, people["host"], "board here", HOSTS_CHANNEL)
    await bot.say(bot.channel.new_user("Sam Staff"), OFF_TOPIC)  # to the team
    _, faq_question, _ = an_faq_entry()
    await bot.say(bot.channel.new_user("Fay Faq"), faq_question)  # answered from the FAQ
    await bot.drained()
    await bot.say(bot.channel.new_user("Kim Kind"), "me too Q-1")
    await bot.after(INTERVAL_SECONDS)  # a refresh may be queued for the end of the current interval

    board = (_cards_in(bot, HOSTS_CHANNEL, "update") or _cards_in(bot, HOSTS_CHANNEL))[-1].body
    assert board_counts(board) == {"Asked": 2, "Answered": 0, "Waiting": 1, "From the FAQ": 1}
    assert _line(board, "Q-1").startswith("Q-1 ▲ 1 Waiting ")
    # no "▲ 0": support shown only when there is some; the FAQ entry's topic, where it has one
    assert _line(board, "Q-2").startswith("Q-2 FAQ · Pay ")
    assert "'width': 'Full'" in str(board)
    updated = next(word for word in str(board).split("'") if word.startswith("Updated "))
    assert updated.removeprefix("Updated ") in _local_minutes(bot.clock.now())


async def test_a_forward_mail_names_the_event_its_supporters_and_the_local_time(bot: Bot) -> None:
    people = await _staff(bot)
    await _command(bot, people["host"], "open event Town hall", HOSTS_CHANNEL)
    _, faq_question, _ = an_faq_entry()
    asker = bot.channel.new_user("Nia Clarke")
    asked = await bot.say(asker, faq_question)
    await bot.say(bot.channel.new_user("Kim Kind"), "me too Q-1")
    await bot.drained()
    [answer] = [r for r in bot.channel.connector.posts() if "No, send it to the team" in str(r.attachments)]
    no = answer.attachments[0]["content"]["actions"][1]["data"]
    assert (await bot.post(bot.channel.activities.card_submit(asker, no, reply_to_id=answer.created_id,
                                                             context=asked))).status == 200
    await bot.drained()

    [path] = bot.mails()
    mail = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    text, html = mail.get_body(("plain",)).get_content(), mail.get_body(("html",)).get_content()
    [row] = await bot.question_rows()
    asked_at = row["created_at"].replace(tzinfo=UTC).astimezone(ZoneInfo(ZONE)).strftime("%d %b %Y %H:%M")
    assert f"Asked at:     {asked_at} +0545" in text and "UTC" not in text
    assert "Event:        Town hall" in text and '1 colleague said "me too"' in text
    assert f"{asked_at} +0545" in html and "Town hall" in html and "1 colleague said" in html


async def test_a_forward_mail_without_event_or_supporters_says_neither(bot: Bot) -> None:
    await bot.say(bot.channel.new_user("Sam Staff"), OFF_TOPIC)
    await bot.drained()
    [path] = bot.mails()
    text = BytesParser(policy=policy.default).parsebytes(path.read_bytes()).get_body(("plain",)).get_content()
    assert "Event:" not in text and "Supporters:" not in text and "+0545" in text


def test_an_unknown_timezone_is_refused_at_start(channel: FakeChannel, database_url: str, tmp_path: Any) -> None:
    with pytest.raises(ValidationError, match="TIMEZONE must be an IANA time zone"):
        bot_settings(channel, database_url, tmp_path, TIMEZONE="Mars/Olympus_Mons")
